"""Checking a submission against the competition's sample submission before anything is uploaded."""
from __future__ import annotations

import numpy as np
import pandas as pd

from harness.errors import HarnessError


def validate_submission(submission: pd.DataFrame, sample: pd.DataFrame, id_column: str = "id",
                        value_range: tuple[float, float] | None = None, probabilities: bool = False,
                        name: str = "submission") -> None:
    """Raise HarnessError unless ``submission`` matches ``sample``'s format.

    Same columns in the same order; the same set of ids, none duplicated; no NaN or infinity;
    values inside ``value_range``; with ``probabilities``, every row's values sum to 1.
    """
    if list(submission.columns) != list(sample.columns):
        raise HarnessError(f"{name}: columns {list(submission.columns)[:6]}... differ from the sample submission's "
                           f"{list(sample.columns)[:6]}...; use the sample's columns in its order")
    ids = submission[id_column]
    dup = ids.duplicated()
    if dup.any():
        raise HarnessError(f"{name}: {int(dup.sum())} duplicated {id_column}(s), first {ids[dup].iloc[0]!r}")
    expected = set(sample[id_column].tolist())
    got = set(ids.tolist())
    if got != expected:
        missing, extra = expected - got, got - expected
        detail = []
        if missing:
            detail.append(f"{len(missing)} missing (e.g. {sorted(missing, key=str)[0]!r})")
        if extra:
            detail.append(f"{len(extra)} not in the sample (e.g. {sorted(extra, key=str)[0]!r})")
        raise HarnessError(f"{name}: the {id_column} set differs from the sample submission's: {'; '.join(detail)}")
    values = submission.drop(columns=[id_column])
    try:
        array = values.to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        raise HarnessError(f"{name}: non-numeric prediction values in {list(values.columns)[:6]}") from None
    if not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).any(axis=1).sum())
        raise HarnessError(f"{name}: {bad} row(s) hold NaN or infinity")
    if value_range is not None:
        lo, hi = value_range
        if (array < lo).any() or (array > hi).any():
            raise HarnessError(f"{name}: values must lie in [{lo}, {hi}]; found {array.min():.4g} to {array.max():.4g}")
    if probabilities:
        sums = array.sum(axis=1)
        off = np.abs(sums - 1) > 1e-3
        if off.any():
            raise HarnessError(f"{name}: {int(off.sum())} row(s) of probabilities do not sum to 1 "
                               f"(first sums to {sums[off][0]:.4f})")
