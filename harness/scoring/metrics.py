"""Metrics as small named objects: a function of (predictions, targets) and a direction."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch


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
    return x.detach().float().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float64)


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
