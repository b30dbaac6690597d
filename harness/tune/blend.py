"""Average runs validated on the same rows into a new run folder: the K best trials, or named runs.

The mean is scored on the VALIDATION predictions the runs saved (valid_preds.npy), against the
validation targets; test predictions are only averaged, never scored. Validation and test outputs
are averaged on the same scale (the model's outputs), and the competition turns the mean test
outputs into the submission (`Competition.submission_from_outputs`), so the validation score
describes exactly what is submitted. For the top k trials that score is optimistic: the trials were
chosen on these very rows. For runs the user names (`harness blend NAME --runs A,B` without folds)
nothing is fitted or chosen on the validation rows, so the mean's score there is as honest as each
run's own. `harness.tune.ensemble` blends K-fold runs, with fitted weights and a nested CV score.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from harness.config.loading import config_hash
from harness.errors import HarnessError
from harness.runs.folder import Run
from harness.tune.ensemble import check_finite, member_tests, same_targets
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


@dataclass
class MeanResult:
    run: Run
    metric: str
    score: float  # the mean's score on the validation rows
    member_scores: dict  # run id -> its own score there, recomputed from its predictions


@dataclass
class Mean:
    """The mean of runs' validation outputs, checked and scored, before anything is written."""

    runs: list
    metric: Any
    targets: np.ndarray
    outputs: np.ndarray
    score: float
    member_scores: list
    tests: tuple | None  # (the members' test outputs stacked, the submission template): ensemble.member_tests


def mean_of(competition, runs: list[Run], names: list[str]) -> Mean:
    """``runs``' validation outputs averaged and scored (``names``: how an error calls each run)."""
    metrics = competition.scored_by(runs[0].config())  # the metric the runs were scored by
    if not metrics or metrics[0].from_loss:
        raise HarnessError(f"{competition.name}'s primary metric is not computed from predictions; nothing to blend")
    metric = metrics[0]
    targets = runs[0].array("valid_targets.npy")
    valid = []
    for name, run in zip(names, runs):
        if run is not runs[0] and not same_targets(run.array("valid_targets.npy"), targets):
            raise HarnessError(f"{name} was validated on other rows than {names[0]}; blend only "
                               "runs with the same validation split (the same data and split settings)")
        preds = check_finite(run.array("valid_preds.npy").astype(np.float64), run, "valid_preds.npy", name)
        if len(preds) != len(targets):
            raise HarnessError(f"{name}: {run.path('valid_preds.npy')} has shape {preds.shape}, not one row per "
                               f"validation target ({len(targets)} in valid_targets.npy); train the run again")
        if valid and preds.shape != valid[0].shape:
            raise HarnessError(f"{names[0]} and {name} have validation outputs (valid_preds.npy) of different shapes "
                               f"({valid[0].shape} and {preds.shape}); they cannot be blended")
        valid.append(preds)
    outputs = np.mean(valid, axis=0)
    return Mean(runs, metric, targets, outputs, metric(outputs, targets), [metric(v, targets) for v in valid],
                member_tests(runs, names))


def write_mean(competition, workspace: Path, mean: Mean, names: list[str], summary: dict) -> Run:
    """A new run holding the mean (validation and test outputs, the submission) and ``summary``'s record of
    it; built as ``.partial`` and renamed only when complete."""
    runs, metric = mean.runs, mean.metric
    out = Run.create(workspace, competition.name, partial=True)
    try:
        shutil.copy(runs[0].path("config.toml"), out.path("config.toml"))  # the first run's, for reference
        out.save_array("valid_preds.npy", mean.outputs.astype(np.float32))
        out.save_array("valid_targets.npy", mean.targets)
        summary = {"competition": competition.name, "run": out.id, "kind": "blend", **summary,
                   "runs": [r.id for r in runs], "config_hash": config_hash({"blend": [r.id for r in runs]}),
                   "metrics": {metric.name: mean.score}, "primary_metric": metric.name, "primary_score": mean.score,
                   "direction": metric.direction, "scored_on": "validation predictions (valid_preds.npy)"}
        if mean.tests is not None:  # checked by mean_of, before the folder was made
            stacked, template = mean.tests
            mean_test = stacked.mean(axis=0)
            out.save_array("test_preds.npy", mean_test)
            # A label submission's threshold comes from the validation rows, as each member's did.
            valid = (mean.outputs, mean.targets)
            write_csv(out.path("submission.csv"),
                      competition.submission_from_outputs(mean_test, template, valid=valid, config=runs[0].config()))
            summary["submission"] = str(out.final_dir / "submission.csv")
        out.save_summary(summary)
    except BaseException:
        shutil.rmtree(out.dir, ignore_errors=True)  # half a blend is no run
        raise
    out.finish()
    return out


def blend(competition, study: optuna.Study, workspace: Path, k: int) -> BlendResult:
    if k < 1:
        raise HarnessError(f"--top-k {k}: blend at least one trial")
    trials = top_trials(study, k)
    runs = [_trial_run(t, workspace, competition.name) for t in trials]
    names = [f"trial {t.number} (run {r.id})" for t, r in zip(trials, runs)]
    mean = mean_of(competition, runs, names)
    trial_scores = {t.number: s for t, s in zip(trials, mean.member_scores)}
    run = write_mean(competition, workspace, mean, names, {
        "study": study.study_name, "trials": [t.number for t in trials],
        "trial_scores": {str(n): s for n, s in trial_scores.items()},
        "primary_score_means": ("optimistic: scored on the validation rows that chose the trials (the top k by "
                                "their validation score)")})
    return BlendResult(run, mean.metric.name, mean.score, trial_scores, trials[0].number)


def blend_holdout_runs(competition, workspace: Path, runs: list[Run]) -> MeanResult:
    """The plain mean of named single-split runs validated on the same rows (nothing fitted on them)."""
    names = [f"run {r.id}" for r in runs]
    mean = mean_of(competition, runs, names)
    run = write_mean(competition, workspace, mean, names, {
        "method": "mean", "members": [r.id for r in runs],
        "member_scores": {r.id: s for r, s in zip(runs, mean.member_scores)},
        "primary_score_means": ("the plain mean of the runs' outputs, scored on their shared validation rows; "
                                "nothing is fitted or chosen on those rows, so it is as honest as each run's own "
                                "score (if the runs were picked by their score there, it is optimistic)")})
    return MeanResult(run, mean.metric.name, mean.score, {r.id: s for r, s in zip(runs, mean.member_scores)})
