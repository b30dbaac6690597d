"""Gradient boosting (LightGBM) as a learner with the torch Learner's protocol, so that the shared run
flow (``runner.finish_run``, ``kfold.train_folds``) trains, scores, saves and reloads it unchanged.

The honesty rule: the number of rounds is never chosen on the validation rows that are then reported.
Early stopping watches an inner split of the *training* rows (``inner_valid_pct``, stratified for
classification, seeded); with ``refit`` the final model is refitted on all training rows with the chosen
count scaled up for the larger set. The validation rows are only scored (and their loss recorded per
round for the plot; nothing reads it while training).

LightGBM is imported inside functions: it is an optional dependency, and this module must not slow the
CLI down. Everything here is numpy in, numpy out.
"""
from __future__ import annotations

import json
import math
import re
import traceback

import numpy as np
from scipy.special import log_softmax

from harness.errors import HarnessError
from harness.progress import echo as echo_line
from harness.progress import progress_bar
from harness.scoring.tasks import OUTPUT_SCALES, Task, get_task
from harness.train import interrupts
from harness.workspace import atomic_path

# The config's [gbm] table and its defaults.
DEFAULTS = {
    "n_estimators": 2000,  # the most rounds (early stopping usually stops well before)
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_child_samples": 20,
    "feature_fraction": 1.0,
    "bagging_fraction": 1.0,
    "bagging_freq": 0,
    "lambda_l2": 0.0,
    "max_bin": 255,
    "early_stopping_rounds": 100,  # 0: all n_estimators rounds, no inner split
    "inner_valid_pct": 0.1,  # the share of the training rows early stopping watches
    "refit": True,  # refit on all training rows with the chosen rounds scaled by 1 / (1 - inner_valid_pct)
    "categorical": "native",  # native: LightGBM's categorical splits; ordinal: the codes as numbers
    "num_threads": 0,  # 0: LightGBM's default (OpenMP's thread count)
}
CATEGORICAL_MODES = ("native", "ordinal")
KINDS = ("regression", "binary", "multiclass")
OBJECTIVES = {"regression": "regression", "binary": "binary", "multiclass": "multiclass"}
# LightGBM's metric for each task's loss: MSE, BCE on logits, cross-entropy.
LOSS_METRICS = {"regression": "l2", "binary": "binary_logloss", "multiclass": "multi_logloss"}
FILE_FORMAT = "harness-gbm"
FILE_VERSION = 1


def lightgbm():
    try:
        import lightgbm as lgb
    except ImportError:
        raise HarnessError("model.kind = \"gbm\" needs LightGBM, which is not installed; "
                           "install it with `pip install lightgbm`") from None
    return lgb


# ---------------------------------------------------------------------------- parameters
def _check_number(params, key, low, high=math.inf, integer=False, low_open=False):
    value = params[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and value != int(value)):
        raise HarnessError(f"[gbm] {key} must be {'an integer' if integer else 'a number'}, not {value!r}")
    if value < low or (low_open and value == low) or value > high:
        left = "(" if low_open else "["
        raise HarnessError(f"[gbm] {key} = {value} is outside {left}{low}, {high}]; set it inside")
    return int(value) if integer else float(value)


def gbm_params(params: dict | None) -> dict:
    """The [gbm] table with the defaults filled in, checked (an unknown key is an error: a typo would
    otherwise be silently ignored)."""
    params = dict(params or {})
    unknown = sorted(set(params) - set(DEFAULTS))
    if unknown:
        raise HarnessError(f"unknown [gbm] key(s) {', '.join(unknown)}; known: {', '.join(DEFAULTS)}")
    p = {**DEFAULTS, **params}
    p["n_estimators"] = _check_number(p, "n_estimators", 1, integer=True)
    p["learning_rate"] = _check_number(p, "learning_rate", 0, low_open=True)
    p["num_leaves"] = _check_number(p, "num_leaves", 2, 131072, integer=True)
    p["min_child_samples"] = _check_number(p, "min_child_samples", 0, integer=True)
    p["feature_fraction"] = _check_number(p, "feature_fraction", 0, 1, low_open=True)
    p["bagging_fraction"] = _check_number(p, "bagging_fraction", 0, 1, low_open=True)
    p["bagging_freq"] = _check_number(p, "bagging_freq", 0, integer=True)
    p["lambda_l2"] = _check_number(p, "lambda_l2", 0)
    p["max_bin"] = _check_number(p, "max_bin", 2, integer=True)
    p["early_stopping_rounds"] = _check_number(p, "early_stopping_rounds", 0, integer=True)
    p["num_threads"] = _check_number(p, "num_threads", 0, integer=True)
    if p["early_stopping_rounds"]:
        p["inner_valid_pct"] = _check_number(p, "inner_valid_pct", 0, 1, low_open=True)
        if p["inner_valid_pct"] == 1:
            raise HarnessError("[gbm] inner_valid_pct = 1 leaves no training rows to fit; set it below 1 (0.1 is usual)")
    if not isinstance(p["refit"], bool):
        raise HarnessError(f"[gbm] refit must be true or false, not {p['refit']!r}")
    if p["categorical"] not in CATEGORICAL_MODES:
        raise HarnessError(f"[gbm] categorical must be one of {', '.join(CATEGORICAL_MODES)}, not {p['categorical']!r}")
    return p


def lightgbm_params(p: dict, kind: str, n_classes: int, seed: int) -> dict:
    """LightGBM's parameters for one training: the [gbm] table's, the task's objective, and what makes
    two runs on the same data give the same model (seed, deterministic, column-wise histograms)."""
    out = {
        "objective": OBJECTIVES[kind], "metric": LOSS_METRICS[kind],
        "learning_rate": p["learning_rate"], "num_leaves": p["num_leaves"],
        "min_child_samples": p["min_child_samples"], "feature_fraction": p["feature_fraction"],
        "bagging_fraction": p["bagging_fraction"], "bagging_freq": p["bagging_freq"],
        "lambda_l2": p["lambda_l2"], "max_bin": p["max_bin"], "num_threads": p["num_threads"],
        "seed": int(seed), "deterministic": True, "force_col_wise": True, "verbosity": -1,
    }
    if kind == "multiclass":
        out["num_class"] = n_classes
    return out


def refit_rounds(best_iteration: int, inner_valid_pct: float) -> int:
    """Rounds for the refit on all training rows: the inner fit's best count, scaled for the larger set."""
    return max(1, int(round(best_iteration / (1.0 - inner_valid_pct))))


def inner_split(y: np.ndarray, pct: float, stratify: bool, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows to fit, rows early stopping watches), both out of the training rows; by class when
    ``stratify``, each class keeping at least one row to fit."""
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(y == c) for c in np.unique(y)] if stratify else [np.arange(len(y))]
    watch = []
    for rows in groups:
        rows = rng.permutation(rows)
        n = min(int(round(pct * len(rows))), len(rows) - 1)
        watch.append(rows[:n])
    watch = np.sort(np.concatenate(watch))
    if len(watch) == 0:
        raise HarnessError(f"[gbm] inner_valid_pct = {pct} of {len(y)} training rows leaves no rows for early "
                           "stopping; raise inner_valid_pct or set early_stopping_rounds = 0")
    fit = np.setdiff1d(np.arange(len(y)), watch)
    return fit, watch


# ---------------------------------------------------------------------------- losses
def task_loss(kind: str, outputs: np.ndarray, targets: np.ndarray) -> float:
    """The task's loss on raw outputs: MSE; BCE on logits; cross-entropy on logits."""
    z = np.asarray(outputs, dtype=np.float64)
    if kind == "regression":
        return float(np.mean((z - targets) ** 2))
    if kind == "binary":
        return float(np.mean(np.logaddexp(0.0, z) - targets * z))
    logp = log_softmax(z, axis=1)
    return float(-np.mean(logp[np.arange(len(targets)), targets.astype(int)]))


# ---------------------------------------------------------------------------- the recorder
class BoostingRecorder:
    """What the run folder saves as history.csv and loss.png: one row per round of the final model.

    ``train_loss`` is on the rows that model trained on, ``valid_loss`` on the validation rows (NaN
    without), ``inner_valid_loss`` on the inner split in the early-stopping fit (the curve the rounds
    were chosen on). The last row also carries the metrics. A boosting round has no batches.
    """

    def __init__(self):
        self.history: list[dict] = []
        self.batch_losses: list[float] = []
        self.epoch_batches: list[int] = []


class _RoundWatcher:
    """A LightGBM callback: records every round's losses, moves the bar, and stops when the loss on
    the inner split ("inner") has not improved for ``patience`` rounds. It reads no other set."""

    order = 20

    def __init__(self, patience: int, bar):
        self.patience, self.bar = patience, bar
        self.curves: list[dict] = []
        self.best, self.best_round, self.best_result = None, 0, []

    def __call__(self, env):
        interrupts.raise_deferred()  # between rounds: safe to cut (a budget's alarm that rang inside LightGBM)
        losses = {name: float(value) for name, _, value, _ in env.evaluation_result_list}
        self.curves.append(losses)
        self.bar.update()
        if not self.patience:
            return
        lgb = lightgbm()
        score = losses["inner"]
        if self.best is None or score < self.best:  # NaN never improves
            self.best, self.best_round = score, env.iteration
            self.best_result = [r for r in env.evaluation_result_list if r[0] == "inner"]
        if (env.iteration - self.best_round >= self.patience) or env.iteration == env.end_iteration - 1:
            raise lgb.callback.EarlyStopException(self.best_round, self.best_result)


def _feature_names(names, n: int) -> list[str]:
    """Names LightGBM accepts (no JSON punctuation, no spaces), unique, one per column."""
    if names is None:
        return [f"f{i}" for i in range(n)]
    names = [str(x) for x in names]
    if len(names) != n:
        raise HarnessError(f"{len(names)} feature names for {n} feature columns; give one name per column")
    out, seen = [], set()
    for name in names:
        clean = re.sub(r'[\s"\',:\[\]{}]', "_", name) or "f"
        base, k = clean, 1
        while clean in seen:
            clean, k = f"{base}_{k}", k + 1
        seen.add(clean)
        out.append(clean)
    return out


def release_interrupted_training(exc: BaseException) -> None:
    """Free the booster of an interrupted ``lgb.train`` now, before its datasets.

    The exception's traceback keeps lgb.train's frame, so the half-trained booster and its datasets
    live on; once the exception sits in a reference cycle (Optuna and the auto session keep the
    error) the garbage collector frees them later, in no set order (datasets before their booster),
    in the middle of whatever runs then. Clearing the traceback's finished frames drops them now, by
    reference count, booster first (it holds its datasets)."""
    traceback.clear_frames(exc.__traceback__)


# ---------------------------------------------------------------------------- the learner
class BoostingLearner:
    """LightGBM behind the Learner's protocol: ``fit`` (from the [gbm] params), ``validate``, ``predict``
    (raw outputs: regression values, binary logits (n,), multiclass logits (n, k)), ``save_model`` /
    ``load_model``, a ``recorder`` the run folder saves. ``train = None`` makes a learner that can only
    load a saved model and predict."""

    device = "cpu"

    def __init__(self, task, train, valid, metrics, params: dict, categorical=(), feature_names=None, seed=0,
                 echo=True, progress=None, n_classes: int | None = None, target_name: str = "target"):
        task = get_task(task)
        if task.kind not in KINDS:
            raise HarnessError(f"a gbm model handles {', '.join(KINDS)} tasks, not {task.kind}; use model.kind = \"nn\"")
        if task.outputs != OUTPUT_SCALES[task.kind][0]:
            raise HarnessError(f"a gbm model emits {OUTPUT_SCALES[task.kind][0]}, but the task declares "
                               f"outputs = {task.outputs!r}; leave the task's outputs at its default")
        self.task: Task = task
        self.params = gbm_params(params)
        self.metric_list = list(metrics)
        self.seed, self.echo, self.progress = int(seed), echo, progress
        self.target_name = target_name
        self.n_classes = n_classes
        self.train = None if train is None else self._checked(train, "training")
        if self.n_classes is None and self.train is not None:
            self.n_classes = int(self.train[1].max()) + 1 if task.kind == "multiclass" else None
        if task.kind == "multiclass" and self.n_classes is not None and self.n_classes < 2:
            raise HarnessError(f"a multiclass task needs at least 2 classes in {target_name}, got {self.n_classes}")
        self.valid_dl = None if valid is None else self._checked(valid, "validation")
        self.n_features = None if self.train is None else self.train[0].shape[1]
        if self.valid_dl is not None and self.n_features is not None and self.valid_dl[0].shape[1] != self.n_features:
            raise HarnessError(f"the validation rows have {self.valid_dl[0].shape[1]} feature columns, the training "
                               f"rows {self.n_features}; build both from the same columns")
        self.feature_names = None if feature_names is None else [str(x) for x in feature_names]
        self.categorical = sorted(int(c) for c in categorical)
        if self.n_features is not None:
            self._check_categorical()
        self.callbacks: list = []
        self.booster = None
        self.rounds = 0  # trees in the final model
        self.best_iteration = None  # the rounds early stopping chose on the inner split (n_estimators without)
        self.recorder = BoostingRecorder()
        self.valid_loss, self.metrics = float("nan"), {}
        self.valid_preds = self.valid_targets = None

    # ----------------------------------------------------------------- inputs
    def _checked(self, data, what: str):
        try:
            X, y = data
        except (TypeError, ValueError):
            raise HarnessError(f"the {what} data must be a pair (features, targets)") from None
        X = self._features(X, what)
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y.reshape(-1)
        if y.ndim != 1 or len(y) != len(X):
            raise HarnessError(f"the {what} targets ({self.target_name}) have shape {y.shape} for {len(X)} rows; "
                               "give one target per row")
        try:
            y = y.astype(np.float64)
        except (TypeError, ValueError):
            raise HarnessError(f"the {what} targets ({self.target_name}) are not numbers; encode them first") from None
        bad = ~np.isfinite(y)
        if bad.any():
            raise HarnessError(f"the {what} target {self.target_name!r} holds {int(bad.sum())} NaN or infinite "
                               f"value(s) (first at row {int(np.flatnonzero(bad)[0])}); drop those rows or fill them")
        if self.task.kind == "regression":
            return X, y
        if np.any(y != np.round(y)) or y.min() < 0:
            raise HarnessError(f"the {what} target {self.target_name!r} of a {self.task.kind} task must hold class "
                               f"indices 0, 1, ...; got values like {y[(y != np.round(y)) | (y < 0)][0]!r}")
        y = y.astype(np.int64)
        top = 1 if self.task.kind == "binary" else (self.n_classes - 1 if self.n_classes else None)
        if top is not None and y.max(initial=0) > top:
            raise HarnessError(f"the {what} target {self.target_name!r} holds class {int(y.max())}, but the task has "
                               f"classes 0..{top}")
        return X, y

    def _features(self, X, what: str) -> np.ndarray:
        X = np.asarray(X)
        if X.dtype not in (np.float32, np.float64):
            try:
                X = X.astype(np.float64)
            except (TypeError, ValueError):
                raise HarnessError(f"the {what} features are not all numbers; encode them first") from None
        if X.ndim != 2:
            raise HarnessError(f"the {what} features must be a 2-D array (rows, columns), got shape {X.shape}")
        return X

    def _check_categorical(self) -> None:
        n = self.n_features
        outside = [c for c in self.categorical if not 0 <= c < n]
        if outside:
            raise HarnessError(f"categorical column index {outside[0]} is outside the {n} feature columns")
        if self.feature_names is not None and len(self.feature_names) != n:
            raise HarnessError(f"{len(self.feature_names)} feature names for {n} feature columns; "
                               "give one name per column")
        if self.params["categorical"] != "native":
            return
        for X, what in ((self.train[0], "training"), *([(self.valid_dl[0], "validation")] if self.valid_dl else [])):
            for c in self.categorical:
                col = X[:, c]
                col = col[~np.isnan(col)]
                if np.any(col < 0) or np.any(col != np.round(col)):
                    raise HarnessError(f"categorical column {self._name(c)} of the {what} rows must hold integer "
                                       "codes >= 0 (0 = missing or unseen)")

    def _name(self, c: int) -> str:
        return repr(self.feature_names[c]) if self.feature_names else f"{c}"

    # ----------------------------------------------------------------- callbacks (protocol only)
    def add_callbacks(self, callbacks) -> None:
        """Kept for the protocol (the runner adds its Checkpoint); boosting keeps no epoch checkpoints,
        so none of them is called."""
        self.callbacks.extend(callbacks)

    @property
    def history(self) -> list[dict]:
        return self.recorder.history

    def resume_from(self, path) -> None:
        raise HarnessError("a gbm run has no checkpoint to resume: it retrains from the start; "
                           "start a new run instead")

    def lr_find(self, **kwargs):
        raise HarnessError("lr-find is for networks; a gbm model has no learning-rate sweep")

    # ----------------------------------------------------------------- training
    def fit(self, *args, **kwargs) -> None:
        """Train from the [gbm] params (the torch Learner's fit arguments, if given, are ignored)."""
        if self.train is None:
            raise HarnessError("this gbm learner was made without training rows (to load a saved model); "
                               "it cannot be trained")
        p = self.params
        X, y = self.train
        patience = p["early_stopping_rounds"]
        bar = progress_bar(total=p["n_estimators"], desc="gbm" if not patience else "gbm early stopping",
                           unit="round", disable=None if self.progress is None else not self.progress)
        inner_curves = []
        try:
            if patience:
                fit_rows, stop_rows = inner_split(y, p["inner_valid_pct"], self.task.kind != "regression", self.seed)
                booster, watcher = self._train(X[fit_rows], y[fit_rows], p["n_estimators"], bar,
                                               stop=(X[stop_rows], y[stop_rows]), score_valid=not p["refit"])
                inner_curves = watcher.curves
                self.best_iteration = watcher.best_round + 1
                rounds = self.best_iteration
                if p["refit"]:
                    rounds = refit_rounds(self.best_iteration, p["inner_valid_pct"])
                    bar.set_description("gbm refit", refresh=False)
                    bar.reset(total=rounds)
                    booster, watcher = self._train(X, y, rounds, bar, stop=None, score_valid=True)
            else:
                rounds = self.best_iteration = p["n_estimators"]
                booster, watcher = self._train(X, y, rounds, bar, stop=None, score_valid=True)
        finally:
            bar.close()
        self.booster = booster
        # LightGBM stops by itself when no split is left; the model then has fewer trees
        self.rounds = min(rounds, booster.current_iteration())
        self._record(watcher.curves[:self.rounds], inner_curves)
        self.validate()
        if self.history:
            self.history[-1].update(self.metrics)
        if self.echo:
            echo_line(self.summary_line())

    fit_one_cycle = fit  # what a network's training step calls; the same training here

    def _train(self, X, y, rounds: int, bar, stop, score_valid: bool):
        lgb = lightgbm()
        params = lightgbm_params(self.params, self.task.kind, self.n_classes or 0, self.seed)
        cats = self.categorical if self.params["categorical"] == "native" else []
        names = _feature_names(self.feature_names, X.shape[1])

        def dataset(features, targets, reference=None):
            return lgb.Dataset(features, targets, reference=reference, feature_name=names, categorical_feature=cats,
                               params=params, free_raw_data=True)

        train_set = dataset(X, y)
        sets, set_names = [train_set], ["training"]
        if stop is not None:
            sets.append(dataset(*stop, reference=train_set))
            set_names.append("inner")
        if score_valid and self.valid_dl is not None:
            # scored per round for the loss plot only: the watcher stops on "inner" and reads nothing else
            sets.append(dataset(*self.valid_dl, reference=train_set))
            set_names.append("valid")
        watcher = _RoundWatcher(self.params["early_stopping_rounds"] if stop is not None else 0, bar)
        try:
            booster = lgb.train(params, train_set, num_boost_round=rounds, valid_sets=sets, valid_names=set_names,
                                callbacks=[watcher])
        except BaseException as exc:  # a budget's alarm, Ctrl-C, an error in a callback
            release_interrupted_training(exc)
            raise
        return booster, watcher

    def _record(self, curves: list[dict], inner_curves: list[dict]) -> None:
        rows = []
        for r, losses in enumerate(curves):
            row = {"stage": 0, "epoch": r + 1, "train_loss": losses["training"],
                   "valid_loss": losses.get("valid", float("nan"))}
            if inner_curves:
                row["inner_valid_loss"] = inner_curves[r]["inner"] if r < len(inner_curves) else float("nan")
            rows.append(row)
        self.recorder = BoostingRecorder()
        self.recorder.history = rows

    # ----------------------------------------------------------------- evaluation
    @property
    def primary_metric(self):
        return self.metric_list[0] if self.metric_list else None

    @property
    def primary_score(self) -> float | None:
        metric = self.primary_metric
        return self.metrics.get(metric.name) if metric else self.valid_loss

    def validate(self) -> tuple[float, dict]:
        """The task's loss and the metrics on the validation rows; sets ``valid_loss``, ``metrics``,
        ``valid_preds`` and ``valid_targets``."""
        if self.valid_dl is None:
            self.valid_loss, self.metrics = float("nan"), {}
            return self.valid_loss, self.metrics
        X, y = self.valid_dl
        self.valid_preds, self.valid_targets = self.predict(X), y
        self.valid_loss = task_loss(self.task.kind, self.valid_preds, y)
        self.metrics = {}
        for metric in self.metric_list:
            if metric.from_loss:
                self.metrics[metric.name] = metric(self.valid_loss)
            else:
                self.metrics[metric.name] = metric(self.valid_preds, self.valid_targets)
        return self.valid_loss, self.metrics

    def predict(self, X) -> np.ndarray:
        """Raw outputs on the task's scale: regression values, binary logits (n,), multiclass logits (n, k)."""
        if self.booster is None:
            raise HarnessError("this gbm model is not trained yet: fit it or load a saved model first")
        X = self._features(X, "prediction")
        n = self.booster.num_feature()
        if X.shape[1] != n:
            raise HarnessError(f"the rows to predict have {X.shape[1]} feature columns; the model was trained on {n}")
        out = np.asarray(self.booster.predict(X, num_iteration=self.rounds, raw_score=True), dtype=np.float64)
        if self.task.kind == "multiclass":
            out = out.reshape(len(X), -1)
        if not np.all(np.isfinite(out)):
            raise HarnessError("the gbm model's outputs contain NaN or infinite values; check the features "
                               "for infinities")
        return out

    def summary_line(self) -> str:
        p = self.params
        if p["early_stopping_rounds"]:
            how = (f"inner best iteration {self.best_iteration} of {p['n_estimators']} on "
                   f"{p['inner_valid_pct']:.0%} of the training rows")
            how += ", refitted on all of them" if p["refit"] else ""
        else:
            how = "no early stopping"
        line = f"gbm: {self.rounds} rounds ({how})"
        if self.valid_dl is not None:
            line += f"; valid loss {self.valid_loss:.5f}"
            metric = self.primary_metric
            if metric is not None and metric.name in self.metrics:
                line += f", {metric.name} {self.metrics[metric.name]:.5f}"
        return line

    def describe(self) -> str:
        """A short text summary for `harness model`: task, rounds, params, features, categorical columns."""
        p = self.params
        lines = [f"LightGBM gradient boosting ({self.task.kind}"
                 + (f", {self.n_classes} classes" if self.task.kind == "multiclass" and self.n_classes else "") + ")"]
        if self.booster is not None:
            lines.append(f"  {self.summary_line().removeprefix('gbm: ')}")
        else:
            lines.append("  not trained yet")
        shown = {k: v for k, v in p.items() if k not in ("categorical",)}
        lines.append("  params: " + ", ".join(f"{k} {v}" for k, v in shown.items()))
        n = self.n_features if self.n_features is not None else (self.booster.num_feature() if self.booster else None)
        names = self.feature_names or ([f"f{i}" for i in range(n)] if n else [])
        if n is not None:
            shown_names = ", ".join(names[:20]) + (f", ... ({n - 20} more)" if n > 20 else "")
            lines.append(f"  {n} features: {shown_names}")
        if self.categorical:
            cats = ", ".join(names[c] if c < len(names) else str(c) for c in self.categorical)
            lines.append(f"  {len(self.categorical)} categorical ({p['categorical']}): {cats}")
        else:
            lines.append("  no categorical columns")
        return "\n".join(lines)

    # ----------------------------------------------------------------- persistence
    def save_model(self, path) -> None:
        """The trained model (LightGBM's text, cut at the final model's rounds) and what describes it, as
        one JSON file, written atomically."""
        if self.booster is None:
            raise HarnessError("this gbm model is not trained yet; nothing to save")
        lgb = lightgbm()
        state = {
            "format": FILE_FORMAT, "version": FILE_VERSION, "lightgbm": lgb.__version__,
            "task": self.task.kind, "n_classes": self.n_classes, "rounds": self.rounds,
            "best_iteration": self.best_iteration, "params": self.params, "seed": self.seed,
            "n_features": self.booster.num_feature(), "feature_names": self.feature_names,
            "categorical": self.categorical, "model": self.booster.model_to_string(num_iteration=self.rounds),
        }
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(state))

    def load_model(self, path) -> None:
        """A model saved by ``save_model``; a cut, foreign or other-task file is a HarnessError."""
        lgb = lightgbm()
        try:
            state = json.loads(open(path, encoding="utf-8").read())
            if not isinstance(state, dict) or state.get("format") != FILE_FORMAT:
                raise ValueError("not a harness gbm model file")
            booster = lgb.Booster(model_str=state["model"])
            rounds, kind = int(state["rounds"]), state["task"]
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, lgb.basic.LightGBMError) as exc:
            detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            raise HarnessError(f"{path} is not a readable gbm model ({detail}); train the run again") from None
        if kind != self.task.kind:
            raise HarnessError(f"{path} holds a {kind} gbm model, but this is a {self.task.kind} task")
        if self.n_features is not None and booster.num_feature() != self.n_features:
            raise HarnessError(f"{path} holds a model of {booster.num_feature()} features; this data has "
                               f"{self.n_features}")
        self.booster, self.rounds = booster, rounds
        self.best_iteration = state.get("best_iteration")
        self.n_classes = state.get("n_classes")
        if self.feature_names is None:
            self.feature_names = state.get("feature_names")
        if not self.categorical:
            self.categorical = list(state.get("categorical") or [])
        self.params = gbm_params(state.get("params"))
