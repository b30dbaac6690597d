"""A target on the scale a model learns: log or log1p for a regression target (so that RMSE on the
model's scale is RMSPE-like or RMSLE), and class values in a stable, natural order."""
from __future__ import annotations

import re

import numpy as np

TARGET_TRANSFORMS = ("", "log", "log1p")


def forward_transform(y: np.ndarray, transform: str) -> np.ndarray:
    return {"": lambda v: v, "log": np.log, "log1p": np.log1p}[transform](y)


def inverse_transform(y: np.ndarray, transform: str) -> np.ndarray:
    """Back on the target's own scale. A log1p target is never negative (the transform needs y ≥ 0),
    so a model output below log1p(0) means 0, not a negative count."""
    if transform == "log1p":
        return np.expm1(np.maximum(y, 0.0))
    return {"": lambda v: v, "log": np.exp}[transform](y)


def natural_key(value):
    """Sort key putting Class_2 before Class_10: digit runs compare as numbers."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", str(value))]
