"""The tabular kind: a competition from a TOML file alone, on generated data in Kaggle's own layouts
(Bike Sharing's datetime id and leaky train-only columns, Amazon's id/Id, Otto's zipped CSV with one
probability column per class, Titanic's 0/1 labels)."""
import zipfile

import numpy as np
import pandas as pd
import pytest

from harness.config.loading import apply_overrides
from harness.errors import HarnessError
from harness.kinds import competition_from_toml
from harness.runs import runner
from harness.runs.folder import Run
from harness.runs.kfold import train_folds

FAST = """
[train]
epochs = 3
batch_size = 64
lr = 0.01
"""


def write_toml(folder, name, body):
    path = folder / f"{name}.toml"
    path.write_text(f'name = "{name}"\nkind = "tabular"\n{body}')
    return path


def bike_like(folder, n=600, seed=0):
    """Hourly rows; count depends on the hour and the temperature; `casual` leaks it (train only)."""
    rng = np.random.default_rng(seed)
    times = pd.date_range("2011-01-01", periods=n + 200, freq="h")
    frame = pd.DataFrame({"datetime": times.strftime("%Y-%m-%d %H:%M:%S"), "season": rng.integers(1, 5, n + 200),
                          "temp": rng.uniform(0, 35, n + 200).round(2), "humidity": rng.integers(0, 101, n + 200)})
    hour = times.hour.to_numpy()
    count = np.round(np.exp(1 + 2 * np.sin(np.pi * hour / 24) + frame["temp"] / 20 + rng.normal(0, 0.2, n + 200)))
    train, test = frame.iloc[:n].copy(), frame.iloc[n:].reset_index(drop=True)
    train["casual"] = (count[:n] * 0.3).round()
    train["count"] = count[:n].astype(int)
    train.to_csv(folder / "train.csv", index=False)
    test.to_csv(folder / "test.csv", index=False)
    pd.DataFrame({"datetime": test["datetime"], "count": 0}).to_csv(folder / "sampleSubmission.csv", index=False)
    return folder


BIKE = """task = "regression"
metric = "rmsle"
[data]
train = "train.csv"
test = "test.csv"
sample_submission = "sampleSubmission.csv"
id = "datetime"
target = "count"
target_transform = "log1p"
[submission]
nonnegative = true
""" + FAST


def folder(path):
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def bike(tmp_path):
    data = bike_like(folder(tmp_path / "data"))
    return competition_from_toml(write_toml(tmp_path, "bike", BIKE)), data


def test_columns_are_inferred_leaks_left_out_and_the_datetime_id_gives_date_parts(bike):
    comp, data = bike
    raw = comp.load(data, comp.default_config())
    types = raw.columns
    assert "casual" in types.left_out and "leak" in types.left_out["casual"]
    assert types.dates == ["datetime"] and "datetime" not in raw.cat_cols + raw.cont_cols
    assert "datetime_Hour" in raw.cat_cols and "datetime_Elapsed" in raw.cont_cols
    assert "datetime_Minute" not in raw.cat_cols  # always 0 in hourly rows
    assert "season" in raw.cat_cols and {"temp", "humidity"} <= set(raw.cont_cols)
    assert "casual" in types.table() and "leak" in types.table()


def test_a_toml_regression_trains_scores_on_the_target_scale_and_fills_the_sample(bike, tmp_path):
    comp, data = bike
    run = runner.train(comp, comp.default_config(), data, tmp_path / "ws", progress=False)
    preds, targets = run.array("valid_preds.npy"), run.array("valid_targets.npy")
    # the model learns log1p(count); rmsle is on counts: the RMSE of the log1p values
    rmsle = float(np.sqrt(np.mean((np.log1p(np.maximum(np.expm1(preds), 0)) - targets) ** 2)))
    assert run.summary()["primary_metric"] == "rmsle"
    assert run.summary()["primary_score"] == pytest.approx(rmsle, rel=1e-4)
    baseline = float(np.sqrt(np.mean((targets - targets.mean()) ** 2)))
    assert rmsle < 0.8 * baseline
    submission = pd.read_csv(run.path("submission.csv"))
    sample = pd.read_csv(data / "sampleSubmission.csv")
    assert list(submission.columns) == list(sample.columns)
    assert submission["datetime"].equals(sample["datetime"])
    assert (submission["count"] >= 0).all() and submission["count"].mean() > 1


def test_k_folds_give_one_out_of_fold_prediction_per_row(bike, tmp_path):
    comp, data = bike
    run = train_folds(comp, comp.default_config(), data, tmp_path / "ws", 3, progress=False)
    oof = run.array("oof_preds.npy")
    assert oof.shape == (600,) and not np.isnan(oof).any()
    assert run.summary()["folds"] == 3 and run.path("submission.csv").is_file()


AMAZON = """task = "binary"
metric = "roc_auc"
[data]
train = "train.csv"
test = "test.csv"
sample_submission = "sampleSubmission.csv"
id = "id"
target = "ACTION"
[submission]
id_column = "Id"
[validation]
scheme = "stratified"
""" + FAST


def amazon_like(folder, n=800, seed=0):
    """Sparse integer codes; ACTION depends on one code's group; test's `id` is the sample's `Id`."""
    rng = np.random.default_rng(seed)
    levels = rng.choice(np.arange(100_000, 400_000), size=60, replace=False)
    good = set(levels[:30])
    codes = rng.choice(levels, size=n + 300)
    other = rng.choice(levels, size=n + 300)
    action = np.array([1 if (c in good) ^ (rng.random() < 0.1) else 0 for c in codes])
    train = pd.DataFrame({"ACTION": action[:n], "RESOURCE": codes[:n], "MGR_ID": other[:n]})
    test = pd.DataFrame({"id": np.arange(1, 301), "RESOURCE": codes[n:], "MGR_ID": other[n:]})
    train.to_csv(folder / "train.csv", index=False)
    test.to_csv(folder / "test.csv", index=False)
    pd.DataFrame({"Id": test["id"][::-1], "Action": 0}).to_csv(folder / "sampleSubmission.csv", index=False)
    return action[n:]


def test_a_binary_competition_reads_codes_as_categories_and_submits_probabilities(tmp_path):
    (tmp_path / "data").mkdir()
    answers = amazon_like(tmp_path / "data")
    comp = competition_from_toml(write_toml(tmp_path, "amazon", AMAZON))
    raw = comp.load(tmp_path / "data", comp.default_config())
    assert "RESOURCE" in raw.cat_cols and "codes" in raw.columns.reasons["RESOURCE"]
    run = runner.train(comp, comp.default_config(), tmp_path / "data", tmp_path / "ws", progress=False)
    assert run.summary()["primary_metric"] == "roc_auc" and run.summary()["primary_score"] > 0.75
    submission = pd.read_csv(run.path("submission.csv"))
    assert list(submission.columns) == ["Id", "Action"]
    assert submission["Id"].tolist() == list(range(300, 0, -1))  # the sample's order, not the test's
    assert submission["Action"].between(0, 1).all()
    from sklearn.metrics import roc_auc_score

    by_id = submission.set_index("Id")["Action"].reindex(range(1, 301)).to_numpy()
    assert roc_auc_score(answers, by_id) > 0.75


OTTO = """task = "multiclass"
metric = "log_loss"
[data]
train = "train.csv.zip"
test = "test.csv.zip"
sample_submission = "sampleSubmission.csv"
id = "id"
target = "target"
[validation]
scheme = "stratified"
""" + FAST


def otto_like(folder, n=600, seed=0):
    rng = np.random.default_rng(seed)
    classes = np.array([f"Class_{i}" for i in (1, 2, 10)])  # Class_10 sorts after Class_2
    y = rng.integers(0, 3, n + 200)
    feats = rng.poisson(1.0, size=(n + 200, 4)) + np.eye(3, 4, dtype=int)[y] * 4
    frame = pd.DataFrame(feats, columns=[f"feat_{i}" for i in range(1, 5)])
    frame.insert(0, "id", np.arange(1, n + 201))
    train = frame.iloc[:n].assign(target=classes[y[:n]])
    test = frame.iloc[n:]
    for part, name in ((train, "train.csv"), (test, "test.csv")):
        with zipfile.ZipFile(folder / f"{name}.zip", "w") as zf:
            zf.writestr(name, part.to_csv(index=False))
    sample = pd.DataFrame({"id": test["id"], **{c: 1.0 / 3 for c in classes}})
    sample.to_csv(folder / "sampleSubmission.csv", index=False)
    return classes[y[n:]]


def test_a_multiclass_competition_fills_one_probability_column_per_class_by_name(tmp_path):
    (tmp_path / "data").mkdir()
    answers = otto_like(tmp_path / "data")
    comp = competition_from_toml(write_toml(tmp_path, "otto", OTTO))
    config = comp.default_config()
    raw = comp.load(tmp_path / "data", config)
    assert "id" in raw.columns.left_out  # an id is never a feature
    assert config["submission"]["classes"] == ["Class_1", "Class_2", "Class_10"]
    run = runner.train(comp, config, tmp_path / "data", tmp_path / "ws", progress=False)
    submission = pd.read_csv(run.path("submission.csv"))
    assert list(submission.columns) == ["id", "Class_1", "Class_2", "Class_10"]
    probs = submission[["Class_1", "Class_2", "Class_10"]].to_numpy()
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-6)
    picked = np.array(["Class_1", "Class_2", "Class_10"])[probs.argmax(axis=1)]
    assert (picked == answers).mean() > 0.8  # each column holds its own class's probability
    assert run.summary()["primary_score"] < np.log(3)


TITANIC = """task = "binary"
metric = "accuracy"
[data]
train = "train.csv"
test = "test.csv"
sample_submission = "gender_submission.csv"
id = "PassengerId"
target = "Survived"
[validation]
scheme = "stratified"
""" + FAST


def titanic_like(folder, n=500, seed=0):
    """Survival is rare (30%) and tied to Sex and Fare: 0/1 labels, scored by accuracy."""
    rng = np.random.default_rng(seed)
    sex = rng.choice(["male", "female"], n + 200)
    fare = rng.exponential(30, n + 200).round(2)
    p = 1 / (1 + np.exp(-(-2.2 + 2.5 * (sex == "female") + fare / 60)))
    survived = (rng.random(n + 200) < p).astype(int)
    frame = pd.DataFrame({"PassengerId": np.arange(1, n + 201), "Sex": sex, "Fare": fare,
                          "Name": [f"Family{i}, {'Mrs' if s == 'female' else 'Mr'}. Given" for i, s in enumerate(sex)]})
    frame.iloc[:n].assign(Survived=survived[:n]).to_csv(folder / "train.csv", index=False)
    frame.iloc[n:].to_csv(folder / "test.csv", index=False)
    pd.DataFrame({"PassengerId": frame["PassengerId"][n:], "Survived": (sex[n:] == "female").astype(int)}).to_csv(
        folder / "gender_submission.csv", index=False)


def test_a_label_submission_uses_the_threshold_chosen_on_out_of_fold_predictions(tmp_path):
    (tmp_path / "data").mkdir()
    titanic_like(tmp_path / "data")
    comp = competition_from_toml(write_toml(tmp_path, "titanic", TITANIC))
    config = comp.default_config()
    raw = comp.load(tmp_path / "data", config)
    assert raw.columns.left_out["Name"].startswith("free text")
    run = train_folds(comp, config, tmp_path / "data", tmp_path / "ws", 3, progress=False)
    submission = pd.read_csv(run.path("submission.csv"))
    assert list(submission.columns) == ["PassengerId", "Survived"]
    assert set(submission["Survived"].unique()) <= {0, 1} and submission["Survived"].dtype.kind == "i"
    from harness.kinds.tabular_submission import label_threshold
    from scipy.special import expit

    oof, targets = run.array("oof_preds.npy"), run.array("oof_targets.npy")
    threshold = label_threshold(comp.task, run.config(), (oof, targets))
    mean = run.array("test_preds.npy")
    assert (submission["Survived"].to_numpy() == (expit(mean) > threshold)).all()
    # the chosen threshold scores at least as well as 0.5 on the OOF rows it was chosen on
    acc = lambda t: float(((expit(oof) > t) == targets).mean())  # noqa: E731
    assert acc(threshold) >= acc(0.5)


def test_a_mean_of_single_split_runs_takes_its_label_threshold_from_their_validation_rows(tmp_path):
    from scipy.special import expit

    from harness.kinds.tabular_submission import label_threshold
    from harness.tune.blend import blend_holdout_runs

    (tmp_path / "data").mkdir()
    titanic_like(tmp_path / "data")
    comp = competition_from_toml(write_toml(tmp_path, "titanic", TITANIC))
    config = apply_overrides(comp.default_config(), {"validation.scheme": "holdout"})
    runs = [runner.train(comp, apply_overrides(config, {"seed": seed}), tmp_path / "data", tmp_path / "ws",
                         progress=False, echo=False) for seed in (1, 2)]
    result = blend_holdout_runs(comp, tmp_path / "ws", runs)
    valid, targets = result.run.array("valid_preds.npy"), result.run.array("valid_targets.npy")
    threshold = label_threshold(comp.task, config, (valid, targets))
    submission = pd.read_csv(result.run.path("submission.csv"))
    assert (submission["Survived"].to_numpy() == (expit(result.run.array("test_preds.npy")) > threshold)).all()


# ---------------------------------------------------------------------- bad input and registration
def test_a_missing_target_column_names_the_file(tmp_path):
    (tmp_path / "data").mkdir()
    bike_like(tmp_path / "data")
    comp = competition_from_toml(write_toml(tmp_path, "bike", BIKE.replace('target = "count"', 'target = "cnt"')))
    with pytest.raises(HarnessError, match=r"train.csv is missing column\(s\) cnt"):
        comp.load(tmp_path / "data", comp.default_config())


def test_a_declared_date_column_that_is_not_dates_names_the_file(tmp_path):
    (tmp_path / "data").mkdir()
    bike_like(tmp_path / "data")
    for name in ("train.csv", "test.csv"):
        table = pd.read_csv(tmp_path / "data" / name)
        table.assign(when="soon").to_csv(tmp_path / "data" / name, index=False)
    comp = competition_from_toml(write_toml(tmp_path, "bike", BIKE.replace('target = "count"',
                                                                           'target = "count"\ndates = ["when"]')))
    with pytest.raises(HarnessError, match=r"data/train.csv: column when has 600 unparseable or empty date"):
        comp.load(tmp_path / "data", comp.default_config())


def test_a_binary_task_with_three_target_values_says_what_to_declare(tmp_path):
    (tmp_path / "data").mkdir()
    otto_like(tmp_path / "data")
    comp = competition_from_toml(write_toml(tmp_path, "otto", OTTO.replace('task = "multiclass"', 'task = "binary"')
                                            .replace('"log_loss"', '"roc_auc"')))
    with pytest.raises(HarnessError, match="a binary target has two values; target has 3"):
        comp.load(tmp_path / "data", comp.default_config())


def test_quantile_scaling_is_a_config_key_that_reaches_the_network_and_is_checked(bike, tmp_path):
    comp, data = bike
    standard = comp.default_config()
    assert standard["model"]["cont_scaling"] == "standard"  # not measured on any benchmark: the lesson's
    quantile = apply_overrides(standard, ["model.cont_scaling=quantile"])
    raw = comp.load(data, quantile)
    prepared = {name: comp.prepare(raw, cfg) for name, cfg in (("standard", standard), ("quantile", quantile))}
    assert "quantiles" in prepared["quantile"].state["conts"]["temp"]
    assert "quantiles" not in prepared["standard"].state["conts"]["temp"]
    # The date's elapsed days stay linear: every later row lies past the training days, where quantiles
    # would give all of them the top score and the trend would stop at the last training day.
    assert "datetime_Elapsed" in raw.cont_cols and "quantiles" not in prepared["quantile"].state["conts"]["datetime_Elapsed"]
    temp = raw.cont_cols.index("temp")
    uniform = prepared["quantile"].train_dl.inputs[1][:, temp].numpy()
    assert abs(float(np.mean(np.abs(uniform) < 0.6745)) - 0.5) < 0.05  # normal scores: half within the quartiles
    body = BIKE.replace("[submission]", '[model]\ncont_scaling = "rank"\n[submission]')
    with pytest.raises(HarnessError, match=r"model.cont_scaling = 'rank' must be one of .*bike2.toml"):
        competition_from_toml(write_toml(tmp_path, "bike2", body)).default_config()


def test_a_bad_key_in_the_toml_is_one_line_naming_the_file(tmp_path):
    comp = competition_from_toml(write_toml(tmp_path, "bike", BIKE.replace('"log1p"', '"sqrt"')))
    with pytest.raises(HarnessError, match=r"data.target_transform = 'sqrt' must be one of .*bike.toml"):
        comp.default_config()


def test_an_unknown_kind_is_refused(tmp_path):
    path = tmp_path / "x.toml"
    path.write_text('name = "x"\nkind = "graph"\n')
    with pytest.raises(HarnessError, match="kind = 'graph' is not a competition kind; use one of tabular"):
        competition_from_toml(path)


def test_workspace_tomls_are_listed_and_trained_from_the_cli(cli_run, workspace, tmp_path):
    (tmp_path / "data").mkdir()
    bike_like(tmp_path / "data")
    write_toml(folder(workspace / "competitions"), "bike", BIKE)
    (workspace / "competitions" / "broken.toml").write_text("kind = [")
    result = cli_run("list")
    assert "bike" in result.output
    assert "broken.toml skipped" in result.output  # one warning, the other competitions still listed
    out = cli_run("train", "bike", "--data-dir", tmp_path / "data", "--epochs", "1").output
    assert "validation rmsle" in out
    assert Run.all(workspace, "bike")


# ---------------------------------------------------------------------- gradient boosting on the same pieces
def test_gbm_trains_on_the_same_rows_predicts_again_from_the_saved_run_and_blends(tmp_path):
    data = bike_like(folder(tmp_path / "data"))
    comp = competition_from_toml(write_toml(tmp_path, "bike", BIKE))
    config = comp.default_config()
    from harness.config.loading import apply_overrides

    gbm = apply_overrides(config, ["model.kind=\"gbm\"", "gbm.n_estimators=200"], schema=comp.config_schema)
    run = runner.train(comp, gbm, data, tmp_path / "ws", progress=False, echo=False)
    nn_run = runner.train(comp, config, data, tmp_path / "ws", progress=False)
    # the same validation rows (the split has its own seed), so the two can be blended
    assert np.array_equal(run.array("valid_targets.npy"), nn_run.array("valid_targets.npy"))
    assert run.summary()["primary_score"] < 0.5
    first = pd.read_csv(run.path("submission.csv"))
    again = pd.read_csv(runner.predict(comp, run, data))
    assert np.allclose(first["count"], again["count"]) and (first["count"] >= 0).all()


def test_gbm_multiclass_fills_every_class_column(tmp_path):
    answers = otto_like(folder(tmp_path / "data"))
    comp = competition_from_toml(write_toml(tmp_path, "otto", OTTO + '[model]\nkind = "gbm"\n[gbm]\nn_estimators = 100\n'))
    run = train_folds(comp, comp.default_config(), tmp_path / "data", tmp_path / "ws", 3, progress=False, echo=False)
    submission = pd.read_csv(run.path("submission.csv"))
    probs = submission[["Class_1", "Class_2", "Class_10"]].to_numpy()
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-6)
    assert (np.array(["Class_1", "Class_2", "Class_10"])[probs.argmax(axis=1)] == answers).mean() > 0.8
    assert run.summary()["cv_score"] < np.log(3)


@pytest.mark.parametrize("suffix", [".csv.gz", ".tsv", ".parquet"])
def test_the_table_may_be_gzipped_tab_separated_or_parquet(tmp_path, suffix):
    data = bike_like(folder(tmp_path / "data"))
    for part in ("train", "test"):
        frame = pd.read_csv(data / f"{part}.csv")
        (data / f"{part}.csv").unlink()
        target = data / f"{part}{suffix}"
        if suffix == ".parquet":
            frame.to_parquet(target)
        else:
            frame.to_csv(target, sep="\t" if suffix == ".tsv" else ",", index=False)
    body = BIKE.replace('"train.csv"', f'"train{suffix}"').replace('"test.csv"', f'"test{suffix}"')
    comp = competition_from_toml(write_toml(tmp_path, "bike", body))
    raw = comp.load(data, comp.default_config())
    assert len(raw.train) == 600 and "datetime_Hour" in raw.cat_cols and "temp" in raw.cont_cols


def test_submit_dry_run_finds_a_sample_of_any_name_and_checks_a_label_submission(cli_run, workspace, tmp_path):
    titanic_like(folder(tmp_path / "data"))
    write_toml(folder(workspace / "competitions"), "titanic", 'kaggle_slug = "titanic"\n' + TITANIC)
    cli_run("train", "titanic", "--data-dir", tmp_path / "data", "--folds", "3", "--epochs", "1")
    out = cli_run("submit", "titanic", "--dry-run", "--data-dir", tmp_path / "data").output
    assert "dry run" in out.lower()
    (run,) = [r for r in Run.all(workspace, "titanic")]
    bad = pd.read_csv(run.path("submission.csv")).iloc[:-1]  # a row short
    bad.to_csv(run.path("submission.csv"), index=False)
    result = cli_run("submit", "titanic", "--dry-run", "--data-dir", tmp_path / "data", expect=2)
    assert "PassengerId" in result.output and "Traceback" not in result.output


def test_a_toml_competition_without_a_sample_writer_says_how_to_give_its_data(cli_run, workspace):
    write_toml(folder(workspace / "competitions"), "bike", BIKE)
    result = cli_run("data", "bike", "--sample", expect=2)
    assert "bike has no generated sample data" in result.output and "--from DIR" in result.output
    assert "Traceback" not in result.output


def test_a_sample_whose_ids_are_not_the_tests_fails_before_any_run_folder_exists(tmp_path):
    data = bike_like(folder(tmp_path / "data"))
    sample = pd.read_csv(data / "sampleSubmission.csv")
    sample.iloc[:-1].to_csv(data / "sampleSubmission.csv", index=False)  # one test id missing
    comp = competition_from_toml(write_toml(tmp_path, "bike", BIKE))
    with pytest.raises(HarnessError, match="not in the sample submission"):
        runner.train(comp, comp.default_config(), data, tmp_path / "ws", progress=False)
    assert not (tmp_path / "ws" / "runs").exists()


def amazon_codes(folder):
    """A file to join on MGR_ID that also has RESOURCE, a column of train.csv and test.csv."""
    managers = pd.concat([pd.read_csv(folder / f"{part}.csv")["MGR_ID"] for part in ("train", "test")]).unique()
    pd.DataFrame({"MGR_ID": managers, "RESOURCE": 0}).to_csv(folder / "codes.csv", index=False)


@pytest.mark.parametrize("edit, message", [
    (lambda body: body.replace('metric = "roc_auc"', 'metric = "rmse"'), "metric 'rmse' does not score a binary task"),
    (lambda body: body.replace('id_column = "Id"', 'id_column = "Id"\ncolumns = ["zz"]'),
     "submission.columns = ['zz'] names zz, not a column of the sample submission"),
    (lambda body: body.replace('target = "ACTION"', 'target = "ACTION"\njoins = [{ file = "codes.csv", on = ["MGR_ID"] }]'),
     "joining codes.csv on (MGR_ID) would duplicate column(s) RESOURCE, which train.csv has too"),
])
def test_a_bad_metric_submission_column_or_join_is_one_line_before_any_k_fold_run_folder(cli_run, workspace, tmp_path,
                                                                                         edit, message):
    amazon_like(folder(tmp_path / "data"))
    amazon_codes(tmp_path / "data")
    path = write_toml(folder(workspace / "competitions"), "amazon", edit(AMAZON))
    result = cli_run("train", "amazon", "--data-dir", tmp_path / "data", "--folds", "2", "--epochs", "1", expect=2)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.output, result.output
    if "submission" in message:
        assert str(path) in lines[0]
    assert not (workspace / "runs").exists()


def test_k_folds_check_the_batch_size_against_every_folds_training_rows_but_not_for_gbm(bike):
    from harness.config.loading import apply_overrides
    from harness.data.folds import assign_folds
    from harness.runs.kfold import check_folds_fit

    comp, _ = bike
    config = apply_overrides(comp.default_config(), ["train.batch_size=500"], schema=comp.config_schema)
    plan = assign_folds(pd.DataFrame({"x": range(600)}), {"folds": 3})  # 400 training rows a fold
    with pytest.raises(HarnessError, match=r"train.batch_size = 500 is larger than the 400 training rows of fold 1/3"):
        check_folds_fit(comp, config, plan)
    check_folds_fit(comp, apply_overrides(config, ['model.kind="gbm"'], schema=comp.config_schema), plan)  # no batches
