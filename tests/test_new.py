"""`harness new NAME --from DIR`: guessing a tabular competition's TOML from its files (file roles, the id,
the target, the task, the metric, the submission format, the columns never used), refusing where the
files leave a choice open, and the command that writes the TOML and copies the data."""
import tomllib
import zipfile

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from harness.errors import HarnessError
from harness.kinds.inspect import inspect_folder


def write_zip(path, frame):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr(path.name.removesuffix(".zip"), frame.to_csv(index=False))


def bike(folder):
    """Bike Sharing's layout: a datetime id, train-only casual + registered = count, test from the 20th."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    hours = pd.date_range("2011-01-01", periods=24 * 25, freq="h")
    frame = pd.DataFrame({"datetime": hours.strftime("%Y-%m-%d %H:%M:%S"), "season": 1,
                          "temp": rng.uniform(0, 30, len(hours)).round(2)})
    train = frame[hours.day < 20].assign(casual=rng.integers(0, 50, (hours.day < 20).sum()),
                                         registered=rng.integers(0, 300, (hours.day < 20).sum()))
    train["count"] = train["casual"] + train["registered"]
    test = frame[hours.day >= 20]
    train.to_csv(folder / "train.csv", index=False)
    test.to_csv(folder / "test.csv", index=False)
    pd.DataFrame({"datetime": test["datetime"], "count": 0}).to_csv(folder / "sampleSubmission.csv", index=False)
    return folder


def amazon(folder):
    """Amazon's layout: train has ACTION and no id; test has id; the sample says Id, Action."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    train = pd.DataFrame({"ACTION": rng.integers(0, 2, 300), "RESOURCE": rng.integers(1, 9999, 300),
                          "MGR_ID": rng.integers(1, 999, 300)})
    test = pd.DataFrame({"id": np.arange(1, 101), "RESOURCE": rng.integers(1, 9999, 100),
                         "MGR_ID": rng.integers(1, 999, 100)})
    train.to_csv(folder / "train.csv", index=False)
    test.to_csv(folder / "test.csv", index=False)
    pd.DataFrame({"Id": test["id"], "Action": 0}).to_csv(folder / "sampleSubmission.csv", index=False)
    return folder


def otto(folder):
    """Otto's layout: zipped CSVs, an id in train (sorted by class: a leak), the target's values as the
    sample's columns."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(2)
    classes = [f"Class_{i}" for i in range(1, 5)]
    target = np.sort(rng.choice(classes, 400))
    features = {f"feat_{i}": rng.integers(0, 5, 400) for i in range(1, 4)}
    write_zip(folder / "train.csv.zip", pd.DataFrame({"id": np.arange(1, 401), **features, "target": target}))
    test = pd.DataFrame({"id": np.arange(1, 201), **{k: v[:200] for k, v in features.items()}})
    write_zip(folder / "test.csv.zip", test)
    sample = pd.DataFrame({"id": test["id"], **{c: 0 for c in classes}})
    sample["Class_1"] = 1
    sample.to_csv(folder / "sampleSubmission.csv", index=False)
    return folder


def titanic(folder):
    """Titanic's layout: gender_submission.csv with 0/1 labels; the id is in train too."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(3)
    train = pd.DataFrame({"PassengerId": np.arange(1, 201), "Survived": rng.integers(0, 2, 200),
                          "Pclass": rng.integers(1, 4, 200), "Sex": rng.choice(["male", "female"], 200)})
    test = train.drop(columns="Survived").assign(PassengerId=np.arange(201, 401))
    train.to_csv(folder / "train.csv", index=False)
    test.to_csv(folder / "test.csv", index=False)
    pd.DataFrame({"PassengerId": test["PassengerId"], "Survived": (test["Sex"] == "female").astype(int)}).to_csv(
        folder / "gender_submission.csv", index=False)
    return folder


# ---------------------------------------------------------------------------- the guesses

def test_bike_regression_with_a_datetime_id_and_leaks_dropped(tmp_path):
    guess = inspect_folder(bike(tmp_path / "bike-sharing-demand"), "bike")
    c, d, s = guess.config, guess.config["data"], guess.config["submission"]
    assert (c["kind"], c["task"], c["metric"], c["kaggle_slug"]) == ("tabular", "regression", "rmsle",
                                                                     "bike-sharing-demand")
    assert (d["train"], d["test"], d["sample_submission"]) == ("train.csv", "test.csv", "sampleSubmission.csv")
    assert (d["id"], d["target"], d["target_transform"], d["drop"]) == ("datetime", "count", "log1p",
                                                                          ["casual", "registered"])
    assert s == {"format": "values", "columns": ["count"], "id_column": "datetime", "classes": [], "positive": "",
                 "nonnegative": True}
    assert c["validation"] == {"scheme": "kfold", "folds": 5, "split_seed": 0}
    assert "model" not in c and "train" not in c  # the kind's defaults
    text = "\n".join(guess.reasons)
    assert "casual, registered (not in test.csv (would leak))" in text
    assert "Kaggle's metric for bike-sharing-demand" in text
    assert "datetime is the id but holds dates" in text
    assert guess.files == {"sampleSubmission.csv": "sample submission", "test.csv": "test", "train.csv": "train"}


def test_an_unknown_slug_gets_the_tasks_default_metric_said_out_loud(tmp_path):
    guess = inspect_folder(bike(tmp_path / "rentals"), "rentals")
    assert (guess.config["metric"], guess.config["kaggle_slug"], guess.config["data"]["target_transform"]) == \
        ("rmse", "", "")
    assert any("rmse (the default for a regression task; --metric NAME chooses another" in r for r in guess.reasons)
    assert any(r.startswith("kaggle_slug: none known") for r in guess.reasons)
    slugged = inspect_folder(tmp_path / "rentals", "rentals", slug="bike-sharing-demand")
    assert (slugged.config["metric"], slugged.config["kaggle_slug"]) == ("rmsle", "bike-sharing-demand")


def test_amazon_binary_matches_id_and_target_ignoring_case(tmp_path):
    guess = inspect_folder(amazon(tmp_path / "amazon-employee-access-challenge"), "amazon")
    c, d, s = guess.config, guess.config["data"], guess.config["submission"]
    assert (c["task"], c["metric"]) == ("binary", "roc_auc")
    assert (d["id"], d["target"], d["drop"], d["target_transform"]) == ("id", "ACTION", [], "")
    assert (s["format"], s["columns"], s["id_column"], s["positive"]) == ("probabilities", ["Action"], "Id", "")
    assert c["validation"]["scheme"] == "stratified"
    assert any("id: id (Id in sampleSubmission.csv)" in r for r in guess.reasons)


def test_otto_multiclass_from_the_samples_class_columns_and_zipped_csvs(tmp_path):
    guess = inspect_folder(otto(tmp_path / "otto-group-product-classification-challenge"), "otto")
    c, d, s = guess.config, guess.config["data"], guess.config["submission"]
    assert (c["task"], c["metric"]) == ("multiclass", "log_loss")
    assert (d["train"], d["test"], d["id"], d["target"]) == ("train.csv.zip", "test.csv.zip", "id", "target")
    assert d["drop"] == ["id"]  # the id is in train too: a row number, never a feature
    classes = [f"Class_{i}" for i in range(1, 5)]
    assert (s["format"], s["columns"], s["classes"]) == ("class_probabilities", classes, classes)
    assert any("its values are sampleSubmission.csv's columns" in r for r in guess.reasons)
    # no known slug: a multiclass task with one column per class defaults to log_loss
    assert inspect_folder(tmp_path / "otto-group-product-classification-challenge", "o",
                          slug="unknown").config["metric"] == "log_loss"


def test_titanic_gender_submission_with_labels_and_metric_accuracy(tmp_path):
    guess = inspect_folder(titanic(tmp_path / "titanic-local"), "titanic-local", metric="accuracy")
    c, d, s = guess.config, guess.config["data"], guess.config["submission"]
    assert (c["task"], c["metric"], d["sample_submission"]) == ("binary", "accuracy", "gender_submission.csv")
    assert (d["id"], d["target"], d["drop"]) == ("PassengerId", "Survived", ["PassengerId"])
    assert (s["format"], s["columns"], s["classes"]) == ("labels", ["Survived"], ["0", "1"])
    assert any(r == "metric: accuracy (--metric)" for r in guess.reasons)
    # Titanic's own folder name is a known slug
    assert inspect_folder(titanic(tmp_path / "titanic"), "t").config["metric"] == "accuracy"


def test_integers_under_a_label_metric_are_multiclass(tmp_path):
    folder = tmp_path / "ratings"
    folder.mkdir()
    pd.DataFrame({"id": range(60), "x": range(60), "stars": [1, 2, 3, 4, 5] * 12}).to_csv(folder / "train.csv",
                                                                                         index=False)
    pd.DataFrame({"id": range(60, 70), "x": range(10)}).to_csv(folder / "test.csv", index=False)
    pd.DataFrame({"id": range(60, 70), "stars": 3}).to_csv(folder / "sample_submission.csv", index=False)
    assert inspect_folder(folder, "r").config["task"] == "regression"
    guess = inspect_folder(folder, "r", metric="qwk")
    assert (guess.config["task"], guess.config["submission"]["format"]) == ("multiclass", "labels")
    assert guess.config["submission"]["classes"] == ["1", "2", "3", "4", "5"]


def test_without_a_sample_the_one_train_only_column_is_the_target(tmp_path):
    folder = titanic(tmp_path / "t")
    (folder / "gender_submission.csv").unlink()
    guess = inspect_folder(folder, "t", metric="roc_auc")
    d, s = guess.config["data"], guess.config["submission"]
    assert (d["sample_submission"], d["target"], d["id"]) == ("", "Survived", "")
    assert (s["format"], s["columns"], s["id_column"]) == ("probabilities", ["Survived"], "")
    guess = inspect_folder(folder, "t", metric="roc_auc", id="PassengerId")
    assert guess.config["submission"]["id_column"] == guess.config["data"]["id"] == "PassengerId"


# ---------------------------------------------------------------------------- where the files leave it open

def one_line(info):
    message = str(info.value)
    assert "\n" not in message
    return message


def test_two_target_candidates_need_target(tmp_path):
    folder = bike(tmp_path / "b")
    sample = pd.read_csv(folder / "sampleSubmission.csv").assign(casual=0)
    sample.to_csv(folder / "sampleSubmission.csv", index=False)
    with pytest.raises(HarnessError) as info:
        inspect_folder(folder, "b")
    assert "casual, count" in one_line(info) and "--target" in one_line(info)
    no_sample = bike(tmp_path / "c")
    (no_sample / "sampleSubmission.csv").unlink()
    with pytest.raises(HarnessError, match="3 columns of train.csv are not in test.csv.*--target"):
        inspect_folder(no_sample, "c")
    assert inspect_folder(no_sample, "c", target="count").config["data"]["drop"] == ["casual", "registered"]


def test_no_column_shared_by_test_and_sample_needs_id(tmp_path):
    folder = amazon(tmp_path / "a")
    pd.read_csv(folder / "sampleSubmission.csv").rename(columns={"Id": "row"}).to_csv(
        folder / "sampleSubmission.csv", index=False)
    with pytest.raises(HarnessError) as info:
        inspect_folder(folder, "a")
    assert "share no column" in one_line(info) and "--id" in one_line(info)


def test_two_sample_candidates_need_sample(tmp_path):
    folder = titanic(tmp_path / "t")
    pd.read_csv(folder / "gender_submission.csv").to_csv(folder / "sample_submission.csv", index=False)
    with pytest.raises(HarnessError) as info:
        inspect_folder(folder, "t")
    assert "gender_submission.csv, sample_submission.csv" in one_line(info) and "--sample" in one_line(info)
    assert inspect_folder(folder, "t", sample="sample_submission.csv").config["data"]["sample_submission"] == \
        "sample_submission.csv"


def test_a_target_or_id_that_is_not_in_the_files_is_an_error(tmp_path):
    folder = amazon(tmp_path / "a")
    with pytest.raises(HarnessError) as info:
        inspect_folder(folder, "a", target="Outcome")
    assert "--target Outcome: train.csv has no such column" in one_line(info)
    with pytest.raises(HarnessError, match="--target RESOURCE: test.csv has that column too"):
        inspect_folder(folder, "a", target="RESOURCE")
    with pytest.raises(HarnessError, match="--id key: test.csv has no such column"):
        inspect_folder(folder, "a", id="key")
    assert inspect_folder(folder, "a", target="action", id="ID").config["data"]["target"] == "ACTION"


def test_several_train_files_a_wrong_metric_and_no_target(tmp_path):
    folder = amazon(tmp_path / "a")
    pd.read_csv(folder / "train.csv").to_csv(folder / "train_extra.csv", index=False)
    with pytest.raises(HarnessError, match="several train files.*--train FILE"):
        inspect_folder(folder, "a")
    (folder / "train_extra.csv").unlink()
    with pytest.raises(HarnessError, match="metric rmse does not score a binary task.*--metric"):
        inspect_folder(folder, "a", metric="rmse")
    with pytest.raises(HarnessError, match="unknown metric"):
        inspect_folder(folder, "a", metric="gini")
    pd.read_csv(folder / "sampleSubmission.csv").rename(columns={"Action": "y"}).to_csv(
        folder / "sampleSubmission.csv", index=False)
    with pytest.raises(HarnessError, match="no target.*--target COL"):
        inspect_folder(folder, "a")
    with pytest.raises(HarnessError, match="no such folder"):
        inspect_folder(tmp_path / "nowhere", "a")


# ---------------------------------------------------------------------------- the command

def run(*args, expect=0):
    from harness.cli import cli

    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == expect, result.output
    return result


def test_harness_new_writes_the_toml_and_copies_the_data(tmp_path):
    source = bike(tmp_path / "bike-sharing-demand")
    (source / "SOURCE.md").write_text("where the files came from\n")
    workspace = tmp_path / "ws"
    out = run("--workspace", workspace, "new", "bike", "--from", source).output
    toml_path = workspace / "competitions" / "bike.toml"
    text = toml_path.read_text()
    assert text.startswith(f"# Generated by `harness new bike --from {source}`.")
    config = tomllib.loads(text)
    assert (config["name"], config["kind"], config["metric"], config["data"]["target"]) == \
        ("bike", "tabular", "rmsle", "count")
    assert sorted(p.name for p in (workspace / "data" / "bike").iterdir()) == \
        ["SOURCE.md", "sampleSubmission.csv", "test.csv", "train.csv"]
    assert (workspace / "data" / "bike" / "train.csv").read_bytes() == (source / "train.csv").read_bytes()
    assert "train.csv" in out and "sample submission" in out and "drop: casual, registered" in out
    assert "harness train bike" in out and "harness train bike --folds 5" in out
    # a second time needs --force
    again = run("--workspace", workspace, "new", "bike", "--from", source, expect=2)
    assert "already exists; pass --force" in again.output
    run("--workspace", workspace, "new", "bike", "--from", source, "--metric", "rmse", "--force")
    assert tomllib.loads(toml_path.read_text())["metric"] == "rmse"
    listed = run("--workspace", workspace, "list").output
    if not any(line.split()[:1] == ["bike"] for line in listed.splitlines()):
        pytest.skip("harness list does not show TOML competitions yet (the tabular kind is not wired)")
    assert "bike-sharing-demand" in listed


def test_harness_new_refuses_bad_names_and_ambiguous_files_writing_nothing(tmp_path):
    workspace = tmp_path / "ws"
    source = titanic(tmp_path / "t")
    assert "letters, digits" in run("--workspace", workspace, "new", "my comp", "--from", source, expect=2).output
    assert "letters, digits" in run("--workspace", workspace, "new", "../up", "--from", source, expect=2).output
    assert "built-in" in run("--workspace", workspace, "new", "rossmann", "--from", source, expect=2).output
    pd.read_csv(source / "gender_submission.csv").to_csv(source / "sample_submission.csv", index=False)
    out = run("--workspace", workspace, "new", "t", "--from", source, expect=2).output
    assert out.startswith("error:") and "--sample" in out and len(out.strip().splitlines()) == 1
    assert not (workspace / "competitions" / "t.toml").exists() and not (workspace / "data" / "t").exists()
    run("--workspace", workspace, "new", "t", "--from", source, "--sample", "gender_submission.csv",
        "--target", "Survived", "--id", "PassengerId", "--metric", "accuracy")
    config = tomllib.loads((workspace / "competitions" / "t.toml").read_text())
    assert config["submission"]["format"] == "labels" and config["data"]["sample_submission"] == "gender_submission.csv"


def test_a_competition_name_taken_twice_is_one_warning_naming_both_files(tmp_path):
    workspace = tmp_path / "ws"
    run("--workspace", workspace, "new", "t", "--from", titanic(tmp_path / "t"), "--sample", "gender_submission.csv",
        "--target", "Survived", "--id", "PassengerId", "--metric", "accuracy")
    first = workspace / "competitions" / "t.toml"
    copy = first.with_name("t_copy.toml")
    copy.write_text(first.read_text())  # still name = "t"
    builtin_name = first.with_name("my_movielens.toml")
    builtin_name.write_text(first.read_text().replace('name = "t"', 'name = "movielens"'))
    err = run("--workspace", workspace, "list").stderr
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 2, err
    assert f"competition 't' is registered by both plugin 'kinds' ({first}) and plugin 'kinds' ({copy})" in err
    assert "competition 'movielens' is registered by both plugin 'movielens' (" in err
    assert f"and plugin 'kinds' ({builtin_name}); using the first" in err
