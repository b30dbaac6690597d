"""Task types: what a model's outputs mean, and how they become probabilities, labels and blends.

A task is a kind (``regression``, ``binary``, ``multiclass``, ``multilabel``) and the scale its model
emits (``outputs``). From that it declares the default loss, the mapping
``outputs -> probabilities -> labels`` and the scale that blending averages on. Everything here is
numpy in, numpy out; torch is imported only by :meth:`Task.default_loss`.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.special import expit, log_softmax, logit, softmax

from harness.errors import HarnessError

# kind -> the output scales a model of that kind may emit (the first is the default)
OUTPUT_SCALES = {
    "regression": ("values",),
    "binary": ("logits", "probabilities"),
    "multiclass": ("logits", "log_probabilities"),
    "multilabel": ("logits", "probabilities"),
}

# (kind, outputs) -> the torch.nn loss that matches those outputs
_LOSSES = {
    ("regression", "values"): "MSELoss",
    ("binary", "logits"): "BCEWithLogitsLoss",
    ("binary", "probabilities"): "BCELoss",
    ("multiclass", "logits"): "CrossEntropyLoss",
    ("multiclass", "log_probabilities"): "NLLLoss",
    ("multilabel", "logits"): "BCEWithLogitsLoss",
    ("multilabel", "probabilities"): "BCELoss",
}

# Blends average on an unbounded scale, where averaging keeps the models' confidence (averaging
# probabilities pulls every blend towards 0.5). Log-probabilities rather than logits for multiclass,
# because a model's logits are only defined up to a constant per row.
BLEND_SCALES = {
    "regression": "values",
    "binary": "logits",
    "multiclass": "log_probabilities",
    "multilabel": "logits",
}

_EPS = 1e-7  # probabilities are clipped to [eps, 1 - eps] before taking logits


@dataclass(frozen=True)
class Task:
    kind: str
    outputs: str = ""  # the scale the model emits; "" takes the kind's default

    def __post_init__(self):
        if self.kind not in OUTPUT_SCALES:
            raise HarnessError(f"unknown task type {self.kind!r}; known: {', '.join(OUTPUT_SCALES)}")
        scales = OUTPUT_SCALES[self.kind]
        if not self.outputs:
            object.__setattr__(self, "outputs", scales[0])
        elif self.outputs not in scales:
            raise HarnessError(
                f"a {self.kind} task's outputs are one of {', '.join(scales)}, not {self.outputs!r}"
            )

    @property
    def blend_scale(self) -> str:
        return BLEND_SCALES[self.kind]

    @property
    def has_threshold(self) -> bool:
        """Labels come from probabilities by a threshold (binary, multilabel), not by argmax."""
        return self.kind in ("binary", "multilabel")

    def default_loss(self):
        """A fresh ``torch.nn`` loss for these outputs (e.g. ``BCEWithLogitsLoss`` for binary logits)."""
        from torch import nn  # lazily: scoring must not need torch

        return getattr(nn, _LOSSES[(self.kind, self.outputs)])()

    # ------------------------------------------------------------------ checks
    def check_outputs(self, outputs) -> np.ndarray:
        """The outputs as a float array of the shape this task expects, or a HarnessError saying why not."""
        x = np.asarray(outputs, dtype=np.float64)
        if x.ndim == 2 and x.shape[1] == 1 and self.kind in ("regression", "binary"):
            x = x.reshape(-1)
        if self.kind == "binary" and x.ndim != 1:
            raise HarnessError(
                f"binary outputs are one column per row (the positive class), got shape {x.shape}; "
                "a model with one output per class is a multiclass task"
            )
        if self.kind in ("multiclass", "multilabel") and (x.ndim != 2 or x.shape[1] < 2):
            raise HarnessError(f"{self.kind} outputs are one column per class, got shape {x.shape}")
        if not np.all(np.isfinite(x)):
            raise HarnessError(f"the {self.kind} outputs contain NaN or infinite values")
        if self.outputs == "probabilities" and (x.min(initial=0) < 0 or x.max(initial=0) > 1):
            raise HarnessError(
                f"this {self.kind} task declares probabilities, but the outputs range over "
                f"[{x.min():.4g}, {x.max():.4g}]; declare outputs='logits' if the model emits logits"
            )
        if self.outputs == "log_probabilities" and x.max(initial=0) > 1e-6:
            raise HarnessError(
                f"this {self.kind} task declares log-probabilities, but some outputs are positive "
                f"(max {x.max():.4g}); declare outputs='logits' if the model emits logits"
            )
        return x

    # ------------------------------------------------------------------ mappings
    def to_probabilities(self, outputs) -> np.ndarray:
        """Binary: P(positive) per row; multiclass: a row of class probabilities; multilabel: P per column."""
        x = self.check_outputs(outputs)
        if self.kind == "regression":
            raise HarnessError("a regression task has no probabilities")
        if self.outputs == "probabilities":
            return x
        if self.kind == "multiclass":
            return softmax(x, axis=1)  # of logits or log-probabilities alike
        return expit(x)

    def labels_from_probabilities(self, probabilities, threshold: float = 0.5) -> np.ndarray:
        """Integer labels: above the threshold is positive (binary, multilabel); argmax (multiclass)."""
        p = np.asarray(probabilities, dtype=np.float64)
        if self.kind == "regression":
            raise HarnessError("a regression task has no labels")
        if self.kind == "multiclass":
            return p.argmax(axis=1)
        return (p > threshold).astype(int)

    def to_labels(self, outputs, threshold: float = 0.5) -> np.ndarray:
        return self.labels_from_probabilities(self.to_probabilities(outputs), threshold)

    def to_blend_scale(self, outputs) -> np.ndarray:
        """The outputs on the scale that blending averages on (:attr:`blend_scale`)."""
        x = self.check_outputs(outputs)
        if self.kind == "multiclass":
            return log_softmax(x, axis=1)
        if self.outputs == "probabilities":
            return logit(np.clip(x, _EPS, 1 - _EPS))
        return x

    def from_blend_scale(self, blended) -> np.ndarray:
        """A blend back on this task's output scale, so it is scored like any one model's outputs."""
        b = np.asarray(blended, dtype=np.float64)
        if self.kind == "multiclass":
            return log_softmax(b, axis=1)  # an average of log-probabilities is a logit: renormalise
        if self.outputs == "probabilities":
            return expit(b)
        return b


REGRESSION = Task("regression")
BINARY = Task("binary")
MULTICLASS = Task("multiclass")
MULTILABEL = Task("multilabel")
TASKS = {t.kind: t for t in (REGRESSION, BINARY, MULTICLASS, MULTILABEL)}


def get_task(task, outputs: str | None = None) -> Task:
    """A task by name (``"binary"``) or as given; ``outputs`` overrides the scale the model emits."""
    if isinstance(task, Task):
        return task if outputs is None else replace(task, outputs=outputs)
    if task not in TASKS:
        raise HarnessError(f"unknown task type {task!r}; known: {', '.join(TASKS)}")
    return Task(task, outputs or "")
