"""Validation schemes (harness.data.folds): every scheme's guarantees, save/load, and bad input."""
import random

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import TimeSeriesSplit

from harness.config.loading import check_config
from harness.data.folds import (NO_FOLD, FoldPlan, assign_folds, load_folds, save_folds,
                                validation_settings)
from harness.errors import HarnessError


def frame(n=60, classes=3, groups=12, seed=0):
    """A small training frame: an id, a class label, a group and one row per day."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "id": [f"r{i:03d}" for i in range(n)],
        "label": rng.integers(0, classes, n),
        "user": rng.integers(0, groups, n),
        "Date": pd.date_range("2015-01-01", periods=n, freq="D"),
        "step": np.arange(n),
    })


SCHEMES = {
    "holdout": {"scheme": "holdout", "valid_pct": 0.25},
    "kfold": {"scheme": "kfold", "folds": 5},
    "kfold-repeated": {"scheme": "kfold", "folds": 4, "repeats": 3},
    "stratified": {"scheme": "stratified", "folds": 5},
    "stratified-repeated": {"scheme": "stratified", "folds": 3, "repeats": 2},
    "group": {"scheme": "group", "folds": 4, "group": "user"},
    "time": {"scheme": "time", "folds": 3, "time": "Date", "valid_size": 7, "gap": 2},
}


def plan_for(name, data=None):
    data = frame() if data is None else data
    return assign_folds(data, SCHEMES[name], target="label")


# ------------------------------------------------------------------------------- guarantees
@pytest.mark.parametrize("name", SCHEMES)
def test_no_row_in_two_validation_folds_of_one_repeat(name):
    plan = plan_for(name)
    for repeat in range(plan.n_repeats):
        valid = np.concatenate([plan.valid_index(k, repeat) for k in range(plan.n_folds)])
        assert len(valid) == len(np.unique(valid))
    for _, _, train, valid in plan.splits():
        assert len(valid) and len(train)
        assert not np.intersect1d(train, valid).size
        assert train.dtype.kind == valid.dtype.kind == "i"


@pytest.mark.parametrize("name", ["kfold", "kfold-repeated", "stratified", "stratified-repeated", "group"])
def test_every_row_exactly_once_out_of_fold_per_repeat(name):
    plan = plan_for(name)
    assert plan.n_repeats == SCHEMES[name].get("repeats", 1)
    for repeat in range(plan.n_repeats):
        valid = np.concatenate([plan.valid_index(k, repeat) for k in range(plan.n_folds)])
        assert np.array_equal(np.sort(valid), np.arange(plan.n_rows))
        assert np.array_equal(plan.validated(repeat), np.arange(plan.n_rows))


def test_repeats_shuffle_the_rows_anew():
    plan = plan_for("kfold-repeated")
    assert not np.array_equal(plan.folds[0], plan.folds[1])


def test_holdout_is_one_fold_of_valid_pct_and_the_rest_train():
    plan = plan_for("holdout")
    assert plan.n_folds == 1 and plan.n_repeats == 1
    valid, train = plan.valid_index(0), plan.train_index(0)
    assert len(valid) == 15  # 25% of 60
    assert np.array_equal(np.sort(np.concatenate([train, valid])), np.arange(60))
    assert np.array_equal(plan.validated(), valid)


@pytest.mark.parametrize("classes", [2, 3, 7])
def test_stratified_folds_keep_class_shares_within_one_row(classes):
    data = frame(n=101, classes=classes, seed=classes)
    plan = assign_folds(data, {"scheme": "stratified", "folds": 5, "repeats": 2}, target=data["label"])
    labels = data["label"].to_numpy()
    for repeat, fold, _, valid in plan.splits():
        for c in np.unique(labels):
            expected = (labels == c).sum() / plan.n_folds
            assert abs((labels[valid] == c).sum() - expected) < 1, (repeat, fold, c)


def test_stratified_takes_the_target_as_a_column_name_or_values():
    data = frame()
    by_name = assign_folds(data, SCHEMES["stratified"], target="label")
    by_values = assign_folds(data, SCHEMES["stratified"], target=data["label"].to_numpy())
    assert np.array_equal(by_name.folds, by_values.folds)


def test_groups_never_split_across_train_and_valid():
    data = frame(n=80, groups=9)
    plan = plan_for("group", data)
    users = data["user"].to_numpy()
    for _, _, train, valid in plan.splits():
        assert not set(users[train]) & set(users[valid])
    # and each group lies in exactly one validation fold
    assert (pd.Series(plan.folds[0]).groupby(users).nunique() == 1).all()


def test_the_group_split_follows_split_seed():
    data = frame(n=80, groups=20)
    a = assign_folds(data, {"scheme": "group", "group": "user", "split_seed": 1})
    b = assign_folds(data, {"scheme": "group", "group": "user", "split_seed": 2})
    assert not np.array_equal(a.folds, b.folds)


@pytest.mark.parametrize("gap", [0, 1, 3])
@pytest.mark.parametrize("column", ["Date", "step", "text"])
def test_time_folds_never_validate_on_the_past_and_respect_the_gap(gap, column):
    data = frame(n=50).sample(frac=1, random_state=0).reset_index(drop=True)  # rows out of order
    data["text"] = data["Date"].dt.strftime("%Y-%m-%d")  # dates as strings parse too
    k, size = 4, 6
    plan = assign_folds(data, {"scheme": "time", "folds": k, "time": column, "valid_size": size, "gap": gap})
    day = data["step"].to_numpy()  # day number 0..49 of every row
    last_train = -1
    for fold in range(k):
        train, valid = day[plan.train_index(fold)], day[plan.valid_index(fold)]
        assert train.max() < valid.min()  # never validates on the past
        assert valid.min() - train.max() - 1 == gap  # exactly `gap` days left out in between
        assert len(np.unique(valid)) == size and valid.max() - valid.min() == size - 1
        assert train.min() == 0 and train.max() > last_train  # an expanding window from the start
        last_train = train.max()
    assert plan.valid_index(k - 1).size and day[plan.valid_index(k - 1)].max() == 49  # the last ends at the end
    # rows before the first window are never validated; every later row exactly once
    validated = day[plan.validated()]
    assert np.array_equal(np.sort(validated), np.arange(50 - k * size, 50))


def test_one_time_window_is_the_last_valid_size_days_as_rossmann_holds_out():
    data = frame(n=200)
    plan = assign_folds(data, {"scheme": "time", "folds": 1, "time": "Date", "valid_size": 48})
    dates = data["Date"].to_numpy()
    start = dates.max() - np.timedelta64(47, "D")  # plugins/rossmann split_masks: the last 48 days
    assert np.array_equal(plan.valid_index(0), np.flatnonzero(dates >= start))
    assert np.array_equal(plan.train_index(0), np.flatnonzero(dates < start))


def test_time_folds_without_valid_size_match_scikit_learns_time_series_split():
    plan = assign_folds(frame(n=60), {"scheme": "time", "folds": 5, "time": "step"})
    for fold, (train, valid) in enumerate(TimeSeriesSplit(5).split(np.zeros(60))):
        assert np.array_equal(plan.train_index(fold), train) and np.array_equal(plan.valid_index(fold), valid)


def test_time_folds_with_several_rows_a_day_keep_a_day_together():
    data = pd.DataFrame({"Date": np.repeat(pd.date_range("2015-01-01", periods=20), 3), "Store": [1, 2, 3] * 20})
    plan = assign_folds(data, {"scheme": "time", "folds": 2, "time": "Date", "valid_size": 5})
    for _, _, train, valid in plan.splits():
        assert len(valid) == 15
        assert data["Date"].iloc[train].max() < data["Date"].iloc[valid].min()


# ------------------------------------------------------------------------------- seeds
@pytest.mark.parametrize("name", SCHEMES)
def test_the_same_split_seed_gives_the_same_folds(name):
    first, again = plan_for(name), plan_for(name)
    assert np.array_equal(first.folds, again.folds)


@pytest.mark.parametrize("name", ["holdout", "kfold", "stratified", "group"])
def test_a_different_split_seed_gives_different_folds(name):
    data = frame(n=80, groups=20)
    a = assign_folds(data, {**SCHEMES[name], "split_seed": 1}, target="label")
    b = assign_folds(data, {**SCHEMES[name], "split_seed": 2}, target="label")
    assert not np.array_equal(a.folds, b.folds)


class Recording(dict):
    """A [validation] section that remembers every key asked of it."""

    def __init__(self, *args):
        super().__init__(*args)
        self.asked = set()

    def __getitem__(self, key):
        self.asked.add(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        self.asked.add(key)
        return super().get(key, default)

    def __contains__(self, key):
        self.asked.add(key)
        return super().__contains__(key)


@pytest.mark.parametrize("name", SCHEMES)
def test_assign_folds_does_not_read_the_training_seed(name):
    # The split has only split_seed: no `seed` lookup, and no global random state (which a training
    # seed would set) moves the folds.
    section = Recording(SCHEMES[name])
    np.random.seed(1), random.seed(1)
    first = assign_folds(frame(), section, target="label")
    np.random.seed(2), random.seed(2)
    second = assign_folds(frame(), section, target="label")
    assert "seed" not in section.asked
    assert np.array_equal(first.folds, second.folds)


def test_a_seed_key_in_validation_points_to_split_seed():
    with pytest.raises(HarnessError, match=r"validation\.seed is not a validation key \(the split's own seed is "
                                           r"validation\.split_seed\)"):
        assign_folds(frame(), {"scheme": "kfold", "seed": 3})


# ------------------------------------------------------------------------------- sizes
@pytest.mark.parametrize("n", [2, 3, 7, 50, 101])
@pytest.mark.parametrize("k", [2, 3, 5, 10])
@pytest.mark.parametrize("scheme", ["kfold", "stratified", "group", "time"])
def test_every_size_and_fold_count_splits_into_balanced_disjoint_folds_or_says_why_not(n, k, scheme):
    data = pd.DataFrame({"label": np.zeros(n, dtype=int), "user": np.arange(n), "t": np.arange(n)})
    config = {"scheme": scheme, "folds": k, "group": "user", "time": "t"}
    too_few = n < k + 1 if scheme == "time" else n < k  # time: the first part only trains
    if too_few:
        with pytest.raises(HarnessError, match="is more than the|no training rows"):
            assign_folds(data, config, target="label")
        return
    plan = assign_folds(data, config, target="label")
    sizes = [len(plan.valid_index(f)) for f in range(k)]
    assert plan.n_folds == k and min(sizes) >= 1 and max(sizes) - min(sizes) <= 1
    seen = np.concatenate([plan.valid_index(f) for f in range(k)])
    assert len(seen) == len(np.unique(seen))
    if scheme == "time":
        for fold, (train, valid) in enumerate(TimeSeriesSplit(k).split(np.zeros(n))):
            assert np.array_equal(plan.train_index(fold), train) and np.array_equal(plan.valid_index(fold), valid)
    else:
        assert len(seen) == n
        for _, _, train, valid in plan.splits():
            assert np.array_equal(np.sort(np.concatenate([train, valid])), np.arange(n))


# ------------------------------------------------------------------------------- save and load
@pytest.mark.parametrize("name", SCHEMES)
def test_save_load_round_trip_by_row_position(name, tmp_path):
    data = frame()
    plan = plan_for(name, data)
    save_folds(plan, tmp_path / "folds.csv")
    loaded = load_folds(tmp_path / "folds.csv", data)
    assert np.array_equal(loaded.folds, plan.folds)
    for (_, _, train, valid), (_, _, train2, valid2) in zip(plan.splits(), loaded.splits(), strict=True):
        assert np.array_equal(train, train2) and np.array_equal(valid, valid2)


def test_save_load_round_trip_by_id_matches_rows_in_another_order(tmp_path):
    data = frame()
    plan = plan_for("kfold-repeated", data)
    save_folds(plan, tmp_path / "folds.csv", frame=data, id_column="id")
    written = pd.read_csv(tmp_path / "folds.csv")
    assert list(written.columns) == ["id", "fold_0", "fold_1", "fold_2"]
    shuffled = data.sample(frac=1, random_state=3).reset_index(drop=True)
    loaded = load_folds(tmp_path / "folds.csv", shuffled, id_column="id")
    by_id = dict(zip(data["id"], plan.folds[1]))
    assert [by_id[i] for i in shuffled["id"]] == loaded.folds[1].tolist()


def test_saved_columns_are_row_and_fold_and_train_from_for_time(tmp_path):
    save_folds(plan_for("kfold"), tmp_path / "k.csv")
    save_folds(plan_for("time"), tmp_path / "t.csv")
    assert list(pd.read_csv(tmp_path / "k.csv").columns) == ["row", "fold"]
    assert list(pd.read_csv(tmp_path / "t.csv").columns) == ["row", "fold", "train_from"]
    assert load_folds(tmp_path / "t.csv", frame()).scheme == "time"


def test_save_folds_writes_atomically_and_leaves_no_temporary_file(tmp_path):
    save_folds(plan_for("kfold"), tmp_path / "sub" / "folds.csv")
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["folds.csv"]


def write(path, text):
    path.write_text(text)
    return path


@pytest.mark.parametrize("text, message", [
    ("row,fold\n0,0\n1,1\n2,0\n", r"1 training row\(s\) have no fold, first row 3; write the file again"),
    ("row,fold\n0,0\n1,1\n2,0\n3,1\n4,0\n", r"1 row\(s\) are not in the training data, first 4"),
    ("row,fold\n0,0\n1,1\n1,0\n3,1\n", r"row 1 is listed 2 times"),
    ("row,fold\n0,0\n1,-2\n2,0\n3,1\n", r"column fold has fold -2 at data row 2, out of range"),
    ("row,fold\n0,0\n1,2\n2,0\n3,2\n", r"column fold has no row in fold 1, yet folds up to 2"),
    ("row,fold\n0,0\n1,1.5\n2,0\n3,1\n", r"column fold has 1 value\(s\) that are not whole numbers, first 1.5"),
    ("row,fold\n0,0\n1,\n2,0\n3,1\n", r"column fold has 1 value\(s\) that are not whole numbers"),
    ("row,kfold\n0,0\n1,1\n2,0\n3,1\n", r"has no fold column; found: row, kfold"),
    ("id,fold\n0,0\n1,1\n2,0\n3,1\n", r"missing column\(s\) row"),
    ("row,fold\n", r"has no data rows"),
    ("row,fold\n0,-1\n1,-1\n2,-1\n3,-1\n", r"every row has fold -1, so no fold validates any row"),
    ("row,fold\n0,0\n1,1\n2,0\n3,1\n", None),
])
def test_load_folds_checks_the_file(tmp_path, text, message):
    data = pd.DataFrame({"x": range(4)})
    path = write(tmp_path / "folds.csv", text)
    if message is None:
        assert load_folds(path, data).folds.tolist() == [[0, 1, 0, 1]]
        return
    with pytest.raises(HarnessError, match=message) as caught:
        load_folds(path, data)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_load_folds_checks_fold_numbers_against_the_expected_count(tmp_path):
    path = write(tmp_path / "folds.csv", "row,fold\n0,0\n1,1\n2,2\n3,1\n")
    assert load_folds(path, pd.DataFrame({"x": range(4)}), folds=3).n_folds == 3
    with pytest.raises(HarnessError, match=r"has fold 2 at data row 3, out of range: folds are 0\.\.1"):
        load_folds(path, pd.DataFrame({"x": range(4)}), folds=2)


def test_load_folds_by_id_names_unknown_and_missing_ids(tmp_path):
    data = pd.DataFrame({"id": ["a", "b", "c"]})
    with pytest.raises(HarnessError, match=r"1 id\(s\) are not in the training data, first 'z'"):
        load_folds(write(tmp_path / "f.csv", "id,fold\na,0\nb,1\nz,0\nc,1\n"), data, id_column="id")
    with pytest.raises(HarnessError, match=r"1 training row\(s\) have no fold, first id 'c'"):
        load_folds(write(tmp_path / "f.csv", "id,fold\na,0\nb,1\n"), data, id_column="id")


def test_load_folds_rejects_a_time_row_that_trains_on_its_own_fold(tmp_path):
    path = write(tmp_path / "f.csv", "row,fold,train_from\n0,-1,0\n1,0,0\n2,1,2\n")
    with pytest.raises(HarnessError, match="later than the row's own fold"):
        load_folds(path, pd.DataFrame({"x": range(3)}))


@pytest.mark.parametrize("make, message", [
    (lambda p: p.mkdir(), "is a directory; give the CSV written by save_folds"),
    (lambda p: p.write_text(""), "is empty; write it again with save_folds"),
    (lambda p: None, "does not exist; give the CSV written by save_folds"),
])
def test_load_folds_names_a_directory_an_empty_or_a_missing_file(tmp_path, make, message):
    path = tmp_path / "folds.csv"
    make(path)
    with pytest.raises(HarnessError, match=f"folds file {path} {message}"):
        load_folds(path, frame())


# ------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("section, target, message", [
    ({"scheme": "random"}, None,
     r"validation\.scheme = 'random' must be one of holdout, kfold, stratified, group, time"),
    ({"folds": 1}, None, r"validation\.folds = 1 must be ≥ 2 with scheme = \"kfold\""),
    ({"scheme": "group", "group": "user", "folds": 1}, None, r"validation\.folds = 1 must be ≥ 2"),
    ({"folds": 0}, None, r"validation\.folds = 0 must be ≥ 1"),
    ({"folds": 2.5}, None, r"validation\.folds = 2\.5 must be a whole number"),
    ({"repeats": 0}, None, r"validation\.repeats = 0 must be ≥ 1"),
    ({"scheme": "group", "group": "user", "repeats": 2}, None, r"repeats = 2 applies to the kfold and stratified"),
    ({"scheme": "holdout", "valid_pct": 1.0}, None, r"validation\.valid_pct = 1\.0 must be in \(0, 1\)"),
    ({"scheme": "time", "time": "Date", "gap": -1}, None, r"validation\.gap = -1 must be ≥ 0"),
    ({"scheme": "time", "time": "Date", "valid_size": 0}, None, r"validation\.valid_size = 0 must be > 0"),
    ({"split_seed": -1}, None, r"validation\.split_seed = -1 must be in \[0, 4294967295\]"),
    ({"folds": 61}, None, r"validation\.folds = 61 is more than the 60 training rows; use at most 60 folds"),
    ({"scheme": "group", "group": "user", "folds": 13}, None,
     r"validation\.folds = 13 is more than the 12 groups of column user; use at most 12 folds"),
    ({"scheme": "stratified", "folds": 5}, np.r_[np.zeros(58), 1, 1],
     r"validation\.folds = 5 is more than the 2 row\(s\) of the rarest class \(1\.0\); use at most 2 folds"),
    ({"scheme": "stratified"}, None, r"stratified\" needs the target labels"),
    ({"scheme": "stratified"}, np.zeros(3), r"3 target labels for 60 training rows"),
    ({"scheme": "stratified"}, "klass", r"target = 'klass' is not a column of the training data; its columns: id"),
    ({"scheme": "group"}, None, r"scheme = \"group\" needs validation\.group, the name of the group column"),
    ({"scheme": "time"}, None, r"scheme = \"time\" needs validation\.time"),
    ({"scheme": "group", "group": "User"}, None,
     r"validation\.group = 'User' is not a column of the training data; its columns: id, label, user, Date, step"),
    ({"scheme": "time", "time": "date"}, None,
     r"validation\.time = 'date' is not a column of the training data; its columns: id, label, user, Date, step"),
    ({"scheme": "time", "time": "id"}, None,
     r"column id has 60 value\(s\) that are neither numbers nor dates, first 'r000' at data row 1"),
    ({"scheme": "time", "time": "Date", "valid_size": 12}, None,
     r"validation\.folds = 5, valid_size = 12 and gap = 0 leave time fold 0 no training rows: column Date runs "
     r"from 2015-01-01 to 2015-03-01 \(59 days\); use fewer folds or a smaller valid_size or gap"),
    ({"scheme": "time", "time": "step", "folds": 2, "valid_size": 20, "gap": 20}, None,
     r"leave time fold 0 no training rows"),
    ({"scheme": "time", "time": "step", "folds": 2, "valid_size": 0.5}, None,
     r"time fold 0's window \(58, 58\.5\] of column step holds no rows"),
    ({"fold": 5}, None, r"validation\.fold is not a validation key; use scheme, folds"),
])
def test_bad_validation_input_is_one_line_naming_the_key(section, target, message):
    with pytest.raises(HarnessError, match=message) as caught:
        assign_folds(frame(), section, target=target)
    assert "\n" not in str(caught.value)


def test_a_time_column_with_gaps_or_booleans_is_named():
    data = frame(n=10)
    data.loc[3, "step"] = np.nan
    with pytest.raises(HarnessError, match=r"column step has 1 empty or infinite value\(s\), first at data row 4"):
        assign_folds(data, {"scheme": "time", "time": "step"})
    data["flag"] = True
    with pytest.raises(HarnessError, match="column flag holds true/false"):
        assign_folds(data, {"scheme": "time", "time": "flag"})
    data["one"] = 7
    with pytest.raises(HarnessError, match=r"column one holds one value \(7\)"):
        assign_folds(data, {"scheme": "time", "time": "one"})


def test_an_empty_frame_and_empty_groups_are_named():
    with pytest.raises(HarnessError, match="no rows to split"):
        assign_folds(frame().iloc[:0], {})
    data = frame().astype({"user": float})
    data.loc[5, "user"] = np.nan
    with pytest.raises(HarnessError, match=r"column user has 1 empty value\(s\), first at data row 6"):
        assign_folds(data, {"scheme": "group", "group": "user"})


def test_the_plan_names_a_fold_or_repeat_it_does_not_have():
    plan = plan_for("kfold")
    with pytest.raises(HarnessError, match=r"fold 5 does not exist: the kfold plan has 5 fold\(s\), 0\.\.4"):
        plan.train_index(5)
    with pytest.raises(HarnessError, match=r"repeat 1 does not exist"):
        plan.valid_index(0, repeat=1)


def test_a_config_file_checks_the_validation_keys_when_it_is_read():
    with pytest.raises(HarnessError, match=r"config: validation\.scheme = 'loo' must be one of holdout"):
        check_config({"validation": {"scheme": "loo"}}, "test.toml")
    with pytest.raises(HarnessError, match=r"config: validation\.valid_pct = 0 must be in \(0, 1\)"):
        check_config({"validation": {"valid_pct": 0}}, "test.toml")
    ok = {"validation": {"scheme": "time", "time": "Date", "folds": 3, "valid_size": 48, "gap": 2, "split_seed": 4}}
    assert check_config(ok, "test.toml") == ok
    assert validation_settings(ok["validation"])["repeats"] == 1  # defaults filled in


def test_a_fold_plan_describes_itself_in_one_line():
    assert plan_for("kfold-repeated").describe() == ("kfold: 4 fold(s) x 3 repeats over 60 rows, "
                                                     "15 validation rows a fold")
    assert isinstance(plan_for("time"), FoldPlan) and NO_FOLD in plan_for("time").folds
