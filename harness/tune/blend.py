"""Blend the K best trials: average their predictions into a new run folder.

The blend is scored on the VALIDATION predictions the trials saved (valid_preds.npy), against the
validation targets; test predictions are only averaged, never scored. Validation and test outputs
are averaged on the same scale (the model's outputs), and the competition turns the mean test
outputs into the submission (`Competition.submission_from_outputs`), so the validation score
describes exactly what is submitted. That score is optimistic: the trials were chosen (the top k)
on these very rows. `harness.tune.ensemble` blends K-fold runs with an honest, nested CV score.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import optuna
import pandas as pd

from harness.config.loading import config_hash
from harness.errors import HarnessError
from harness.runs.folder import Run
from harness.workspace import write_csv

COMPLETE = optuna.trial.TrialState.COMPLETE


@dataclass
class BlendResult:
    run: Run
    metric: str
    score: float  # the blend's validation score, on the rows that chose the trials (optimistic)
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
    path = Run.at(workspace, competition, run_id).dir
    if not run_id or not (path / "valid_preds.npy").exists():
        where = trial.user_attrs.get("machine", "?")
        raise HarnessError(f"trial {trial.number}: its run folder {path} with valid_preds.npy is not here (it ran "
                           f"on {where}, workspace {trial.user_attrs.get('workspace', '?')}); copy it into this "
                           "workspace or blend there")
    return Run(path)


def blend(competition, study: optuna.Study, workspace: Path, k: int) -> BlendResult:
    if k < 1:
        raise HarnessError(f"--top-k {k}: blend at least one trial")
    trials = top_trials(study, k)
    runs = [_trial_run(t, workspace, competition.name) for t in trials]
    config = runs[0].config()
    metrics = competition.scored_by(config)  # the metric the trials were scored by
    if not metrics or metrics[0].from_loss:
        raise HarnessError(f"{competition.name}'s primary metric is not computed from predictions; nothing to blend")
    metric = metrics[0]

    targets = runs[0].array("valid_targets.npy")
    valid = []
    for trial, run in zip(trials, runs):
        if run is not runs[0] and not np.array_equal(run.array("valid_targets.npy"), targets):
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
        "primary_score_means": ("optimistic: scored on the validation rows that chose the trials (the top k by "
                                "their validation score)"),
    }
    if all(r.path("test_preds.npy").exists() and r.path("submission.csv").exists() for r in runs):
        mean_test = np.mean([r.array("test_preds.npy").astype(np.float64) for r in runs], axis=0)
        out.save_array("test_preds.npy", mean_test)
        template = pd.read_csv(runs[0].path("submission.csv"))
        same_rows = [pd.read_csv(r.path("submission.csv")).iloc[:, 0].equals(template.iloc[:, 0]) for r in runs]
        if not all(same_rows) or len(mean_test) != len(template):
            raise HarnessError("the trials' submissions differ in their ids or row order; they cannot be blended")
        submission = competition.submission_from_outputs(mean_test, template, config=runs[0].config())
        write_csv(out.path("submission.csv"), submission)
        summary["submission"] = str(out.path("submission.csv"))
    out.save_summary(summary)
    return BlendResult(out, metric.name, score, trial_scores, trials[0].number)
