"""The sample submission decides the format: finding it whatever it is called, reading its format
(values, labels, probabilities, one probability per class), building a submission that is exactly the
sample's frame, and checking one against it."""
import gzip
import zipfile

import numpy as np
import pandas as pd
import pytest

from harness.errors import HarnessError
from harness.scoring.sample import (SampleFormat, build_submission, check_against_sample, encode_labels,
                                    find_sample, read_format, read_sample, target_classes)

BIKE_SAMPLE = pd.DataFrame({"datetime": [f"2011-01-20 0{h}:00:00" for h in range(4)], "count": 0})
AMAZON_SAMPLE = pd.DataFrame({"Id": [1, 2, 3, 4], "Action": 0})
TITANIC_SAMPLE = pd.DataFrame({"PassengerId": [892, 893, 894, 895], "Survived": [0, 1, 0, 0]})
OTTO_SAMPLE = pd.DataFrame({"id": [1, 2, 3], "Class_1": 1, "Class_2": 0, "Class_3": 0})
OTTO_TARGET = pd.Series(["Class_2", "Class_1", "Class_3", "Class_1"])


# ---------------------------------------------------------------------------- finding it

@pytest.mark.parametrize("name", ["sample_submission.csv", "sampleSubmission.csv", "gender_submission.csv",
                                  "sampleEntry.csv", "sample_submission.csv.gz", "sampleSubmission.csv.zip"])
def test_the_sample_is_found_whatever_it_is_called(tmp_path, name):
    (tmp_path / "train.csv").write_text("id,y\n1,2\n")
    (tmp_path / "test.csv").write_text("id\n3\n")
    text = "id,y\n3,0\n"
    path = tmp_path / name
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    elif name.endswith(".zip"):
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("sample_submission.csv", text)
    else:
        path.write_text(text)
    assert find_sample(tmp_path) == path
    assert read_sample(path).to_dict("list") == {"id": [3], "y": [0]}


def test_no_sample_is_none_and_a_declared_one_wins(tmp_path):
    (tmp_path / "train.csv").write_text("id,y\n1,2\n")
    assert find_sample(tmp_path) is None
    (tmp_path / "entry.csv").write_text("id,y\n1,0\n")
    (tmp_path / "sample_submission.csv").write_text("id,y\n1,0\n")
    (tmp_path / "my_submission.csv").write_text("id,y\n1,0\n")
    assert find_sample(tmp_path, "entry.csv") == tmp_path / "entry.csv"
    with pytest.raises(HarnessError, match="no such file"):
        find_sample(tmp_path, "nope.csv")


def test_several_candidates_are_an_error_listing_them(tmp_path):
    (tmp_path / "sample_submission.csv").write_text("id,y\n1,0\n")
    (tmp_path / "gender_submission.csv").write_text("id,y\n1,0\n")
    with pytest.raises(HarnessError) as info:
        find_sample(tmp_path)
    message = str(info.value)
    assert "gender_submission.csv" in message and "sample_submission.csv" in message and "--sample" in message
    assert "\n" not in message


# ---------------------------------------------------------------------------- reading the format

def test_one_value_column_is_values_kept_nonnegative():
    fmt = read_format(BIKE_SAMPLE, pd.Series([16, 40, 0, 977]), task="regression", metric="rmsle")
    assert (fmt.format, fmt.id_column, fmt.columns, fmt.nonnegative) == ("values", "datetime", ["count"], True)
    assert not read_format(BIKE_SAMPLE, pd.Series([-1.5, 2.0, 3.25]), metric="rmse").nonnegative


def test_a_probability_metric_makes_the_binary_column_p_positive():
    fmt = read_format(AMAZON_SAMPLE, pd.Series([1, 0, 1, 1]), task="binary", metric="roc_auc")
    assert (fmt.format, fmt.id_column, fmt.columns, fmt.positive) == ("probabilities", "Id", ["Action"], "")
    fmt = read_format(AMAZON_SAMPLE, pd.Series(["no", "yes", "yes"]), task="binary", metric="log_loss")
    assert fmt.positive == "yes"


def test_a_label_metric_makes_labels_in_the_target_values():
    fmt = read_format(TITANIC_SAMPLE, pd.Series([0, 1, 1, 0]), task="binary", metric="accuracy")
    assert (fmt.format, fmt.columns, fmt.classes, fmt.positive) == ("labels", ["Survived"], [0, 1], "")
    colours = pd.DataFrame({"id": [1, 2], "colour": ["red", "red"]})
    fmt = read_format(colours, pd.Series(["red", "green", "blue", "red"]), metric="f1")
    assert (fmt.format, fmt.classes) == ("labels", ["blue", "green", "red"])


def test_without_a_metric_the_samples_values_say_labels_or_probabilities():
    probabilities = pd.DataFrame({"id": [1, 2], "p": [0.5, 0.25]})
    assert read_format(probabilities, pd.Series([0, 1]), task="binary").format == "probabilities"
    assert read_format(TITANIC_SAMPLE, pd.Series([0, 1]), task="binary").format == "labels"


def test_columns_that_are_the_targets_values_are_class_probabilities():
    fmt = read_format(OTTO_SAMPLE, OTTO_TARGET, metric="log_loss")
    assert (fmt.format, fmt.columns, fmt.classes) == ("class_probabilities", ["Class_1", "Class_2", "Class_3"],
                                                      ["Class_1", "Class_2", "Class_3"])
    # compared as text, ignoring case when nothing matches exactly: the classes stay the target's values
    lower = OTTO_SAMPLE.rename(columns=str.lower)
    fmt = read_format(lower, OTTO_TARGET)
    assert (fmt.columns, fmt.classes) == (["class_1", "class_2", "class_3"], ["Class_1", "Class_2", "Class_3"])
    numbers = pd.DataFrame({"id": [1], "0": 0.2, "1": 0.3, "2": 0.5})
    assert read_format(numbers, pd.Series([2.0, 1.0, 0.0])).classes == [0.0, 1.0, 2.0]


def test_columns_that_are_not_the_targets_values_are_an_error():
    with pytest.raises(HarnessError, match="not the target's values"):
        read_format(OTTO_SAMPLE, pd.Series(["Class_1", "Class_2", "Class_9"]))
    with pytest.raises(HarnessError, match="one probability column per class"):
        read_format(TITANIC_SAMPLE, pd.Series(["a", "b", "c"]), task="multiclass", metric="log_loss")
    with pytest.raises(HarnessError, match="no id column"):
        read_format(TITANIC_SAMPLE, id_column="Id")


def test_the_format_round_trips_through_its_toml_table():
    fmt = read_format(TITANIC_SAMPLE, pd.Series([0, 1]), task="binary", metric="accuracy")
    table = fmt.to_config()
    assert table == {"format": "labels", "columns": ["Survived"], "id_column": "PassengerId", "classes": ["0", "1"],
                     "positive": "", "nonnegative": False}
    assert SampleFormat.from_config(table).to_config() == table
    with pytest.raises(HarnessError, match="unknown key"):
        SampleFormat.from_config({**table, "colour": "red"})
    with pytest.raises(HarnessError, match="format"):
        SampleFormat("id", ["y"], "ranks")


def test_target_classes_give_the_label_order_the_sample_needs():
    binary = SampleFormat("id", ["y"], "probabilities", positive="yes")
    assert target_classes(binary, ["yes", "no", "yes"]) == ["no", "yes"]
    assert target_classes(SampleFormat("id", ["y"], "labels", classes=[0, 1]), [1, 0]) == [0, 1]
    otto = SampleFormat("id", ["Class_2", "Class_1"], "class_probabilities", classes=["Class_2", "Class_1"])
    assert target_classes(otto, ["Class_1", "Class_2"]) == ["Class_2", "Class_1"]
    with pytest.raises(HarnessError, match="Class_3"):
        target_classes(otto, ["Class_1", "Class_3"])
    with pytest.raises(HarnessError, match="positive"):
        target_classes(SampleFormat("id", ["y"], "probabilities", positive="maybe"), ["yes", "no"])
    assert encode_labels(["yes", "no"], ["no", "yes"]).tolist() == [1, 0]
    with pytest.raises(HarnessError, match="'maybe'"):
        encode_labels(["maybe"], ["no", "yes"])


# ---------------------------------------------------------------------------- building and checking

def test_values_follow_the_samples_id_order_and_are_clipped_at_zero():
    fmt = read_format(BIKE_SAMPLE, pd.Series([3, 5]), metric="rmsle")
    ids = list(BIKE_SAMPLE["datetime"])[::-1]
    sub = build_submission(fmt, BIKE_SAMPLE, ids, np.array([4.0, 3.0, -2.0, 1.5]), given="values")
    assert list(sub.columns) == ["datetime", "count"]
    assert sub["datetime"].tolist() == BIKE_SAMPLE["datetime"].tolist()
    assert sub["count"].tolist() == [1.5, 0.0, 3.0, 4.0]
    check_against_sample(sub, BIKE_SAMPLE, fmt)
    # test ids parsed as dates still match the sample's text
    stamps = pd.to_datetime(BIKE_SAMPLE["datetime"])
    assert build_submission(fmt, BIKE_SAMPLE, stamps, np.arange(4.0))["count"].tolist() == [0, 1, 2, 3]


def test_a_test_id_missing_extra_or_repeated_is_an_error():
    fmt = read_format(BIKE_SAMPLE, pd.Series([3, 5]), metric="rmse")
    ids = list(BIKE_SAMPLE["datetime"])
    with pytest.raises(HarnessError, match="1 id.*no prediction"):
        build_submission(fmt, BIKE_SAMPLE, ids[:3], np.zeros(3))
    with pytest.raises(HarnessError, match="not in the sample"):
        build_submission(fmt, BIKE_SAMPLE, ids + ["2012-01-01 00:00:00"], np.zeros(5))
    with pytest.raises(HarnessError, match="more than once"):
        build_submission(fmt, BIKE_SAMPLE, ids[:3] + ids[:1], np.zeros(4))


def test_probabilities_from_logits_or_clipped_into_0_1():
    fmt = read_format(AMAZON_SAMPLE, pd.Series([0, 1]), task="binary", metric="roc_auc")
    sub = build_submission(fmt, AMAZON_SAMPLE, [4, 3, 2, 1], np.array([0.0, 100.0, -100.0, 2.0]))
    assert list(sub.columns) == ["Id", "Action"]
    assert np.allclose(sub["Action"], [1 / (1 + np.exp(-2)), 0.0, 1.0, 0.5])
    check_against_sample(sub, AMAZON_SAMPLE, fmt)
    clipped = build_submission(fmt, AMAZON_SAMPLE, [1, 2, 3, 4], np.array([1.2, -0.1, 0.5, 1]), given="probabilities")
    assert clipped["Action"].tolist() == [1.0, 0.0, 0.5, 1.0]


def test_labels_map_back_to_the_targets_values():
    fmt = read_format(TITANIC_SAMPLE, pd.Series([0, 1]), task="binary", metric="accuracy")
    ids = TITANIC_SAMPLE["PassengerId"].tolist()
    sub = build_submission(fmt, TITANIC_SAMPLE, ids, np.array([2.0, -2.0, 0.1, -0.1]))
    assert sub["Survived"].tolist() == [1, 0, 1, 0] and sub["Survived"].dtype.kind == "i"
    check_against_sample(sub, TITANIC_SAMPLE, fmt)
    # a threshold chosen on out-of-fold predictions
    high = build_submission(fmt, TITANIC_SAMPLE, ids, np.array([0.9, 0.2, 0.6, 0.4]), given="probabilities",
                            threshold=0.7)
    assert high["Survived"].tolist() == [1, 0, 0, 0]
    words = pd.DataFrame({"id": [1, 2, 3], "answer": ["no", "no", "no"]})
    fmt = read_format(words, pd.Series(["yes", "no"]), task="binary", metric="accuracy")
    sub = build_submission(fmt, words, [3, 1, 2], np.array([1, 0, 1]), given="labels")
    assert sub["answer"].tolist() == ["no", "yes", "yes"]
    check_against_sample(sub, words, fmt)


def test_class_probabilities_follow_the_samples_columns_and_sum_to_one():
    sample = OTTO_SAMPLE[["id", "Class_3", "Class_1", "Class_2"]]
    fmt = read_format(sample, OTTO_TARGET, metric="log_loss")
    model_classes = ["Class_1", "Class_2", "Class_3"]  # the model's output order
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.2, 0.2, 0.2]])
    sub = build_submission(fmt, sample, [1, 2, 3], p, given="probabilities", classes=model_classes)
    assert list(sub.columns) == ["id", "Class_3", "Class_1", "Class_2"]
    assert np.allclose(sub.iloc[0, 1:].to_numpy(float), [0.1, 0.7, 0.2])
    assert np.allclose(sub.iloc[2, 1:].to_numpy(float), [1 / 3] * 3)
    check_against_sample(sub, sample, fmt)
    logits = build_submission(fmt, sample, [1, 2, 3], np.log(p), classes=model_classes)
    assert np.allclose(logits.iloc[:, 1:].to_numpy(float).sum(axis=1), 1.0)


def test_check_against_sample_refuses_what_the_format_forbids():
    labels = read_format(TITANIC_SAMPLE, pd.Series([0, 1]), task="binary", metric="accuracy")
    with pytest.raises(HarnessError, match="not a label.*first 2"):
        check_against_sample(TITANIC_SAMPLE.assign(Survived=[0, 2, 1, 0]), TITANIC_SAMPLE, labels)
    probabilities = read_format(AMAZON_SAMPLE, pd.Series([0, 1]), task="binary", metric="roc_auc")
    with pytest.raises(HarnessError, match=r"\[0.0, 1.0\]"):
        check_against_sample(AMAZON_SAMPLE.assign(Action=[0.1, 1.5, 0, 0]), AMAZON_SAMPLE, probabilities)
    classes = read_format(OTTO_SAMPLE, OTTO_TARGET)
    with pytest.raises(HarnessError, match="sum to 1"):
        check_against_sample(OTTO_SAMPLE.assign(Class_2=0.5), OTTO_SAMPLE, classes)
    values = read_format(BIKE_SAMPLE, pd.Series([1, 2]), metric="rmse")
    with pytest.raises(HarnessError, match="negative"):
        check_against_sample(BIKE_SAMPLE.assign(count=[1.0, -1.0, 0, 0]), BIKE_SAMPLE, values)
    with pytest.raises(HarnessError, match="columns"):
        check_against_sample(BIKE_SAMPLE[["count", "datetime"]], BIKE_SAMPLE, values)
    with pytest.raises(HarnessError, match="missing"):
        check_against_sample(BIKE_SAMPLE.iloc[:3], BIKE_SAMPLE, values)


def test_a_sample_without_ids_is_matched_by_row_order():
    sample = pd.DataFrame({"y": [0.0, 0.0, 0.0]})
    fmt = read_format(sample, pd.Series([1.5, 2.5]), metric="rmse", id_column="")
    assert (fmt.id_column, fmt.columns) == ("", ["y"])
    sub = build_submission(fmt, sample, None, np.array([1.0, 2.0, 3.0]))
    assert sub["y"].tolist() == [1.0, 2.0, 3.0]
    check_against_sample(sub, sample, fmt)
    with pytest.raises(HarnessError, match="2 rows"):
        check_against_sample(sub.iloc[:2], sample, fmt)
    with pytest.raises(HarnessError, match="2 prediction rows"):
        build_submission(fmt, sample, None, np.array([1.0, 2.0]))
