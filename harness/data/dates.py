"""Date features for any tabular competition: calendar parts, and distances to events per group.

Everything is vectorised pandas/numpy: no per-row Python loop, so a million rows take seconds.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from harness.data.files import plain
from harness.errors import HarnessError


def parse_dates(frame: pd.DataFrame, column: str, source="data") -> pd.Series:
    """``frame[column]`` as datetimes; an unparseable value is a HarnessError naming it."""
    values = pd.to_datetime(frame[column], errors="coerce", format="mixed")
    bad = values.isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise HarnessError(f"{source}: column {column} has {int(bad.sum())} unparseable or empty date(s), "
                           f"first {plain(frame[column].iloc[row])!r} at data row {row + 1}; use YYYY-MM-DD")
    return values


ELAPSED = "Elapsed"  # the part that counts days since 1970: a trend, not a season


def add_date_parts(frame: pd.DataFrame, column: str, prefix: str | None = None, elapsed: bool = True,
                   time: bool | None = None) -> pd.DataFrame:
    """Add ``<prefix>Year``, ``Month``, ``Week`` ... ``Is_year_start`` and ``<prefix>Elapsed`` (days since
    1970, a plain trend feature) for the datetime ``column``, and with ``time`` (None: when any value has a
    time of day) ``Hour`` and ``Minute``, as fastai's add_datepart. Returns the same frame (changed in place)."""
    dates = pd.to_datetime(frame[column], format="mixed")
    if time is None:
        time = bool((dates.dropna() != dates.dropna().dt.normalize()).any())
    prefix = column if prefix is None else prefix
    dt = dates.dt
    parts = {
        "Year": dt.year, "Month": dt.month, "Week": dt.isocalendar().week.astype("int64"), "Day": dt.day,
        "Dayofweek": dt.dayofweek, "Dayofyear": dt.dayofyear,
        "Is_month_end": dt.is_month_end, "Is_month_start": dt.is_month_start,
        "Is_quarter_end": dt.is_quarter_end, "Is_quarter_start": dt.is_quarter_start,
        "Is_year_end": dt.is_year_end, "Is_year_start": dt.is_year_start,
    }
    if time:
        parts.update({"Hour": dt.hour, "Minute": dt.minute})
    for name, values in parts.items():
        frame[prefix + name] = values.to_numpy()
    if elapsed:
        frame[prefix + ELAPSED] = (dates.to_numpy().astype("datetime64[D]").astype("int64"))
    return frame


def _day_numbers(dates: pd.Series) -> np.ndarray:
    return pd.to_datetime(dates).to_numpy().astype("datetime64[D]").astype("int64")


def event_features(frame: pd.DataFrame, group: str, date: str, events, window: int = 7,
                   max_days: int = 365, horizon: np.ndarray | None = None) -> pd.DataFrame:
    """Days since the last and until the next event, and event counts over a window, per group.

    For every boolean-like column ``e`` in ``events`` this returns (same index as ``frame``):

    - ``After<e>``: days since the last day with ``e`` in the same group (0 on the event day itself);
    - ``Before<e>``: days until the next such day (0 on the day);
      both are capped at ``max_days``, which also stands for "no event on record";
    - ``<e>_bw``: how many of the ``window`` days up to and including this one have ``e``;
    - ``<e>_fw``: the same over this day and the ``window - 1`` days after it.

    Days are calendar days, so gaps in a group's history (missing dates) are counted correctly.

    ``horizon`` (one value per row, or None for no limit): how many days after its own a row may look at.
    A forecast's last day sees no later day, so its ``Before<e>`` and ``<e>_fw`` are cut off there; rows
    trained on with the same cut-offs learn what a cut-off value means. Beyond the horizon ``Before<e>`` is
    ``max_days`` and ``<e>_fw`` counts only the days within it.
    """
    groups = pd.factorize(frame[group])[0].astype(np.int64)
    days = _day_numbers(frame[date])
    # One sortable key per row: group first, then day. Rows of a group are contiguous after sorting.
    span = int(days.max() - days.min()) + 2 * window + max_days + 2
    key = groups * span + (days - days.min())
    order = np.argsort(key, kind="stable")
    key_sorted, days_sorted, groups_sorted = key[order], days[order], groups[order]
    group_start = np.r_[True, groups_sorted[1:] != groups_sorted[:-1]]
    # Calendar windows, the same for every event: bounds found by binary search on the key.
    lo = np.searchsorted(key_sorted, key_sorted - (window - 1), side="left")
    ahead = np.full(len(order), window - 1, dtype=np.int64)
    seen = np.full(len(order), np.iinfo(np.int64).max) if horizon is None else np.asarray(horizon, np.int64)[order]
    if horizon is not None:
        if (seen < 0).any():
            raise HarnessError("event horizon: a row's horizon is negative; give 0 or more days")
        ahead = np.minimum(ahead, seen)
    hi = np.searchsorted(key_sorted, key_sorted + ahead, side="right")
    idx = np.arange(len(order))
    group_start_reversed = _group_start_reversed(group_start)
    out = {}
    for name in events:
        flags = frame[name].to_numpy()[order].astype(bool)
        marked = np.where(flags, days_sorted, -1)
        last = _fill_forward(marked, group_start)
        nxt = _fill_forward(marked[::-1], group_start_reversed)[::-1]
        after = np.where(last >= 0, days_sorted - last, max_days)
        before = np.where((nxt >= 0) & (nxt - days_sorted <= seen), nxt - days_sorted, max_days)
        csum = np.r_[0, np.cumsum(flags)]  # event counts in a window, from cumulative sums
        backward = csum[idx + 1] - csum[lo]
        forward = csum[hi] - csum[idx]
        for col, values in ((f"After{name}", np.minimum(after, max_days)),
                            (f"Before{name}", np.minimum(before, max_days)),
                            (f"{name}_bw", backward), (f"{name}_fw", forward)):
            result = np.empty(len(order), dtype=np.int64)
            result[order] = values
            out[col] = result
    return pd.DataFrame(out, index=frame.index)


def run_lengths(frame: pd.DataFrame, group: str, date: str, flag: str) -> np.ndarray:
    """For each row, how many consecutive calendar days of its group, its own included, have ``flag`` set
    in the run it belongs to (0 where ``flag`` is not set); a missing date ends a run."""
    days = _day_numbers(frame[date])
    groups = pd.factorize(frame[group])[0]
    order = np.lexsort((days, groups))
    flags = frame[flag].to_numpy()[order].astype(bool)
    d, g = days[order], groups[order]
    # A run starts at a flagged row whose previous row is not the same group's previous day, flagged.
    continues = np.r_[False, flags[:-1] & (g[1:] == g[:-1]) & (d[1:] == d[:-1] + 1)]
    run_id = np.cumsum(flags & ~continues)
    sizes = np.bincount(run_id, weights=flags)
    out = np.zeros(len(frame), dtype=np.int64)
    out[order] = np.where(flags, sizes[run_id], 0)
    return out


def _group_start_reversed(group_start: np.ndarray) -> np.ndarray:
    """Group-start flags for the reversed order: a group's last row starts it."""
    group_end = np.r_[group_start[1:], True]
    return group_end[::-1]


def _fill_forward(values: np.ndarray, group_start: np.ndarray) -> np.ndarray:
    """Carry the last value >= 0 forward within each group (-1 where none was seen yet)."""
    n = len(values)
    positions = np.where(values >= 0, np.arange(n), -1)
    # A group's first row resets the carry: mark it so the running maximum cannot cross groups.
    start_positions = np.where(group_start, np.arange(n), -1)
    last_pos = np.maximum.accumulate(positions)
    last_start = np.maximum.accumulate(start_positions)
    valid = last_pos >= last_start
    return np.where(valid & (last_pos >= 0), values[np.maximum(last_pos, 0)], -1)
