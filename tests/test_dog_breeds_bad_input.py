"""Bad input for dog breeds, file by file: each is one `error:` line naming the file (and row or
column) and what to do, exit code 2, no traceback, and no run folder left behind."""
from __future__ import annotations

import re
import shutil

import pandas as pd
import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness_plugins.dog_breeds import DogBreeds


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("dogs")
    DogBreeds().write_sample(path, seed=2, n_breeds=3, n_per_breed=6, n_test=4, size=32)
    return path


@pytest.fixture
def dogs(sample_dir, tmp_path):
    path = tmp_path / "dogs"
    shutil.copytree(sample_dir, path)
    return path


@pytest.fixture
def train_fails(dogs, tmp_path, monkeypatch):
    """Run `harness train dog-breeds` on the damaged copy; check the answer's form; return its message."""
    workspace = tmp_path / "ws"
    monkeypatch.setenv("HARNESS_WORKSPACE", str(workspace))  # the CLI sets it; restored after the test

    def run() -> str:
        result = CliRunner().invoke(cli, ["--workspace", str(workspace), "train", "dog-breeds", "--data-dir",
                                          str(dogs), "--no-pretrained", "--set", "data.image_size=32",
                                          "--set", "train.batch_size=4"])
        assert result.exit_code == 2, result.output
        out = result.output
        assert out.startswith("error: ") and out.count("\n") == 1 and "Traceback" not in out, out
        runs = workspace / "runs" / "dog-breeds"
        assert not runs.exists() or not any(runs.iterdir()), "a run folder was left behind"
        return out.removeprefix("error: ").strip()

    return run


def labels(dogs) -> pd.DataFrame:
    return pd.read_csv(dogs / "labels.csv", dtype=str)


def sample(dogs) -> pd.DataFrame:
    return pd.read_csv(dogs / "sample_submission.csv", dtype={"id": str})


# ---------------------------------------------------------------------- labels.csv
def test_labels_csv_is_a_directory(dogs, train_fails):
    (dogs / "labels.csv").unlink()
    (dogs / "labels.csv").mkdir()
    assert train_fails() == f"{dogs / 'labels.csv'} is a directory; the competition expects a CSV file (id,breed) there"


def test_labels_csv_is_empty(dogs, train_fails):
    (dogs / "labels.csv").write_bytes(b"")
    assert train_fails() == f"{dogs / 'labels.csv'} is empty"


def test_labels_csv_with_a_header_only(dogs, train_fails):
    (dogs / "labels.csv").write_text("id,breed\n")
    assert train_fails() == f"{dogs / 'labels.csv'} has no data rows"


def test_labels_csv_cut_after_an_id(dogs, train_fails):
    text = (dogs / "labels.csv").read_text()
    (dogs / "labels.csv").write_text(text[:text.rindex(",") + 1])  # the last row lost its breed
    message = train_fails()
    assert message.startswith(f"{dogs / 'labels.csv'}: 1 row(s) without a breed, first at data row 18")
    assert "looks truncated; copy it again" in message


def test_labels_csv_cut_inside_the_last_breed(dogs, train_fails):
    text = (dogs / "labels.csv").read_text().rstrip("\n")
    (dogs / "labels.csv").write_text(text[:-2])  # "beagle" -> "beag"
    message = train_fails()
    assert message.startswith(f"{dogs / 'labels.csv'}: the last row's breed ")
    assert "looks truncated; copy it again" in message


def test_labels_csv_cut_inside_the_last_id(dogs, train_fails):
    text = (dogs / "labels.csv").read_text()
    last = text.rstrip("\n").rsplit("\n", 1)[1]
    (dogs / "labels.csv").write_text(text[:text.rindex(last) + 10])
    message = train_fails()
    assert message.startswith(f"{dogs / 'labels.csv'}: 1 row(s) without a breed, first at data row 18")
    assert "looks truncated" in message


def test_labels_csv_without_the_breed_column(dogs, train_fails):
    labels(dogs).rename(columns={"breed": "dog"}).to_csv(dogs / "labels.csv", index=False)
    assert train_fails() == f"{dogs / 'labels.csv'} is missing column(s) breed; found: id, dog"


def test_labels_csv_with_a_duplicate_id(dogs, train_fails):
    frame = labels(dogs)
    pd.concat([frame, frame.iloc[[3]]]).to_csv(dogs / "labels.csv", index=False)
    message = train_fails()
    assert message.startswith(f"{dogs / 'labels.csv'}: 1 duplicated (id) row(s)")
    assert frame["id"][3] in message and "keep one row per key" in message


def test_labels_csv_with_a_blank_id(dogs, train_fails):
    frame = labels(dogs)
    frame.loc[4, "id"] = ""
    frame.to_csv(dogs / "labels.csv", index=False)
    message = train_fails()
    assert message.startswith(f"{dogs / 'labels.csv'}: 1 row(s) with an empty id")
    assert "at data row 5" in message


def test_labels_csv_with_an_id_outside_train(dogs, train_fails):
    frame = labels(dogs)
    frame.loc[2, "id"] = "../labels"
    frame.to_csv(dogs / "labels.csv", index=False)
    assert "'../labels' at data row 3" in train_fails()


def test_labels_csv_with_a_blank_breed(dogs, train_fails):
    frame = labels(dogs)
    frame.loc[6, "breed"] = ""
    frame.to_csv(dogs / "labels.csv", index=False)
    assert train_fails() == (f"{dogs / 'labels.csv'}: 1 row(s) without a breed, first at data row 7; "
                             "give every image its breed")


# ---------------------------------------------------------------------- train/<id>.jpg
def test_train_is_a_file(dogs, train_fails):
    shutil.rmtree(dogs / "train")
    (dogs / "train").write_text("not a folder")
    assert train_fails() == f"{dogs / 'train'} is a file; dog-breeds expects a folder of <id>.jpg images there"


def test_id_with_no_image(dogs, train_fails):
    image_id = labels(dogs)["id"][5]
    (dogs / "train" / f"{image_id}.jpg").unlink()
    assert train_fails() == (f"1 image(s) listed in labels.csv are missing from {dogs / 'train'}, first "
                             f"{image_id}.jpg; copy Kaggle's images there")


def test_train_image_is_a_directory(dogs, train_fails):
    image = dogs / "train" / f"{labels(dogs)['id'][1]}.jpg"
    image.unlink()
    image.mkdir()
    assert train_fails() == (f"{image} is a folder where an image should be (1 such in {dogs / 'train'}); "
                             "replace it with the JPEG file")


def test_train_image_is_empty(dogs, train_fails):
    image = dogs / "train" / f"{labels(dogs)['id'][1]}.jpg"
    image.write_bytes(b"")
    message = train_fails()
    assert message.startswith(f"{image}: cannot decode this image") and "corrupt_images" in message


def test_train_image_is_truncated(dogs, train_fails):
    image = dogs / "train" / f"{labels(dogs)['id'][2]}.jpg"
    image.write_bytes(image.read_bytes()[:150])
    assert train_fails().startswith(f"{image}: cannot decode this image")


# ---------------------------------------------------------------------- test/
def test_test_is_a_file(dogs, train_fails):
    shutil.rmtree(dogs / "test")
    (dogs / "test").write_text("not a folder")
    assert train_fails() == f"{dogs / 'test'} is a file; dog-breeds expects a folder of <id>.jpg images there"


def test_test_image_listed_in_the_sample_is_missing(dogs, train_fails):
    image_id = sample(dogs)["id"][2]
    (dogs / "test" / f"{image_id}.jpg").unlink()
    assert train_fails() == (f"1 image(s) listed in sample_submission.csv are missing from {dogs / 'test'}, "
                             f"first {image_id}.jpg; copy Kaggle's images there")


def test_test_image_is_a_directory(dogs, train_fails):
    image = dogs / "test" / f"{sample(dogs)['id'][0]}.jpg"
    image.unlink()
    image.mkdir()
    assert train_fails().startswith(f"{image} is a folder where an image should be")


def test_test_image_is_empty(dogs, train_fails):
    image = dogs / "test" / f"{sample(dogs)['id'][3]}.jpg"
    image.write_bytes(b"")
    assert train_fails().startswith(f"{image}: cannot decode this image")


# ---------------------------------------------------------------------- sample_submission.csv
def test_sample_submission_is_a_directory(dogs, train_fails):
    (dogs / "sample_submission.csv").unlink()
    (dogs / "sample_submission.csv").mkdir()
    assert train_fails() == (f"{dogs / 'sample_submission.csv'} is a directory; the competition expects "
                             "a CSV file there")


def test_sample_submission_is_empty(dogs, train_fails):
    (dogs / "sample_submission.csv").write_bytes(b"")
    assert train_fails() == f"{dogs / 'sample_submission.csv'} is empty"


def test_sample_submission_cut_inside_a_row(dogs, train_fails):
    text = (dogs / "sample_submission.csv").read_text()
    (dogs / "sample_submission.csv").write_text(text[:text.rindex(",")])  # the last row lost a column
    message = train_fails()
    assert re.match(rf"{re.escape(str(dogs / 'sample_submission.csv'))}: column \w+ has 1 non-numeric or "
                    r"empty value\(s\), first nan at data row 4$", message), message


def test_sample_submission_without_a_breed_column(dogs, train_fails):
    frame = sample(dogs)
    frame.drop(columns=[frame.columns[2]]).to_csv(dogs / "sample_submission.csv", index=False)
    message = train_fails()
    assert message.startswith(f"{dogs / 'sample_submission.csv'}: its columns should be id then the 3 breeds")
    assert f"missing ['{frame.columns[2]}'], unknown []" in message


def test_sample_submission_with_an_unknown_breed(dogs, train_fails):
    sample(dogs).assign(corgi=0.0).to_csv(dogs / "sample_submission.csv", index=False)
    assert "missing [], unknown ['corgi']" in train_fails()


def test_sample_submission_with_breeds_out_of_order(dogs, train_fails):
    frame = sample(dogs)
    breeds = list(frame.columns[1:])
    frame[["id", *reversed(breeds)]].to_csv(dogs / "sample_submission.csv", index=False)
    message = train_fails()
    assert f"in sorted order; column 2 is {breeds[-1]!r} where {breeds[0]!r} belongs" in message
    assert "missing []" not in message


def test_sample_submission_with_a_duplicate_id(dogs, train_fails):
    frame = sample(dogs)
    pd.concat([frame, frame.iloc[[1]]]).to_csv(dogs / "sample_submission.csv", index=False)
    assert train_fails().startswith(f"{dogs / 'sample_submission.csv'}: 1 duplicated (id) row(s)")


def test_sample_submission_without_the_id_column(dogs, train_fails):
    sample(dogs).rename(columns={"id": "image"}).to_csv(dogs / "sample_submission.csv", index=False)
    assert train_fails().startswith(f"{dogs / 'sample_submission.csv'} is missing column(s) id")
