"""Metrics: the Learner's ``Metric`` objects, and the registry of declared metrics (``METRICS``).

``Metric`` (rmse, accuracy, ...) is what a competition hands the Learner today: a function of the raw
validation outputs and targets. ``accuracy`` there expects logits; fed probabilities it counts every row
as positive. The registry below cannot make that mistake: each ``DeclaredMetric`` says what it takes
(labels, probabilities or values) and ``score(metric, outputs, targets, task)`` maps raw model outputs
through the task (``harness.scoring.tasks``) to exactly that.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from harness.errors import HarnessError
from harness.scoring.tasks import Task, get_task


@dataclass(frozen=True)
class Metric:
    name: str
    fn: Callable  # (preds, targets) -> float; with from_loss, (valid_loss) -> float
    higher_is_better: bool = False
    from_loss: bool = False  # computed from the validation loss (e.g. perplexity), no predictions kept

    @property
    def direction(self) -> str:
        return "maximize" if self.higher_is_better else "minimize"

    def __call__(self, *args) -> float:
        return float(self.fn(*args))

    def better(self, a: float, b: float) -> bool:
        """Is score ``a`` better than ``b``?"""
        return a > b if self.higher_is_better else a < b


def _np(x):
    # a torch tensor, without importing torch here (scoring must not need it)
    return x.detach().float().cpu().numpy() if hasattr(x, "detach") else np.asarray(x, dtype=np.float64)


def rmse_fn(preds, targets) -> float:
    p, t = _np(preds).reshape(-1), _np(targets).reshape(-1)
    return float(np.sqrt(np.mean((p - t) ** 2)))


def rmspe_fn(preds, targets) -> float:
    """Root mean square percentage error, over rows with a non-zero target (as Kaggle scores Rossmann)."""
    p, t = _np(preds).reshape(-1), _np(targets).reshape(-1)
    keep = t != 0
    return float(np.sqrt(np.mean(((t[keep] - p[keep]) / t[keep]) ** 2)))


def exp_rmspe_fn(log_preds, log_targets) -> float:
    """RMSPE on the original scale for a model trained on log targets."""
    return rmspe_fn(np.exp(_np(log_preds)), np.exp(_np(log_targets)))


def accuracy_fn(preds, targets) -> float:
    p, t = _np(preds), _np(targets).reshape(-1)
    labels = p.argmax(axis=1) if p.ndim == 2 and p.shape[1] > 1 else (p.reshape(-1) > 0).astype(int)
    return float((labels == t).mean())


def log_loss_fn(probs, targets, eps=1e-15) -> float:
    """Multi-class log loss with probabilities clipped and renormalised, as Kaggle scores it."""
    p = np.clip(_np(probs), eps, 1 - eps)
    p = p / p.sum(axis=1, keepdims=True)
    t = _np(targets).astype(int).reshape(-1)
    return float(-np.mean(np.log(p[np.arange(len(t)), t])))


def roc_auc_fn(scores, targets) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(_np(targets).reshape(-1), _np(scores).reshape(-1)))


rmse = Metric("rmse", rmse_fn)
rmspe = Metric("rmspe", rmspe_fn)
exp_rmspe = Metric("rmspe", exp_rmspe_fn)
accuracy = Metric("accuracy", accuracy_fn, higher_is_better=True)
log_loss = Metric("log_loss", log_loss_fn)
roc_auc = Metric("roc_auc", roc_auc_fn, higher_is_better=True)
perplexity = Metric("perplexity", lambda loss: math.exp(min(loss, 50.0)), from_loss=True)


# ---------------------------------------------------------------------------- the registry
# Metrics by name, for configs (``metric = "roc_auc"``). Each declares what it takes; ``score`` feeds it
# that from raw model outputs through the task, so no metric sees the wrong scale.

TAKES = ("labels", "probabilities", "values")


@dataclass(frozen=True)
class DeclaredMetric:
    """A registry metric: what it takes, its direction and the task kinds it can score.

    ``fn(targets, predictions, kind)`` (scikit-learn's argument order) expects predictions already on the
    declared scale; call it through :func:`score`, which gets them there from raw model outputs.
    """

    name: str
    takes: str  # "labels" | "probabilities" | "values"
    higher_is_better: bool
    kinds: tuple[str, ...]  # the task kinds it scores
    fn: Callable

    @property
    def direction(self) -> str:
        return "maximize" if self.higher_is_better else "minimize"

    def better(self, a: float, b: float) -> bool:
        """Is score ``a`` better than ``b``?"""
        return a > b if self.higher_is_better else a < b


def _accuracy(t, p, kind):
    from sklearn.metrics import accuracy_score

    return accuracy_score(t, p)  # multilabel: the share of rows with every label right, as sklearn


def _balanced_accuracy(t, p, kind):
    from sklearn.metrics import balanced_accuracy_score

    return balanced_accuracy_score(t, p)


def _f1(t, p, kind):
    from sklearn.metrics import f1_score

    # binary: F1 of the positive class; multiclass and multilabel: the mean over classes (macro)
    return f1_score(t, p, average="binary" if kind == "binary" else "macro", zero_division=0)


def _mcc(t, p, kind):
    from sklearn.metrics import matthews_corrcoef

    return matthews_corrcoef(t, p)


def _qwk(t, p, kind):
    from sklearn.metrics import cohen_kappa_score

    return cohen_kappa_score(t, p, weights="quadratic")


def _roc_auc(t, p, kind):
    from sklearn.metrics import roc_auc_score

    if kind == "multiclass":  # one class against the rest, averaged over classes
        return roc_auc_score(t, p, multi_class="ovr", labels=np.arange(p.shape[1]))
    return roc_auc_score(t, p)  # multilabel: macro over columns


def _log_loss(t, p, kind):
    from sklearn.metrics import log_loss

    # the labels are given so that a fold without some class is still scored on every class
    return log_loss(t, p, labels=[0, 1] if kind == "binary" else np.arange(p.shape[1]))


def _rmse(t, p, kind):
    from sklearn.metrics import root_mean_squared_error

    return root_mean_squared_error(t, p)


def _rmsle(t, p, kind):
    from sklearn.metrics import root_mean_squared_log_error

    for what, x in (("targets", t), ("predictions", p)):
        if np.min(x) < 0:
            raise HarnessError(f"rmsle is defined for values >= 0, but the {what} go down to {np.min(x):.4g}")
    return root_mean_squared_log_error(t, p)


def _mae(t, p, kind):
    from sklearn.metrics import mean_absolute_error

    return mean_absolute_error(t, p)


def _rmspe(t, p, kind):
    # scikit-learn has none; rows with a zero target are left out, as Kaggle scores Rossmann
    t, p = np.reshape(t, -1), np.reshape(p, -1)
    keep = t != 0
    if not keep.any():
        raise HarnessError("rmspe needs some non-zero targets; every target is 0")
    return np.sqrt(np.mean(((t[keep] - p[keep]) / t[keep]) ** 2))


def _r2(t, p, kind):
    from sklearn.metrics import r2_score

    return r2_score(t, p)


_CLASSES = ("binary", "multiclass")
METRICS: dict[str, DeclaredMetric] = {
    m.name: m
    for m in (
        DeclaredMetric("accuracy", "labels", True, ("binary", "multiclass", "multilabel"), _accuracy),
        DeclaredMetric("balanced_accuracy", "labels", True, _CLASSES, _balanced_accuracy),
        DeclaredMetric("f1", "labels", True, ("binary", "multiclass", "multilabel"), _f1),
        DeclaredMetric("mcc", "labels", True, _CLASSES, _mcc),
        DeclaredMetric("qwk", "labels", True, _CLASSES, _qwk),
        DeclaredMetric("roc_auc", "probabilities", True, ("binary", "multiclass", "multilabel"), _roc_auc),
        DeclaredMetric("log_loss", "probabilities", False, _CLASSES, _log_loss),
        DeclaredMetric("rmse", "values", False, ("regression",), _rmse),
        DeclaredMetric("rmsle", "values", False, ("regression",), _rmsle),
        DeclaredMetric("mae", "values", False, ("regression",), _mae),
        DeclaredMetric("rmspe", "values", False, ("regression",), _rmspe),
        DeclaredMetric("r2", "values", True, ("regression",), _r2),
    )
}


def get_metric(metric) -> DeclaredMetric:
    """A registry metric by name (or as given)."""
    if isinstance(metric, DeclaredMetric):
        return metric
    if metric not in METRICS:
        raise HarnessError(f"unknown metric {metric!r}; known: {', '.join(sorted(METRICS))}")
    return METRICS[metric]


def metrics_for(task) -> list[str]:
    """The names of the registry metrics that can score ``task``."""
    kind = get_task(task).kind
    return sorted(name for name, m in METRICS.items() if kind in m.kinds)


def _check_kind(metric: DeclaredMetric, task: Task) -> None:
    if task.kind not in metric.kinds:
        raise HarnessError(
            f"metric {metric.name!r} does not score a {task.kind} task "
            f"(it scores {', '.join(metric.kinds)}); metrics for a {task.kind} task: {', '.join(metrics_for(task))}"
        )


def check_targets(task, targets, outputs_shape: tuple) -> np.ndarray:
    """The targets as the metrics want them (0/1 or class labels as ints), checked against the outputs."""
    task = get_task(task)
    y = _np(targets)
    if task.kind in ("regression", "binary") and y.ndim == 2 and y.shape[1] == 1:
        y = y.reshape(-1)
    n = outputs_shape[0]
    if task.kind == "multilabel":
        if y.shape != tuple(outputs_shape):
            raise HarnessError(f"multilabel targets have shape {y.shape}, the outputs {tuple(outputs_shape)}")
    elif task.kind == "regression" and y.shape != tuple(outputs_shape):
        raise HarnessError(f"regression targets have shape {y.shape}, the outputs {tuple(outputs_shape)}")
    elif task.kind in _CLASSES and (y.ndim != 1 or len(y) != n):
        raise HarnessError(f"{task.kind} targets are one label per row: got shape {y.shape} for {n} rows")
    if not np.all(np.isfinite(y)):
        raise HarnessError("the targets contain NaN or infinite values")
    if task.kind == "regression":
        return y
    classes = 2 if task.kind != "multiclass" else outputs_shape[1]
    if np.any(y != np.round(y)) or y.min(initial=0) < 0 or y.max(initial=0) >= classes:
        raise HarnessError(
            f"{task.kind} targets are integer labels in 0..{classes - 1}, "
            f"but they range over [{y.min():.4g}, {y.max():.4g}]"
        )
    return y.astype(int)


def predictions_for(metric, outputs, task, threshold: float = 0.5) -> np.ndarray:
    """What ``metric`` takes (labels, probabilities or values), from raw model outputs of ``task``."""
    metric, task = get_metric(metric), get_task(task)
    _check_kind(metric, task)
    outputs = _np(outputs)
    if metric.takes == "labels":
        return task.to_labels(outputs, threshold)
    if metric.takes == "probabilities":
        return task.to_probabilities(outputs)
    return task.check_outputs(outputs)


def score(metric, outputs, targets, task, threshold: float = 0.5) -> float:
    """Score raw model ``outputs`` (on the task's output scale, e.g. binary logits) against ``targets``.

    The task maps the outputs to what the metric takes: accuracy on binary logits applies the sigmoid,
    then ``threshold``; roc_auc gets the probabilities; rmse the values.
    """
    metric, task = get_metric(metric), get_task(task)
    predictions = predictions_for(metric, outputs, task, threshold)
    y = check_targets(task, targets, task.check_outputs(_np(outputs)).shape)
    import warnings

    with warnings.catch_warnings(record=True) as caught:  # sklearn warns and returns NaN where undefined
        warnings.simplefilter("always")
        try:
            value = float(metric.fn(y, predictions, task.kind))
        except ValueError as e:  # scikit-learn's word on inputs it cannot score
            raise HarnessError(f"metric {metric.name!r} cannot score these predictions: {e}") from None
    if not math.isfinite(value):
        why = "; ".join(str(w.message) for w in caught) or f"it came out {value}"
        raise HarnessError(f"metric {metric.name!r} cannot score these predictions: {why}")
    for w in caught:  # anything else sklearn had to say still reaches the user
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return value


def choose_threshold(
    metric, probabilities, targets, task="binary", max_candidates: int = 1000
) -> tuple[float, float]:
    """The threshold on probabilities that scores best for a label metric, and that score.

    Meant for out-of-fold probabilities. Candidates lie midway between neighbouring distinct
    probabilities (at most ``max_candidates``, by quantiles beyond that), so each one splits the rows a
    different way; ties go to the threshold nearest 0.5.
    """
    metric, task = get_metric(metric), get_task(task)
    _check_kind(metric, task)
    if not task.has_threshold:
        raise HarnessError(f"a {task.kind} task's labels come from argmax, not a threshold")
    if metric.takes != "labels":
        raise HarnessError(
            f"metric {metric.name!r} takes {metric.takes}, not labels: no threshold changes it"
        )
    p = get_task(task.kind, "probabilities").check_outputs(_np(probabilities))
    y = check_targets(task, targets, p.shape)
    values = np.unique(p)
    if len(values) > max_candidates:
        values = np.unique(np.quantile(p, np.linspace(0, 1, max_candidates)))
    # 0 and 1 as end points, so that "all positive" and "all negative" are candidates too
    values = np.unique(np.concatenate([[0.0], values, [1.0]]))
    candidates = (values[:-1] + values[1:]) / 2
    scores = np.array([metric.fn(y, task.labels_from_probabilities(p, c), task.kind) for c in candidates])
    best = scores.max() if metric.higher_is_better else scores.min()
    tied = np.flatnonzero(scores == best)
    i = tied[np.argmin(np.abs(candidates[tied] - 0.5))]
    return float(candidates[i]), float(scores[i])


def _learner_score(metric, task, threshold, preds, targets) -> float:
    return score(metric, preds, targets, task, threshold)


def learner_metric(metric, task, threshold: float = 0.5) -> Metric:
    """A registry metric as a ``Metric`` for the Learner, which calls it on raw validation outputs."""
    from functools import partial

    metric, task = get_metric(metric), get_task(task)
    _check_kind(metric, task)
    return Metric(metric.name, partial(_learner_score, metric, task, threshold), metric.higher_is_better)
