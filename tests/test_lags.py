"""A group's lagged mean: it reads only the days it may (t - lag - days + 1 .. t - lag), per group, skipping
missing values, in the frame's own row order."""
import numpy as np
import pandas as pd
import pytest

from harness.data.lags import lagged_group_mean
from harness.errors import HarnessError


def brute_force(frame, days, lag):
    out = []
    for _, row in frame.iterrows():
        lo, hi = row["d"] - pd.Timedelta(days=lag + days - 1), row["d"] - pd.Timedelta(days=lag)
        seen = frame[(frame["g"] == row["g"]) & (frame["d"] >= lo) & (frame["d"] <= hi)]["v"].dropna()
        out.append(seen.mean() if len(seen) else np.nan)
    return np.array(out)


@pytest.mark.parametrize("days, lag", [(1, 0), (3, 2), (7, 5), (30, 10)])
def test_each_row_reads_its_groups_window_ending_lag_days_before_it(days, lag):
    rng = np.random.default_rng(days)
    dates = pd.date_range("2015-01-01", periods=40, freq="D")
    frame = pd.DataFrame([(g, d) for g in ("a", "b", "c") for d in dates], columns=["g", "d"])
    frame["v"] = rng.normal(size=len(frame))
    frame.loc[rng.random(len(frame)) < 0.3, "v"] = np.nan  # closed days and the test period: no value
    frame = frame.drop(index=rng.choice(len(frame), 10, replace=False))  # days a group has no row at all
    frame = frame.sample(frac=1.0, random_state=0)  # any row order
    got = lagged_group_mean(frame, "g", "d", "v", days, lag)
    np.testing.assert_allclose(got, brute_force(frame, days, lag), equal_nan=True)


def test_a_row_never_reads_its_own_or_a_later_value_when_lagged():
    frame = pd.DataFrame({"g": 1, "d": pd.date_range("2015-01-01", periods=10), "v": np.arange(10.0)})
    got = lagged_group_mean(frame, "g", "d", "v", days=2, lag=3)
    assert np.isnan(got[:3]).all() and got[3] == 0.0 and got[4] == 0.5 and got[9] == 5.5  # (5 + 6) / 2


def test_bad_lengths_are_a_clear_error():
    frame = pd.DataFrame({"g": [1], "d": pd.to_datetime(["2015-01-01"]), "v": [1.0]})
    with pytest.raises(HarnessError, match="days >= 1 and lag >= 0"):
        lagged_group_mean(frame, "g", "d", "v", days=0, lag=1)


def test_several_group_columns_form_one_group_per_combination():
    rng = np.random.default_rng(5)
    dates = pd.date_range("2015-01-01", periods=30, freq="D")
    frame = pd.DataFrame([(s, d) for s in (1, 2) for d in dates], columns=["s", "d"])
    frame["w"] = frame["d"].dt.dayofweek % 2  # alternate days: two sub-groups per store
    frame["v"] = rng.normal(size=len(frame))
    frame = frame.sample(frac=1.0, random_state=1)
    got = lagged_group_mean(frame, ["s", "w"], "d", "v", days=9, lag=2)
    keyed = frame.assign(g=frame["s"].astype(str) + "/" + frame["w"].astype(str))
    np.testing.assert_allclose(got, brute_force(keyed, 9, 2), equal_nan=True)
