"""Date parts and per-group event distances, checked on a hand-made calendar and against a plain loop."""
import numpy as np
import pandas as pd
import pytest

from harness.data.dates import add_date_parts, event_features, parse_dates, run_lengths
from harness.errors import HarnessError


def test_date_parts_on_known_days():
    frame = pd.DataFrame({"Date": pd.to_datetime(["2015-12-31", "2015-01-01", "2015-07-01"])})
    add_date_parts(frame, "Date", prefix="")
    assert frame["Year"].tolist() == [2015, 2015, 2015]
    assert frame["Week"].tolist() == [53, 1, 27]  # ISO weeks
    assert frame["Dayofweek"].tolist() == [3, 3, 2]  # Monday = 0
    assert frame["Dayofyear"].tolist() == [365, 1, 182]
    assert frame["Is_year_end"].tolist() == [True, False, False]
    assert frame["Is_year_start"].tolist() == [False, True, False]
    assert frame["Is_quarter_start"].tolist() == [False, True, True]
    assert frame["Is_month_end"].tolist() == [True, False, False]
    assert frame["Elapsed"].iloc[1] - frame["Elapsed"].iloc[0] == -364  # days, not seconds


def test_unparseable_date_names_column_and_value():
    frame = pd.DataFrame({"Date": ["2015-01-01", "2015-13-45"]})
    with pytest.raises(HarnessError, match=r"train.csv: column Date .*'2015-13-45'"):
        parse_dates(frame, "Date", "train.csv")


def test_events_on_a_hand_checked_calendar():
    # Store 1: 1..12 January with promos on the 3rd and the 8th. Store 2: days 1, 2, 9, 10 only
    # (a gap), with a promo on the 2nd. Rows are shuffled: the result must follow the index.
    days1 = pd.date_range("2015-01-01", "2015-01-12")
    days2 = pd.to_datetime(["2015-01-01", "2015-01-02", "2015-01-09", "2015-01-10"])
    frame = pd.DataFrame({
        "Store": [1] * 12 + [2] * 4,
        "Date": list(days1) + list(days2),
        "Promo": [d.day in (3, 8) for d in days1] + [False, True, False, False],
    }).sample(frac=1, random_state=0)
    out = event_features(frame, "Store", "Date", ["Promo"], window=3, max_days=30).loc[frame.index]
    got = pd.concat([frame, out], axis=1).sort_values(["Store", "Date"])
    s1 = got[got.Store == 1]
    assert s1["AfterPromo"].tolist() == [30, 30, 0, 1, 2, 3, 4, 0, 1, 2, 3, 4]
    assert s1["BeforePromo"].tolist() == [2, 1, 0, 4, 3, 2, 1, 0, 30, 30, 30, 30]
    # Counts over this day and the 2 before / this day and the 2 after.
    assert s1["Promo_bw"].tolist() == [0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 0, 0]
    assert s1["Promo_fw"].tolist() == [1, 1, 1, 0, 0, 1, 1, 1, 0, 0, 0, 0]
    s2 = got[got.Store == 2]
    # Calendar days across the gap: the 9th is 7 days after the promo on the 2nd, beyond the window.
    assert s2["AfterPromo"].tolist() == [30, 0, 7, 8]
    assert s2["BeforePromo"].tolist() == [1, 0, 30, 30]
    assert s2["Promo_bw"].tolist() == [0, 1, 0, 0]
    assert s2["Promo_fw"].tolist() == [1, 1, 0, 0]


def _reference(frame, window, max_days):
    """The straightforward per-row loop the vectorised version replaces (a column H: each row's horizon)."""
    rows = []
    for _, g in frame.groupby("Store"):
        days = g["Date"].to_numpy().astype("datetime64[D]").astype(int)
        ev = g["E"].to_numpy()
        horizons = g["H"].to_numpy() if "H" in g else np.full(len(g), 10**9)
        for i, d, h in zip(g.index, days, horizons):
            event_days = days[ev & (days <= d + h)]  # what a row that sees h days ahead knows
            past, future = event_days[event_days <= d], event_days[event_days >= d]
            rows.append((i, min(d - past.max(), max_days) if len(past) else max_days,
                         min(future.min() - d, max_days) if len(future) else max_days,
                         int(((event_days <= d) & (event_days > d - window)).sum()),
                         int(((event_days >= d) & (event_days < d + window)).sum())))
    ref = pd.DataFrame(rows, columns=["i", "AfterE", "BeforeE", "E_bw", "E_fw"]).set_index("i")
    return ref.loc[frame.index]


def test_events_match_a_plain_loop_on_random_calendars():
    rng = np.random.default_rng(1)
    parts = []
    for store in range(5):
        days = pd.date_range("2014-01-01", periods=120)
        keep = rng.random(120) > 0.2  # holes in the history
        parts.append(pd.DataFrame({"Store": store, "Date": days[keep], "E": rng.random(keep.sum()) < 0.1}))
    frame = pd.concat(parts, ignore_index=True).sample(frac=1, random_state=2)
    got = event_features(frame, "Store", "Date", ["E"], window=7, max_days=40)
    ref = _reference(frame, 7, 40)
    for col in ref.columns:
        np.testing.assert_array_equal(got[col].to_numpy(), ref[col].to_numpy(), err_msg=col)


def test_a_horizon_cuts_off_what_a_row_sees_ahead():
    rng = np.random.default_rng(5)
    parts = []
    for store in range(4):
        days = pd.date_range("2014-01-01", periods=100)
        keep = rng.random(100) > 0.15
        parts.append(pd.DataFrame({"Store": store, "Date": days[keep], "E": rng.random(keep.sum()) < 0.2,
                                   "H": rng.integers(0, 12, keep.sum())}))
    frame = pd.concat(parts, ignore_index=True).sample(frac=1, random_state=6)
    got = event_features(frame, "Store", "Date", ["E"], window=7, max_days=40, horizon=frame["H"].to_numpy())
    ref = _reference(frame, 7, 40)
    for col in ref.columns:
        np.testing.assert_array_equal(got[col].to_numpy(), ref[col].to_numpy(), err_msg=col)
    # The backward features never depend on it; a row that sees nothing ahead counts only its own day.
    plain = event_features(frame, "Store", "Date", ["E"], window=7, max_days=40)
    np.testing.assert_array_equal(got["AfterE"], plain["AfterE"])
    np.testing.assert_array_equal(got["E_bw"], plain["E_bw"])
    blind = frame["H"].to_numpy() == 0
    np.testing.assert_array_equal(got["E_fw"].to_numpy()[blind], frame["E"].to_numpy()[blind].astype(int))
    assert (got["BeforeE"].to_numpy()[blind & ~frame["E"].to_numpy()] == 40).all()
    assert not (got["BeforeE"] == plain["BeforeE"]).all()  # the horizons here do cut some off


def test_a_negative_horizon_is_refused():
    frame = pd.DataFrame({"Store": [1, 1], "Date": pd.to_datetime(["2015-01-01", "2015-01-02"]), "E": [1, 0]})
    with pytest.raises(HarnessError, match="horizon"):
        event_features(frame, "Store", "Date", ["E"], horizon=np.array([0, -1]))


def test_run_lengths_count_consecutive_flagged_days_per_group():
    frame = pd.DataFrame({
        "Store": [1, 1, 1, 1, 1, 1, 2, 2],
        "Date": pd.to_datetime(["2015-01-01", "2015-01-02", "2015-01-03", "2015-01-04", "2015-01-06", "2015-01-07",
                                "2015-01-01", "2015-01-02"]),
        "Closed": [1, 1, 0, 1, 1, 1, 1, 1]})
    shuffled = frame.sample(frac=1, random_state=0)
    # Store 1: a run of 2, an open day, a run of 1 cut by the missing 5th, a run of 2; store 2 is its own run.
    assert run_lengths(shuffled, "Store", "Date", "Closed").tolist() == \
        shuffled.index.map(dict(enumerate([2, 2, 0, 1, 2, 2, 2, 2]))).tolist()


def test_run_lengths_match_a_plain_loop_on_random_calendars():
    rng = np.random.default_rng(3)
    parts = []
    for store in range(4):
        days = pd.date_range("2014-01-01", periods=90)
        keep = rng.random(90) > 0.1
        parts.append(pd.DataFrame({"Store": store, "Date": days[keep], "E": rng.random(keep.sum()) < 0.5}))
    frame = pd.concat(parts, ignore_index=True)
    expected = []
    for _, group in frame.groupby("Store", sort=False):
        on = set(group.loc[group["E"], "Date"])
        for day, flag in zip(group["Date"], group["E"]):
            length = 0
            if flag:
                lo, hi = day, day
                while lo - pd.Timedelta(days=1) in on:
                    lo -= pd.Timedelta(days=1)
                while hi + pd.Timedelta(days=1) in on:
                    hi += pd.Timedelta(days=1)
                length = (hi - lo).days + 1
            expected.append(length)
    got = run_lengths(frame.sample(frac=1, random_state=4), "Store", "Date", "E")
    order = frame.sample(frac=1, random_state=4).index
    assert pd.Series(got, index=order).sort_index().tolist() == expected
