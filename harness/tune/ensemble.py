"""Ensembles of K-fold runs, fitted on their out-of-fold (OOF) predictions and scored honestly.

Runs that share folds (identical ``folds.csv``) each hold one OOF prediction per training row. A
blender combines them: ``mean``; ``weights`` (non-negative, summing to 1, fitted on OOF by
non-negative least squares for squared-error metrics, else by scipy's optimiser on the metric);
``caruana`` (Caruana et al. 2004: greedy forward selection with replacement, by the metric); ``stack``
(a level-2 scikit-learn model on the OOF predictions: Ridge for regression, LogisticRegression for
classification).

Fitted on all OOF rows and scored on the same rows, a blender looks better than it is: it has chosen
how to predict each row with that row's label in view. The honest score is nested: for each outer fold
i the blender is fitted on the other folds' OOF rows only and predicts fold i's rows; the metric on
those predictions is the blend's CV score (:func:`cross_validate`). The blender fitted once on all OOF
rows then combines the runs' test outputs for the submission (:func:`blend_runs`).

Everything is on the scale of the runs' outputs (``oof_preds.npy``, ``test_preds.npy``: the model's
outputs), which the competition's ``submission_from_outputs`` takes. The functions up to
:func:`cross_validate` are numpy/scipy/scikit-learn only: ``members`` is an array of shape
``(n_members, n_rows, *output_shape)`` and ``score(outputs, targets) -> float`` the metric.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from harness.errors import HarnessError

METHODS = ("mean", "weights", "caruana", "stack")
SQUARED_ERROR = ("rmse", "mse")  # metric names whose weights nnls fits exactly
CARUANA_STEPS = 50  # Caruana's selection rounds; the best ensemble seen on the way is kept
NNLS_PENALTY = 1e3  # weight of the "weights sum to 1" row appended to the least-squares problem


@dataclass(frozen=True)
class Objective:
    """The metric to fit the blender by: ``score(outputs, targets)`` and its direction."""

    score: Callable[[np.ndarray, np.ndarray], float]
    higher_is_better: bool = False
    squared_error: bool = False  # the metric is (a monotone function of) the mean squared error

    def loss(self, outputs, targets) -> float:
        """Lower is better, whatever the metric's direction."""
        value = float(self.score(outputs, targets))
        if not np.isfinite(value):
            return np.inf
        return -value if self.higher_is_better else value


def weighted(weights, members) -> np.ndarray:
    """The members' outputs averaged with ``weights`` (one per member)."""
    return np.tensordot(np.asarray(weights, dtype=np.float64), np.asarray(members, dtype=np.float64), axes=1)


@dataclass
class Blender:
    """A fitted blender: ``weights`` over the members (mean, weights, caruana), or a level-2 ``model``
    (stack: one estimator, or one per output column for multilabel)."""

    method: str
    weights: np.ndarray | None = None
    model: Any = None
    task: Any = None  # harness.scoring.tasks.Task, for stack
    info: dict = field(default_factory=dict)  # what the fit chose, for the summary

    def predict(self, members) -> np.ndarray:
        """Blended outputs, on the members' output scale, for ``members`` (n_members, n_rows, ...)."""
        members = np.asarray(members, dtype=np.float64)
        if self.weights is not None:
            return weighted(self.weights, members)
        return _stack_predict(self, members)

    def describe(self, names: list[str]) -> dict:
        """JSON-ready: the weights by member name, or the level-2 model's coefficients."""
        if self.weights is not None:
            return {"weights": {n: float(w) for n, w in zip(names, self.weights)}, **self.info}
        return dict(self.info)


# ---------------------------------------------------------------------------- the methods

def fit_weights(members, targets, objective: Objective) -> np.ndarray:
    """Non-negative weights summing to 1 that fit the members' OOF outputs to ``targets``.

    Squared-error metrics: scipy.optimize.nnls on the outputs, with a heavily weighted extra row that
    holds the weights' sum at 1 (then renormalised exactly). Any other metric: scipy.optimize.minimize
    (SLSQP, bounds 0..1, sum 1) of the metric, started from the mean and from each single member, the
    best result kept, so the fit is never worse in-sample than the mean or the best member.
    """
    members = np.asarray(members, dtype=np.float64)
    m = len(members)
    if m == 1:
        return np.ones(1)
    if objective.squared_error:
        from scipy.optimize import nnls

        a = members.reshape(m, -1).T
        b = np.asarray(targets, dtype=np.float64).reshape(-1)
        scale = NNLS_PENALTY * np.sqrt(len(b)) * max(float(np.abs(a).mean()), 1e-12)
        w, _ = nnls(np.vstack([a, np.full((1, m), scale)]), np.concatenate([b, [scale]]), maxiter=50 * m)
        return _normalised(w)
    from scipy.optimize import minimize

    def loss(w):
        return objective.loss(weighted(w, members), targets)

    starts = [np.full(m, 1.0 / m)] + list(np.eye(m))
    best_w, best = starts[0], loss(starts[0])
    for x0 in starts:
        # eps: the metric reaches us through float32 torch tensors, so finite differences need a step
        # well above float32 noise
        result = minimize(loss, x0, method="SLSQP", bounds=[(0.0, 1.0)] * m,
                          constraints=({"type": "eq", "fun": lambda w: np.sum(w) - 1.0},),
                          options={"maxiter": 200, "ftol": 1e-10, "eps": 1e-4})
        for w in (x0, _normalised(result.x)):
            value = loss(w)
            if value < best - 1e-12:
                best_w, best = w, value
    return _normalised(best_w)


def _normalised(w) -> np.ndarray:
    w = np.clip(np.asarray(w, dtype=np.float64), 0.0, None)
    total = w.sum()
    if not total > 0:
        return np.full(len(w), 1.0 / len(w))
    return w / total


def fit_caruana(members, targets, objective: Objective, steps: int = CARUANA_STEPS) -> tuple[np.ndarray, list[int]]:
    """Caruana et al.'s ensemble selection: start empty, and at each step add (with replacement) the
    member whose addition makes the ensemble's mean score best; keep the best ensemble seen in ``steps``
    steps. Returns the weights (how often each member was picked / picks) and the picks in order."""
    members = np.asarray(members, dtype=np.float64)
    counts = np.zeros(len(members))
    total = np.zeros_like(members[0])
    best, best_counts, picks = np.inf, None, []
    for step in range(1, steps + 1):
        losses = [objective.loss((total + member) / step, targets) for member in members]
        j = int(np.argmin(losses))
        counts[j] += 1
        total = total + members[j]
        picks.append(j)
        if losses[j] < best - 1e-12:
            best, best_counts = losses[j], counts.copy()
    if best_counts is None:  # every candidate scored NaN or infinite
        raise HarnessError("caruana: no ensemble of these runs gets a finite score")
    n_best = int(best_counts.sum())
    return best_counts / n_best, picks[:n_best]


def _features(members) -> np.ndarray:
    """The level-2 model's inputs: one row per OOF row, the members' outputs side by side."""
    n_members, n_rows = members.shape[:2]
    return np.moveaxis(members, 0, 1).reshape(n_rows, -1)


def fit_stack(members, targets, task) -> Blender:
    """A level-2 model on the members' outputs: Ridge (regression) or LogisticRegression (binary and
    multiclass; one per column for multilabel), predicting on the members' output scale."""
    from sklearn.linear_model import LogisticRegression, Ridge

    members = np.asarray(members, dtype=np.float64)
    y = np.asarray(targets, dtype=np.float64)
    if task.kind == "regression":
        model = Ridge(alpha=1.0).fit(_features(members), y.reshape(len(y), -1) if y.ndim > 1 else y)
        info = {"level2": "Ridge(alpha=1.0)", "coefficients": np.ravel(model.coef_).tolist(),
                "intercept": np.ravel(model.intercept_).tolist()}
        return Blender("stack", model=model, task=task, info=info)
    if task.kind == "multilabel":
        models = [_logistic(members[:, :, j], y[:, j]) for j in range(y.shape[1])]
        info = {"level2": "LogisticRegression per label", "coefficients": [np.ravel(m.coef_).tolist() for m in models],
                "intercept": [np.ravel(m.intercept_).tolist() for m in models]}
        return Blender("stack", model=models, task=task, info=info)
    labels = y.reshape(-1).astype(int)
    if len(np.unique(labels)) < 2:
        raise HarnessError("stack: the OOF rows it is fitted on hold one class only")
    model = LogisticRegression(C=1.0, max_iter=1000).fit(_features(members), labels)
    info = {"level2": "LogisticRegression(C=1.0)", "coefficients": model.coef_.tolist(),
            "intercept": model.intercept_.tolist(), "classes": model.classes_.tolist()}
    return Blender("stack", model=model, task=task, info=info)


def _logistic(members, labels):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=1.0, max_iter=1000).fit(_features(members), labels.astype(int))


_LOG_EPS = np.log(1e-15)  # the log-probability of a class the level-2 model never saw


def _stack_predict(blender: Blender, members) -> np.ndarray:
    task, model = blender.task, blender.model
    shape = members.shape[1:]
    if task.kind == "regression":
        return model.predict(_features(members)).reshape(shape)
    if task.kind == "multilabel":
        columns = [_binary_output(m, members[:, :, j], task) for j, m in enumerate(model)]
        return np.stack(columns, axis=1)
    x = _features(members)
    if task.kind == "binary":
        return _binary_output(model, members, task).reshape(shape)
    # multiclass: log-probabilities (valid logits too), every class, even one a fold's rows lacked
    out = np.full((len(x), shape[-1]), _LOG_EPS)
    out[:, model.classes_.astype(int)] = model.predict_log_proba(x)
    return out - np.logaddexp.reduce(out, axis=1, keepdims=True)


def _binary_output(model, members, task) -> np.ndarray:
    x = _features(members)
    if task.outputs == "probabilities":
        return model.predict_proba(x)[:, 1]
    return model.decision_function(x)  # logits


def fit_blender(method: str, members, targets, objective: Objective, task=None) -> Blender:
    """The blender ``method`` fitted on the members' outputs for these rows."""
    members = np.asarray(members, dtype=np.float64)
    if method == "mean":
        return Blender("mean", weights=np.full(len(members), 1.0 / len(members)))
    if method == "weights":
        how = "nnls (sum held at 1)" if objective.squared_error else "scipy.optimize.minimize (SLSQP) of the metric"
        return Blender("weights", weights=fit_weights(members, targets, objective), info={"fitted_by": how})
    if method == "caruana":
        weights, picks = fit_caruana(members, targets, objective)
        return Blender("caruana", weights=weights, info={"picks": picks})
    if method == "stack":
        if task is None:
            raise HarnessError("stack needs the task (regression, binary, multiclass or multilabel)")
        return fit_stack(members, targets, task)
    raise HarnessError(f"unknown blend method {method!r}; known: {', '.join(METHODS)}")


@dataclass
class CrossValidated:
    """A blend's honest (nested) and naive (in-sample) scores, and the blender fitted on all OOF rows."""

    nested: np.ndarray  # each validated row predicted by a blender fitted without its fold
    nested_score: float  # the metric on ``nested``: the blend's CV score
    fold_scores: list[float]  # the metric on each outer fold's nested predictions
    final: Blender  # fitted on all OOF rows: combines the test outputs
    in_sample_score: float  # ``final`` scored on the rows it was fitted on (optimistic)


def cross_validate(method: str, members, targets, folds, objective: Objective, task=None) -> CrossValidated:
    """Nested CV of a blender: for each outer fold i, fit on the OOF rows of the other folds and predict
    fold i's rows. ``folds`` holds each row's fold (< 0: a row no fold validates, left out)."""
    members = np.asarray(members, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    folds = np.asarray(folds).reshape(-1)
    if members.shape[1] != len(folds) or len(targets) != len(folds):
        raise HarnessError(f"{members.shape[1]} OOF rows and {len(targets)} targets for {len(folds)} rows in the folds")
    validated = folds >= 0
    fold_ids = np.unique(folds[validated])
    if len(fold_ids) < 2:
        raise HarnessError("a nested blend needs at least 2 folds")
    nested = np.full(members.shape[1:], np.nan)
    fold_scores = []
    for k in fold_ids:
        fit_rows, held = validated & (folds != k), folds == k
        blender = fit_blender(method, members[:, fit_rows], targets[fit_rows], objective, task)
        nested[held] = blender.predict(members[:, held])
        fold_scores.append(float(objective.score(nested[held], targets[held])))
    nested_score = float(objective.score(nested[validated], targets[validated]))
    final = fit_blender(method, members[:, validated], targets[validated], objective, task)
    in_sample = float(objective.score(final.predict(members[:, validated]), targets[validated]))
    return CrossValidated(nested, nested_score, fold_scores, final, in_sample)


def infer_task(oof, targets, declared=None):
    """The task of a competition's outputs: the one it declares (``Competition.task``, if any), else
    read off the OOF outputs and targets: one column per class -> multiclass (1-D labels) or
    multilabel; one column with 0/1 targets -> binary (probabilities if every output lies in [0, 1]);
    else regression."""
    from harness.scoring.tasks import get_task

    if declared:
        return get_task(declared)
    oof, targets = np.asarray(oof, dtype=np.float64), np.asarray(targets, dtype=np.float64)
    if oof.ndim == 2 and oof.shape[1] > 1:
        kind = "multilabel" if targets.shape == oof.shape else "multiclass"
        if kind == "multiclass":
            return get_task("multiclass", "log_probabilities" if np.all(oof <= 1e-6) else "logits")
        return get_task(kind, "probabilities" if np.all((oof >= 0) & (oof <= 1)) else "logits")
    if np.all(np.isin(targets, (0.0, 1.0))):
        return get_task("binary", "probabilities" if np.all((oof >= 0) & (oof <= 1)) else "logits")
    return get_task("regression")


# ---------------------------------------------------------------------------- run folders

@dataclass
class EnsembleResult:
    run: Any  # harness.runs.folder.Run: the new run folder
    method: str
    metric: str
    members: list[str]
    cv_score: float  # honest: nested
    in_sample_score: float  # naive: fitted and scored on the same OOF rows
    member_scores: dict  # run id -> its own CV score on the same rows
    fold_scores: list[float]
    blender: Blender


def _torch_score(metric, preds_dtype, targets_dtype):
    """The competition's metric called as the Learner calls it: on torch tensors."""
    import torch

    def score(outputs, targets):
        return metric(torch.from_numpy(np.ascontiguousarray(outputs, dtype=preds_dtype)),
                      torch.from_numpy(np.ascontiguousarray(targets, dtype=targets_dtype)))

    return score


def same_targets(mine: np.ndarray, targets: np.ndarray) -> bool:
    """The same targets (the same rows, in order; NaN where no fold validates), whatever float type each run
    saved them in."""
    mine, targets = mine.astype(np.float64), targets.astype(np.float64)
    if mine.shape != targets.shape:
        return False
    known = ~np.isnan(targets)
    return bool(np.array_equal(np.isnan(mine), ~known) and np.allclose(mine[known], targets[known]))


def check_finite(outputs: np.ndarray, run, file: str, name: str, rows=None) -> np.ndarray:
    """``outputs`` (member ``name``'s ``file``), refused naming both if any of ``rows`` (all by default)
    is NaN or infinite: a blend of them would score NaN or submit empty values."""
    bad = ~np.isfinite(outputs if rows is None else outputs[rows])
    if bad.any():
        raise HarnessError(f"{name}: {run.path(file)} holds {int(bad.sum())} NaN or infinite value(s) (the model "
                           "diverged?); retrain the run or blend without it")
    return outputs


def member_tests(runs, names: list[str]):
    """(the members' test outputs stacked, the first one's submission.csv as the template), checked to be
    finite, of one shape and for the same ids in the same order; None when a member has no test outputs."""
    import pandas as pd

    if not all(r.path("test_preds.npy").exists() and r.path("submission.csv").exists() for r in runs):
        return None
    template = pd.read_csv(runs[0].path("submission.csv"))
    tests = []
    for name, run in zip(names, runs):
        if not pd.read_csv(run.path("submission.csv")).iloc[:, 0].equals(template.iloc[:, 0]):
            raise HarnessError(f"the submissions of {names[0]} and {name} differ in their ids or row order; they "
                               "cannot be blended")
        test = check_finite(run.array("test_preds.npy").astype(np.float64), run, "test_preds.npy", name)
        if len(test) != len(template):
            raise HarnessError(f"{name}: {run.path('test_preds.npy')} has shape {test.shape}, but the submissions "
                               f"have {len(template)} rows; predict again with "
                               f"`harness predict {run.competition} --run {run.id}`")
        if tests and test.shape != tests[0].shape:
            raise HarnessError(f"{names[0]} and {name} have test outputs (test_preds.npy) of different shapes "
                               f"({tests[0].shape} and {test.shape}); they cannot be blended")
        tests.append(test)
    return np.stack(tests), template


def _same_folds(runs) -> np.ndarray:
    import pandas as pd

    tables = []
    for run in runs:
        path = run.path("folds.csv")
        if not path.is_file():
            raise HarnessError(f"run {run.id} has no folds.csv: it is not a K-fold run, and K-fold and single-split "
                               f"runs cannot be blended together; train it with `harness train {run.competition} "
                               "--folds K`")
        tables.append(pd.read_csv(path))
    for run, table in zip(runs[1:], tables[1:]):
        if not table.equals(tables[0]):
            raise HarnessError(f"runs {runs[0].id} and {run.id} were trained on different folds (their folds.csv "
                               "differ); blend only runs trained on the same folds (the same data, [validation] "
                               "scheme and split_seed)")
    # With repeats (fold_0, fold_1, ...) the weights are nested in the first repeat's folds: every OOF
    # prediction being blended is already out of fold, so any partition of the rows keeps the blend honest.
    column = "fold" if "fold" in tables[0].columns else "fold_0"
    if column not in tables[0].columns:
        raise HarnessError(f"{runs[0].path('folds.csv')} has no fold column (fold, or fold_0 with repeats)")
    return tables[0][column].to_numpy()


def _dtypes(run) -> tuple:
    """The dtypes the run's fold models' validation outputs and targets had (as the Learner scored them)."""
    fold = run.path("fold-0")
    try:
        return (np.load(fold / "valid_preds.npy", mmap_mode="r").dtype,
                np.load(fold / "valid_targets.npy", mmap_mode="r").dtype)
    except (OSError, ValueError):
        return np.dtype(np.float32), np.dtype(np.float32)


def named_runs(competition, workspace: Path, run_ids: list[str]) -> list:
    """The finished runs ``--runs`` names (at least two, each once)."""
    from harness.runs.folder import Run

    ids = list(dict.fromkeys(i.strip() for i in run_ids if i.strip()))
    if len(ids) < 2:
        raise HarnessError(f"--runs {','.join(run_ids)}: name at least two different runs to blend")
    runs = [Run.find(workspace, competition.name, i) for i in ids]
    for run in runs:
        if not run.finished:
            raise HarnessError(f"run {run.id} is not finished; finish it with "
                               f"`harness train {competition.name} --resume --run {run.id}`")
    return runs


def is_kfold(run) -> bool:
    return run.path("folds.csv").is_file()


def blend_runs(competition, workspace: Path, run_ids: list[str], method: str = "mean") -> EnsembleResult:
    """Blend finished K-fold runs of ``competition`` that share folds into a new run folder.

    Writes ``summary.json`` (method, members, weights or level-2 coefficients, the honest nested CV score
    and, labelled as such, the naive in-sample one), ``oof_preds.npy`` (the nested predictions),
    ``oof_targets.npy``, ``folds.csv``, ``test_preds.npy`` and ``submission.csv`` (the runs' test outputs
    combined by the blender fitted on all OOF rows, through ``submission_from_outputs``).
    """
    import shutil

    from harness.runs.folder import Run

    if method not in METHODS:
        raise HarnessError(f"unknown blend method {method!r}; known: {', '.join(METHODS)}")
    runs = named_runs(competition, workspace, run_ids)
    folds = _same_folds(runs)
    config = runs[0].config()
    metrics = competition.scored_by(config)  # the primary metric the runs' CV scores used
    if not metrics or metrics[0].from_loss:
        raise HarnessError(f"{competition.name}'s primary metric is not computed from predictions; nothing to blend")
    metric = metrics[0]
    targets = runs[0].array("oof_targets.npy").astype(np.float64)
    validated = folds >= 0
    members = []
    for run in runs:
        oof = run.array("oof_preds.npy").astype(np.float64)
        if oof.shape[:1] != (len(folds),) or run.array("oof_targets.npy").shape != targets.shape:
            raise HarnessError(f"run {run.id}: oof_preds.npy has {oof.shape[0]} rows for {len(folds)} in folds.csv")
        if run is not runs[0]:
            if oof.shape != members[0].shape:
                raise HarnessError(f"runs {runs[0].id} and {run.id} have outputs (oof_preds.npy) of different "
                                   f"shapes ({members[0].shape} and {oof.shape}); they cannot be blended")
            if not same_targets(run.array("oof_targets.npy"), targets):
                raise HarnessError(f"runs {runs[0].id} and {run.id} have different OOF targets; they were trained "
                                   "on different data")
        members.append(check_finite(oof, run, "oof_preds.npy", f"run {run.id}", rows=validated))
    members = np.stack(members)
    tests = member_tests(runs, [f"run {r.id}" for r in runs])
    if np.isnan(targets[validated]).any():  # the members' outputs there are checked finite above
        raise HarnessError("some validated rows have no OOF prediction; retrain the runs' missing folds")
    score = _torch_score(metric, *_dtypes(runs[0]))
    objective = Objective(score, metric.higher_is_better, squared_error=metric.name in SQUARED_ERROR)
    task = infer_task(members[0][validated], targets[validated], competition.task) \
        if method == "stack" else None
    # Rows no fold validates carry NaN: give them a placeholder (never fitted on nor scored).
    filled_members, filled_targets = np.nan_to_num(members), np.nan_to_num(targets)
    cv = cross_validate(method, filled_members, filled_targets, folds, objective, task)
    member_scores = {run.id: float(score(m[validated], targets[validated])) for run, m in zip(runs, members)}

    out = Run.create(workspace, competition.name, partial=True)
    try:
        _write_ensemble(competition, out, runs, method, metric, folds, validated, members, targets, cv, task,
                        member_scores, tests)
    except BaseException:
        shutil.rmtree(out.dir, ignore_errors=True)  # half a blend is no run
        raise
    return EnsembleResult(out, method, metric.name, [r.id for r in runs], cv.nested_score, cv.in_sample_score,
                          member_scores, cv.fold_scores, cv.final)


def _write_ensemble(competition, out, runs, method, metric, folds, validated, members, targets, cv, task,
                    member_scores, tests) -> None:
    import shutil

    from harness.config.loading import config_hash
    from harness.workspace import write_csv

    shutil.copy(runs[0].path("config.toml"), out.path("config.toml"))  # the first member's, for reference
    shutil.copy(runs[0].path("folds.csv"), out.path("folds.csv"))
    nested = np.where(validated.reshape((-1,) + (1,) * (members.ndim - 2)), cv.nested, np.nan)
    out.save_array("oof_preds.npy", nested)
    out.save_array("oof_targets.npy", targets)
    summary = {
        "competition": competition.name, "run": out.id, "kind": "ensemble", "method": method,
        "members": [r.id for r in runs], **cv.final.describe([r.id for r in runs]),
        "config_hash": config_hash({"ensemble": method, "members": [r.id for r in runs]}),
        "primary_metric": metric.name, "direction": metric.direction,
        "primary_score": cv.nested_score, "cv_score": cv.nested_score,
        "cv_score_means": ("honest: nested CV, each row predicted by a blender fitted on the other folds' "
                           "OOF rows only, never with its own label"),
        "in_sample_score": cv.in_sample_score,
        "in_sample_score_means": ("naive, optimistic: the blender fitted on all OOF rows and scored on the same "
                                  "rows; not an estimate of the test score"),
        "fold_scores": cv.fold_scores, "member_cv_scores": member_scores,
        "folds": int(len(np.unique(folds[validated]))), "oof_rows": int(validated.sum()),
    }
    if task is not None:
        summary["task"] = {"kind": task.kind, "outputs": task.outputs}
    if tests is not None:  # member_tests: checked before the folder was made
        stacked, template = tests
        blended = cv.final.predict(stacked)
        out.save_array("test_preds.npy", blended)
        # A label submission's threshold comes from the nested (honest) OOF blend, never the test rows.
        valid = (cv.nested[validated], targets[validated])
        write_csv(out.path("submission.csv"), competition.submission_from_outputs(
            blended, template, valid=valid, config=runs[0].config()))
        summary["submission"] = str(out.final_dir / "submission.csv")
    out.save_summary(summary)
    out.finish()
