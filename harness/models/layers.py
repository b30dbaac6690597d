"""Small pieces several models share: predictions squashed into a target range, and the way back."""
from __future__ import annotations

import torch


def scale_to_range(x: torch.Tensor, y_range) -> torch.Tensor:
    lo, hi = y_range
    return torch.sigmoid(x) * (hi - lo) + lo


def logit_of(value: float, y_range) -> float:
    """The pre-sigmoid value that ``scale_to_range`` maps to ``value`` (to start at the mean)."""
    lo, hi = y_range
    p = min(max((value - lo) / (hi - lo), 1e-4), 1 - 1e-4)
    return float(torch.logit(torch.tensor(p)))
