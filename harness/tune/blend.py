"""Blend the K best trials: average their predictions into a new run folder.

The blend is scored on the VALIDATION predictions the trials saved (valid_preds.npy), against the
validation targets; test predictions are only averaged, never scored. The submission is the mean of
the trials' submissions (the id column kept, prediction columns averaged); test_preds.npy the mean
of their raw test outputs.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import optuna
import pandas as pd

from harness.config import config_hash
from harness.errors import HarnessError
from harness.runs import Run
from harness.workspace import write_csv

COMPLETE = optuna.trial.TrialState.COMPLETE


@dataclass
class BlendResult:
    run: Run
    metric: str
    score: float  # the blend's validation score
    trial_scores: dict  # trial number -> its own validation score, recomputed from its predictions
    best_trial: int


def top_trials(study: optuna.Study, k: int) -> list[optuna.trial.FrozenTrial]:
    done = [t for t in study.get_trials(deepcopy=False, states=(COMPLETE,)) if t.value is not None]
    if not done:
        raise HarnessError(f"study {study.study_name!r} has no finished trial to blend; run `harness tune` first")
    reverse = study.direction == optuna.study.StudyDirection.MAXIMIZE
    return sorted(done, key=lambda t: t.value, reverse=reverse)[:k]


def _trial_run(trial, workspace: Path, competition: str) -> Run:
    run_id = trial.user_attrs.get("run")
    path = Path(workspace) / "runs" / competition / str(run_id)
    if not run_id or not (path / "valid_preds.npy").exists():
        where = trial.user_attrs.get("machine", "?")
        raise HarnessError(f"trial {trial.number}: its run folder {path} with valid_preds.npy is not here (it ran "
                           f"on {where}, workspace {trial.user_attrs.get('workspace', '?')}); copy it into this "
                           "workspace or blend there")
    return Run(path)


def average_submissions(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Keep the first (id) column, which must agree row by row; average every other column."""
    first = frames[0]
    id_col = first.columns[0]
    for frame in frames[1:]:
        if list(frame.columns) != list(first.columns) or not frame[id_col].equals(first[id_col]):
            raise HarnessError("the trials' submission.csv files differ in columns or id order; they cannot be averaged")
    out = first.copy()
    for col in first.columns[1:]:
        stacked = np.stack([f[col].to_numpy() for f in frames])
        if not np.issubdtype(stacked.dtype, np.number):
            raise HarnessError(f"submission column {col!r} is not numeric; it cannot be averaged")
        if np.issubdtype(stacked.dtype, np.integer) and not (stacked == stacked[0]).all():
            raise HarnessError(f"submission column {col!r} holds labels that differ between trials; "
                               "average probabilities instead")
        out[col] = stacked.mean(axis=0) if np.issubdtype(stacked.dtype, np.floating) else stacked[0]
    return out


def blend(competition, study: optuna.Study, workspace: Path, k: int) -> BlendResult:
    if k < 1:
        raise HarnessError(f"--top-k {k}: blend at least one trial")
    trials = top_trials(study, k)
    runs = [_trial_run(t, workspace, competition.name) for t in trials]
    config = runs[0].config()
    metrics = competition.metrics(config)
    if not metrics or metrics[0].from_loss:
        raise HarnessError(f"{competition.name}'s primary metric is not computed from predictions; nothing to blend")
    metric = metrics[0]

    targets = runs[0].array("valid_targets.npy")
    valid = []
    for trial, run in zip(trials, runs):
        if not np.array_equal(run.array("valid_targets.npy"), targets):
            raise HarnessError(f"trial {trial.number} (run {run.id}) was validated on other rows than trial "
                               f"{trials[0].number}; blend only trials with the same validation split")
        valid.append(run.array("valid_preds.npy").astype(np.float64))
    mean_valid = np.mean(valid, axis=0)
    trial_scores = {t.number: metric(v, targets) for t, v in zip(trials, valid)}
    score = metric(mean_valid, targets)

    out = Run.create(workspace, competition.name)
    shutil.copy(runs[0].path("config.toml"), out.path("config.toml"))  # the best trial's, for reference
    out.save_array("valid_preds.npy", mean_valid.astype(np.float32))
    out.save_array("valid_targets.npy", targets)
    summary = {
        "competition": competition.name, "run": out.id, "kind": "blend", "study": study.study_name,
        "config_hash": config_hash({"blend": [r.id for r in runs]}),
        "trials": [t.number for t in trials], "runs": [r.id for r in runs],
        "trial_scores": {str(n): s for n, s in trial_scores.items()},
        "metrics": {metric.name: score}, "primary_metric": metric.name, "primary_score": score,
        "direction": metric.direction, "scored_on": "validation predictions (valid_preds.npy)",
    }
    if all(r.path("test_preds.npy").exists() and r.path("submission.csv").exists() for r in runs):
        out.save_array("test_preds.npy", np.mean([r.array("test_preds.npy").astype(np.float64) for r in runs], axis=0))
        submission = average_submissions([pd.read_csv(r.path("submission.csv")) for r in runs])
        write_csv(out.path("submission.csv"), submission)
        summary["submission"] = str(out.path("submission.csv"))
    out.save_summary(summary)
    return BlendResult(out, metric.name, score, trial_scores, trials[0].number)
