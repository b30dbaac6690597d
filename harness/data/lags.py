"""Lagged target levels for time-series tables: a group's recent mean, known at forecast time.

A row at date t gets the mean of its group's values over the ``days`` calendar days ending ``lag`` days
before t, so a forecast up to ``lag`` days ahead reads only what was known when it was made: the last
day it reads is t - lag. Rows without a value (closed days, the test period) take no part; a window
holding none gives NaN (a missing continuous value to the preprocessing). Vectorised: one wide
date x group table and rolling sums, no per-row loop.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from harness.errors import HarnessError


def lagged_group_mean(frame: pd.DataFrame, group: str | list[str], date: str, value: str, days: int,
                      lag: int) -> np.ndarray:
    """Per row, the mean of ``value`` over its group's rows dated t - lag - days + 1 .. t - lag (NaN values
    left out), in the frame's row order. ``group``: a column, or several whose values together form a group
    (a store's Mondays: ["Store", "DayOfWeek"])."""
    if days < 1 or lag < 0:
        raise HarnessError(f"a lagged mean needs days >= 1 and lag >= 0, not days = {days}, lag = {lag}")
    if not isinstance(group, str):
        codes = frame.groupby(list(group), sort=False, dropna=False).ngroup().to_numpy()
        frame = frame[[date, value]].assign(_group=codes)
        group = "_group"
    known = frame.loc[frame[value].notna(), [date, group, value]]
    wide = known.pivot(index=date, columns=group, values=value)
    calendar = pd.date_range(frame[date].min(), frame[date].max(), freq="D", name=date)
    wide = wide.reindex(calendar)
    totals = wide.fillna(0.0).rolling(days, min_periods=1).sum()
    counts = wide.notna().astype(float).rolling(days, min_periods=1).sum()
    means = (totals / counts.where(counts > 0)).shift(lag)  # the window ending on t - lag, placed on t
    # Read each row's cell by position (a merge on date and group costs seconds at full Rossmann scale).
    day = ((frame[date] - calendar[0]) // pd.Timedelta(days=1)).to_numpy()
    column = means.columns.get_indexer(frame[group])  # -1: a group with no value on record
    out = np.full(len(frame), np.nan)
    seen = column >= 0
    out[seen] = means.to_numpy(dtype=np.float64)[day[seen], column[seen]]
    return out
