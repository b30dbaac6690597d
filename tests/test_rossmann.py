"""Rossmann end to end on generated files in the Kaggle format: features, submission rules, bad input."""
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from harness.config.loading import apply_overrides
from harness.scoring.metrics import exp_rmspe_fn
from harness_plugins.rossmann import Rossmann

SMALL = ["--set", "model.layers=[64, 32]", "--set", "train.batch_size=64"]


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("rossmann") / "data"
    Rossmann().write_sample(path)
    return path


@pytest.fixture
def data(sample_dir, tmp_path):
    """A private copy of the sample files that a test may break."""
    path = tmp_path / "data"
    shutil.copytree(sample_dir, path)
    return path


def test_sample_is_in_the_kaggle_format(sample_dir):
    train = pd.read_csv(sample_dir / "train.csv", dtype={"StateHoliday": str})
    test = pd.read_csv(sample_dir / "test.csv", dtype={"StateHoliday": str})
    store = pd.read_csv(sample_dir / "store.csv")
    assert list(train.columns) == ["Store", "DayOfWeek", "Date", "Sales", "Customers", "Open", "Promo",
                                   "StateHoliday", "SchoolHoliday"]
    assert list(test.columns) == ["Id", "Store", "DayOfWeek", "Date", "Open", "Promo", "StateHoliday", "SchoolHoliday"]
    assert list(pd.read_csv(sample_dir / "sample_submission.csv").columns) == ["Id", "Sales"]
    assert "PromoInterval" in store.columns and store["CompetitionDistance"].isna().any()
    assert ((train["Open"] == 0) == (train["Sales"] == 0)).all() and (train["Open"] == 0).any()
    assert set(train["StateHoliday"]) >= {"0", "a"} and train["Promo"].any() and train["SchoolHoliday"].any()
    assert test["Open"].isna().any() and (test["Open"] == 0).any()
    weather = pd.read_csv(sample_dir / "weather" / "NW.csv", sep=";")
    assert weather.shape[1] == 23 and "Events" in weather.columns
    # The test period follows train immediately and lasts 48 days, as on Kaggle.
    assert pd.to_datetime(test["Date"]).min() - pd.to_datetime(train["Date"]).max() == pd.Timedelta(days=1)
    assert pd.to_datetime(test["Date"]).nunique() == 48


def test_features_split_and_training_rows(data):
    comp = Rossmann()
    config = comp.default_config()
    raw = comp.load(data, config)
    frame = comp.features(raw, config)
    assert len(frame) == len(raw.train) + len(raw.test)  # every join kept every row once
    train, valid = comp.split(frame, config)
    assert (train["Sales"] > 0).all() and (valid["Sales"] > 0).all()  # zero sales never train nor score
    start = raw.train["Date"].max() - pd.Timedelta(days=47)  # the last 48 days validate
    assert (valid["Date"] >= start).all() and (train["Date"] < start).all()
    assert valid["Date"].max() == raw.train["Date"].max()
    # "HB,NI" stores take the weather of the first state with a file.
    hb = frame[frame["State"] == "HB,NI"]
    assert len(hb) and hb["Mean_TemperatureC"].notna().all()
    # Promo2 is active only in the months its interval names, after it started.
    store = raw.store.set_index("Store")
    active = frame[frame["IsPromo2Month"]]
    assert (active["Promo2"] == 1).all()
    names = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sept", "Oct", "Nov", "Dec"]
    assert all(names[m - 1] in store.loc[s, "PromoInterval"].split(",") for s, m in zip(active["Store"], active["Month"]))


def test_recent_sales_levels_never_read_the_validation_windows_sales(data):
    comp = Rossmann()
    config = apply_overrides(comp.default_config(), {"data.recent_by": ["DayOfWeek", "Promo"]})
    raw = comp.load(data, config)
    frame = comp.features(raw, config).copy()
    assert config["data"]["recent_days"] and config["data"]["recent_lag"] >= config["data"]["valid_days"]
    columns = [f"RecentLogSales{d}{by}" for d in config["data"]["recent_days"] for by in ("", "ByDayOfWeek", "ByPromo")]
    assert set(columns) <= set(comp.columns(raw, config)[1])  # continuous inputs of both models
    _, valid = comp.split_masks(frame, config)
    start = frame.loc[valid, "Date"].min()
    raw.train.loc[raw.train["Date"] >= start, "Sales"] *= 3  # the validation window's sales change...
    raw.cache.clear()
    again = comp.features(raw, config)
    held_out = ((frame["Date"] >= start) & (frame["Id"] == -1)).to_numpy()  # ...and no validation row's level moves
    np.testing.assert_array_equal(again.loc[held_out, columns].to_numpy(), frame.loc[held_out, columns].to_numpy())
    test = (frame["Id"] != -1).to_numpy()  # 48 days ahead at most: every test row's level is known from train.csv
    assert frame.loc[held_out | test, columns[0]].notna().all()
    scored = held_out & (frame["Sales"] > 0).to_numpy()  # a split level is missing only on days the store never opens
    assert frame.loc[scored, columns].notna().all().all()
    store, day = frame.loc[held_out].iloc[0][["Store", "Date"]]
    lag, days = config["data"]["recent_lag"], config["data"]["recent_days"][0]
    window = raw.train[(raw.train["Store"] == store) & (raw.train["Sales"] > 0)
                       & raw.train["Date"].between(day - pd.Timedelta(days=lag + days - 1), day - pd.Timedelta(days=lag))]
    assert frame.loc[held_out, columns[0]].iloc[0] == pytest.approx(np.log(window["Sales"] / 1.0).mean())
    weekday = window["Date"].dt.dayofweek == day.dayofweek  # the store's same weekdays in that window
    assert frame.loc[held_out, columns[1]].iloc[0] == pytest.approx(np.log(window.loc[weekday, "Sales"] / 1.0).mean())


FORWARD = ["BeforePromo", "Promo_fw", "BeforeClosed", "Closed_fw", "BeforeStateHoliday", "SchoolHoliday_fw"]


def test_forward_event_features_see_only_as_far_ahead_as_a_test_row(data):
    comp = Rossmann()
    config = comp.default_config()
    assert config["data"]["event_horizon"] == config["data"]["valid_days"] == 48
    raw = comp.load(data, config)
    frame = comp.features(raw, config).copy()
    assert "EventHorizon" in comp.columns(raw, config)[1]  # an input: the network knows what it cannot see
    is_test = (frame["Id"] != -1).to_numpy()
    test_days = (frame.loc[is_test, "Date"].max() - frame.loc[is_test, "Date"]).dt.days
    np.testing.assert_array_equal(frame.loc[is_test, "EventHorizon"], test_days)  # test's last day sees nothing
    train_days = (raw.train["Date"].max() - frame.loc[~is_test, "Date"]).dt.days
    np.testing.assert_array_equal(frame.loc[~is_test, "EventHorizon"], train_days % 48)  # 48-day blocks
    # The validation window sees up to its own last day, as the test does: test.csv's days change nothing in it,
    # and its features are those of a train.csv that ended there.
    _, valid = comp.split_masks(frame, config)
    raw.test["Promo"], raw.test["Open"] = 1 - raw.test["Promo"], 1 - raw.test["Open"]
    raw.cache.clear()
    again = comp.features(raw, config)
    np.testing.assert_array_equal(again.loc[valid, FORWARD].to_numpy(), frame.loc[valid, FORWARD].to_numpy())
    raw.test = None
    raw.cache.clear()
    alone = comp.features(raw, config)
    np.testing.assert_array_equal(alone.loc[valid[:len(alone)], FORWARD].to_numpy(), frame.loc[valid, FORWARD].to_numpy())
    # Without a horizon (a config written before it) the validation window reads the test's days.
    raw = comp.load(data, config)
    plain = apply_overrides(config, {"data.event_horizon": 0})
    before = comp.features(raw, plain).copy()
    assert "EventHorizon" not in before and "EventHorizon" not in comp.columns(raw, plain)[1]
    raw.test["Open"] = 1 - raw.test["Open"]
    raw.cache.clear()
    changed = comp.features(raw, plain)
    assert (changed.loc[valid, "BeforeClosed"].to_numpy() != before.loc[valid, "BeforeClosed"].to_numpy()).any()


def test_a_validation_window_longer_than_the_recent_lag_is_refused(data, workspace, cli_run):
    result = cli_run("train", "rossmann", "--data-dir", data, "--set", "data.valid_days=60", *SMALL, expect=2)
    assert ("config: data.valid_days = 60 days, but data.recent_lag = 48: the recent sales levels "
            "(data.recent_days) would read the validation window's own sales") in result.output
    result = cli_run("train", "rossmann", "--data-dir", data, "--folds", "2", "--set", "validation.valid_size=40",
                     "--set", "validation.gap=10", *SMALL, expect=2)
    assert "validation.valid_size + validation.gap = 50 days" in result.output
    assert not (workspace / "runs").exists()
    cli_run("train", "rossmann", "--data-dir", data, "--set", "data.valid_days=60", "--set", "data.recent_days=[]",
            "--epochs", "1", *SMALL)


def test_a_config_without_the_recent_keys_trains_without_recent_levels(data, workspace, cli_run, tmp_path):
    text = Rossmann().config_path.read_text()
    old = tmp_path / "old.toml"  # a copy of the config from before data.recent_days existed
    old.write_text("\n".join(line for line in text.splitlines() if not line.startswith(("recent_days", "recent_lag"))))
    config = Rossmann().read_config(old)
    assert config["data"]["recent_days"] == [] and config["data"]["recent_lag"] == 48
    cli_run("train", "rossmann", "--data-dir", data, "--config", old, "--epochs", "1", *SMALL)


def test_a_config_without_the_event_horizon_sees_every_later_day(data, workspace, cli_run, tmp_path):
    old = tmp_path / "old.toml"  # a config (or a saved run's) from before data.event_horizon existed
    old.write_text("\n".join(line for line in Rossmann().config_path.read_text().splitlines()
                             if not line.startswith("event_horizon")))
    config = Rossmann().read_config(old)
    assert config["data"]["event_horizon"] == 0
    cli_run("train", "rossmann", "--data-dir", data, "--config", old, "--epochs", "1", *SMALL)
    run = next((workspace / "runs" / "rossmann").iterdir())
    assert "EventHorizon" not in json.loads((run / "preprocessing.json").read_text())["cont_cols"]
    cli_run("predict", "rossmann", "--data-dir", data, "--run", "latest")


def test_google_trends_follow_sunday_to_saturday_weeks(data):
    comp = Rossmann()
    config = comp.default_config()
    raw = comp.load(data, config)
    frame = comp.features(raw, config)
    trends = pd.read_csv(data / "googletrend.csv")
    trends["start"] = pd.to_datetime(trends["week"].str[:10])
    nw = trends[trends["file"] == "Rossmann_DE_NW"].set_index("start")["trend"]
    de = trends[trends["file"] == "Rossmann_DE"].set_index("start")["trend"]
    rows = frame[frame["State"] == "NW"].set_index("Date")
    saturday, sunday = pd.Timestamp("2015-03-07"), pd.Timestamp("2015-03-08")
    assert rows.loc[saturday, "trend"].iloc[0] == nw[pd.Timestamp("2015-03-01")]
    assert rows.loc[sunday, "trend"].iloc[0] == nw[sunday]
    assert rows.loc[sunday, "trend_DE"].iloc[0] == de[sunday]
    # HB,NI stores take Lower Saxony's trend, as in fastai's data.
    ni = trends[trends["file"] == "Rossmann_DE_NI"].set_index("start")["trend"]
    assert frame[(frame["State"] == "HB,NI") & (frame["Date"] == sunday)]["trend"].iloc[0] == ni[sunday]


def test_missing_weather_files_only_drop_the_weather_columns(data):
    (data / "googletrend.csv").unlink()
    shutil.rmtree(data / "weather")
    (data / "store_states.csv").unlink()
    comp = Rossmann()
    config = comp.default_config()
    raw = comp.load(data, config)
    cats, conts = comp.columns(raw, config)
    assert "State" not in cats and "Events" not in cats and "Max_TemperatureC" not in conts and "trend" not in conts
    assert "Store" in cats and "AfterPromo" in conts


def test_train_predict_writes_a_valid_submission(data, workspace, cli_run):
    cli_run("train", "rossmann", "--data-dir", data, "--epochs", 4, *SMALL)
    run = next((workspace / "runs" / "rossmann").iterdir())
    summary = json.loads((run / "summary.json").read_text())
    targets = np.load(run / "valid_targets.npy")
    constant = exp_rmspe_fn(np.full_like(targets, targets.mean()), targets)
    assert summary["primary_metric"] == "rmspe" and summary["primary_score"] < 0.6 * constant  # it learned
    assert json.loads((run / "preprocessing.json").read_text())["cat_cols"][0] == "Store"

    # Predicting again from the saved run gives the same file; the closed-store rule holds.
    first = (run / "submission.csv").read_text()
    (run / "submission.csv").unlink()
    cli_run("predict", "rossmann", "--data-dir", data)
    assert (run / "submission.csv").read_text() == first
    sub = pd.read_csv(run / "submission.csv")
    test = pd.read_csv(data / "test.csv")
    sample = pd.read_csv(data / "sample_submission.csv")
    assert sub["Id"].tolist() == sample["Id"].tolist()
    sales = sub.set_index("Id")["Sales"]
    assert (sales[test.loc[test["Open"] == 0, "Id"]] == 0).all()
    assert (sales[test.loc[test["Open"].isna(), "Id"]] > 0).all()  # a blank Open counts as open
    assert (sales[test.loc[test["Open"] == 1, "Id"]] > 0).all()


def test_submission_follows_sample_order_and_rejects_bad_rows(data, workspace, cli_run):
    sample = pd.read_csv(data / "sample_submission.csv").sample(frac=1, random_state=0)
    sample.to_csv(data / "sample_submission.csv", index=False)
    cli_run("train", "rossmann", "--data-dir", data, "--epochs", 1, *SMALL)
    run = next((workspace / "runs" / "rossmann").iterdir())
    sub = pd.read_csv(run / "submission.csv")
    assert sub["Id"].tolist() == sample["Id"].tolist() and len(sub) == len(sample)

    comp = Rossmann()
    raw = comp.load(data, comp.default_config())
    from harness.errors import HarnessError
    with pytest.raises(HarnessError, match="Id set differs"):
        comp.check_submission(sub.iloc[1:], raw)
    with pytest.raises(HarnessError, match=r"values must lie in \[0.0, inf\]"):
        comp.check_submission(sub.assign(Sales=-1.0), raw)
    with pytest.raises(HarnessError, match="Id order"):
        comp.check_submission(sub.sort_values("Id"), raw)


def _rewrite(path, change, **read):
    frame = pd.read_csv(path, dtype=str, keep_default_na=False, **read)
    change(frame)
    frame.to_csv(path, index=False, **({"sep": read["sep"]} if "sep" in read else {}))


def _set_first(column, value):
    def change(frame):
        frame.loc[0, column] = value
    return change


BAD_INPUTS = {
    "missing column": ("train.csv", lambda f: f.drop(columns=["Promo"], inplace=True), r"train.csv is missing column\(s\) Promo"),
    "unparseable date": ("test.csv", _set_first("Date", "2015-02-30"), r"test.csv: column Date .*'2015-02-30'"),
    "store not in store.csv": ("test.csv", _set_first("Store", "999"), r"test.csv: 1 row\(s\) of store\(s\) absent from store.csv, first store 999"),
    "negative sales": ("train.csv", _set_first("Sales", "-5"), r"train.csv: column Sales has 1 value\(s\) negative, infinite or empty, first -5(\.0)? at data row 1"),
    "infinite sales": ("train.csv", _set_first("Sales", "inf"), r"train.csv: column Sales has 1 value\(s\) negative, infinite .*first inf at data row 1"),
    "negative customers": ("train.csv", _set_first("Customers", "-1"), r"train.csv: column Customers has 1 value\(s\) negative.*first -1(\.0)? at data row 1"),
    "Open not 0/1 in train": ("train.csv", _set_first("Open", "2"), r"train.csv: column Open has 1 value\(s\) other than 0 or 1, first 2 at data row 1"),
    "blank Open in train": ("train.csv", _set_first("Open", ""), r"train.csv: column Open has 1 non-numeric or empty value\(s\)"),
    "Open not 0/1 in test": ("test.csv", _set_first("Open", "3"), r"test.csv: column Open has 1 value\(s\) other than 0 or 1, first 3(\.0)? at data row 1.*blank Open counts as open"),
    "DayOfWeek 0": ("train.csv", _set_first("DayOfWeek", "0"), r"train.csv: column DayOfWeek has 1 value\(s\) outside \[1, 7\].*first 0 at data row 1; Monday is 1"),
    "DayOfWeek 8 in test": ("test.csv", _set_first("DayOfWeek", "8"), r"test.csv: column DayOfWeek .*outside \[1, 7\].*first 8 at"),
    "Promo not 0/1": ("test.csv", _set_first("Promo", "5"), r"test.csv: column Promo has 1 value\(s\) other than 0 or 1, first 5"),
    "negative competition distance": ("store.csv", _set_first("CompetitionDistance", "-100"), r"store.csv: column CompetitionDistance has 1 value\(s\) negative or infinite, first -100(\.0)? at data row 1"),
    "Promo2 not 0/1": ("store.csv", _set_first("Promo2", "2"), r"store.csv: column Promo2 has 1 value\(s\) other than 0 or 1"),
    "duplicated store day": ("train.csv", lambda f: f.loc.__setitem__((1, ["Store", "Date"]), f.loc[0, ["Store", "Date"]].to_numpy()), r"train.csv: 1 duplicated \(Store, Date\) row\(s\), first \(Store=\d+, Date=\d{4}-\d\d-\d\d\)"),
    "sample ids differ": ("sample_submission.csv", lambda f: f.drop(index=0, inplace=True), r"sample_submission.csv: its Id set differs"),
    "store_states without State": ("store_states.csv", lambda f: f.drop(columns=["State"], inplace=True), r"store_states.csv is missing column\(s\) State"),
    "non-numeric value": ("train.csv", _set_first("Promo", "yes"), r"train.csv: column Promo has 1 non-numeric .*'yes'"),
    "non-numeric store value": ("store.csv", _set_first("CompetitionDistance", "far"), r"store.csv: column CompetitionDistance .*'far'"),
    "non-numeric weather": ("weather/NW.csv", _set_first("Mean_TemperatureC", "warm"), r"NW.csv: column Mean_TemperatureC .*'warm'"),
    "empty file": ("store.csv", None, r"store.csv is empty"),
    "trend week missing": ("googletrend.csv", lambda f: f.drop(index=10, inplace=True), r"no match in googletrend.csv"),
    "weather day missing": ("weather/BY.csv", lambda f: f.drop(index=10, inplace=True), r"rows have no match in weather/<STATE>.csv"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_one_clear_line_and_writes_nothing(case, data, workspace, cli_run):
    name, change, message = BAD_INPUTS[case]
    path = data / name
    if change is None:
        path.write_text("")
    else:
        _rewrite(path, change, **({"sep": ";"} if name.startswith("weather") else {}))
    result = cli_run("train", "rossmann", "--data-dir", data, "--epochs", 1, *SMALL, expect=2)
    assert result.output.count("\n") == 1 and result.output.startswith("error: ")
    assert "Traceback" not in result.output and "np." not in result.output
    import re
    assert re.search(message, result.output), result.output
    assert not (workspace / "runs").exists()  # nothing written


# Every file Rossmann reads (train.csv.gz replaces train.csv).
FILES = ["train.csv", "train.csv.gz", "test.csv", "store.csv", "sample_submission.csv", "store_states.csv",
         "weather/NW.csv", "googletrend.csv"]


def _gzip_train(data):
    import gzip

    with gzip.open(data / "train.csv.gz", "wb") as out:
        out.write((data / "train.csv").read_bytes())
    (data / "train.csv").unlink()


@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("kind, message", [("directory", "is a directory"), ("empty", "is empty")])
def test_each_file_as_a_directory_or_empty_is_one_line_naming_it(name, kind, message, data, workspace, cli_run):
    if name == "train.csv.gz":
        _gzip_train(data)
    path = data / name
    path.unlink()
    if kind == "directory":
        path.mkdir()
    else:
        path.write_bytes(b"")
    result = cli_run("train", "rossmann", "--data-dir", data, "--epochs", 1, *SMALL, expect=2)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0] == f"error: {path} {message}" + (
        "; the competition expects a file there" if kind == "directory" else ""), result.output
    assert not (workspace / "runs").exists()


def test_truncated_train_gz_is_one_line_naming_it(data, workspace, cli_run):
    _gzip_train(data)
    path = data / "train.csv.gz"
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])
    result = cli_run("train", "rossmann", "--data-dir", data, "--epochs", 1, *SMALL, expect=2)
    assert result.output.startswith(f"error: {path} is truncated or damaged") and result.output.count("\n") == 1
    assert "Aborted" not in result.output and "Traceback" not in result.output
    assert not (workspace / "runs").exists()


def test_train_csv_gz_alone_trains(data, workspace, cli_run):
    _gzip_train(data)
    cli_run("train", "rossmann", "--data-dir", data, "--epochs", 1, *SMALL)
    summary = json.loads((next((workspace / "runs" / "rossmann").iterdir()) / "summary.json").read_text())
    assert np.isfinite(summary["primary_score"])


def test_model_summary_names_embeddings_by_column(data, workspace, cli_run):
    out = cli_run("model", "rossmann", "--data-dir", data, *SMALL).output
    assert "embeds.0 (Store)" in out and "embeds.1 (DayOfWeek)" in out and "(IsPromo2Month)" in out


def test_predict_after_test_file_breaks_writes_nothing(data, workspace, cli_run):
    cli_run("train", "rossmann", "--data-dir", data, "--epochs", 1, *SMALL)
    run = next((workspace / "runs" / "rossmann").iterdir())
    (run / "submission.csv").unlink()
    _rewrite(data / "test.csv", _set_first("Store", "999"))
    result = cli_run("predict", "rossmann", "--data-dir", data, expect=2)
    assert "absent from store.csv" in result.output
    assert not (run / "submission.csv").exists()


def test_config_overrides_shape_the_model(data):
    comp = Rossmann()
    config = apply_overrides(comp.default_config(), ["model.emb_widths.Store=7", "model.layer_scale=0.5",
                                                     "model.emb_rule=fastai", "train.batch_size=64"])
    raw = comp.load(data, config)
    prepared = comp.prepare(raw, config)
    model = comp.build_model(prepared.state, config)
    widths = dict(zip(prepared.state["cat_cols"], (e.embedding_dim for e in model.embeds)))
    assert widths["Store"] == 7
    n_weeks = prepared.state["cats"]["Week"]["levels"]
    assert widths["Week"] == round(1.6 * (len(n_weeks) + 1) ** 0.56)  # weeks seen in training, plus row 0
    assert [m.out_features for m in model.layers if hasattr(m, "out_features")] == [500, 250]
    lo, hi = model.y_range
    assert lo == 0 and hi == pytest.approx(np.log(1.2 * raw.train["Sales"].max()))


def test_cont_scaling_chooses_how_the_continuous_columns_reach_the_network(data):
    comp = Rossmann()
    raw = comp.load(data, comp.default_config())
    for scaling in ("standard", "quantile"):
        config = apply_overrides(comp.default_config(), {"model.cont_scaling": scaling, "train.batch_size": 64})
        state = comp.prepare(raw, config).state
        assert all(("quantiles" in spec) == (scaling == "quantile") for spec in state["conts"].values())
    # LightGBM sees only the order of values, which quantiles would coarsen: it keeps the plain numbers.
    gbm = apply_overrides(comp.default_config(), {"model.cont_scaling": "quantile", "model.kind": "gbm"})
    assert not any("quantiles" in spec for spec in comp.prepare(raw, gbm).state["conts"].values())


def test_config_naming_unknown_events_or_columns_is_a_clear_error(data, workspace, cli_run):
    result = cli_run("train", "rossmann", "--data-dir", data, "--set", 'data.events=["Promo", "Sunny"]', expect=2)
    assert "config: data.events[1] = 'Sunny' must be one of Promo, StateHoliday, SchoolHoliday, Closed, LongClosure (--set)" in result.output
    result = cli_run("train", "rossmann", "--data-dir", data, "--set", 'data.cont_cols=["Promo", "Sunshine"]', expect=2)
    assert "missing column(s) Sunshine" in result.output
    result = cli_run("train", "rossmann", "--data-dir", data, "--set", 'data.recent_by=["Weather"]', expect=2)
    assert "config: data.recent_by[0] = 'Weather' must be one of DayOfWeek, Promo" in result.output
    assert not (workspace / "runs").exists()


def test_split_recent_levels_reach_both_models(data, workspace, cli_run):
    for kind in ("nn", "gbm"):
        cli_run("train", "rossmann", "--data-dir", data, "--set", 'data.recent_by=["DayOfWeek"]', "--set",
                f'model.kind="{kind}"', "--epochs", 1, *SMALL)
    for run in (workspace / "runs" / "rossmann").iterdir():
        assert "RecentLogSales365ByDayOfWeek" in json.loads((run / "preprocessing.json").read_text())["cont_cols"]


def test_submission_from_outputs_keeps_closed_stores_at_zero():
    """What `harness blend` uses: Sales from (averaged) log-sales, closed stores still 0."""
    template = pd.DataFrame({"Id": [1, 2, 3], "Sales": [0.0, 100.0, 50.0]})
    out = Rossmann().submission_from_outputs(np.log([7.0, 200.0, 20.0]), template)
    assert out["Id"].tolist() == [1, 2, 3]
    assert out["Sales"].tolist() == pytest.approx([0.0, 200.0, 20.0])


def test_sample_submission_ids_that_disagree_with_test_fail_before_training(cli_run, workspace, tmp_path):
    from harness_plugins.rossmann import Rossmann

    data = tmp_path / "rossmann"
    Rossmann().write_sample(data)
    sample = pd.read_csv(data / "sample_submission.csv")
    sample.iloc[:-1].to_csv(data / "sample_submission.csv", index=False)  # one test Id missing
    result = cli_run("train", "rossmann", "--data-dir", data, expect=2)
    assert "sample_submission.csv: its Id set differs from test.csv's (383 vs 384 ids)" in result.output
    assert "epoch" not in result.output and not (workspace / "runs").exists()
