"""IMDB's bad input, every file it reads in each of its layouts, through the CLI: one `error:` line
that names the file (and column or row), exit code 2, no traceback."""
import gzip
import pickle

import pandas as pd
import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness_plugins.imdb.sample import write_aclimdb, write_kaggle

NBSVM = ["--set", 'model.kind="nbsvm"', "--set", "nbsvm.n_features=4096"]


def train(data_dir, *extra):
    return CliRunner().invoke(cli, ["train", "imdb", "--data-dir", str(data_dir), *NBSVM, *map(str, extra)])


def assert_error(result, *names):
    """Exit 2 and one error line that names every one of ``names``; no traceback."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    for name in names:
        assert str(name) in errors[0], errors[0]
    return errors[0]


@pytest.fixture
def acl(tmp_path, workspace):
    write_aclimdb(tmp_path / "acl", seed=0, n_train=40, n_test=20, n_unsup=4)
    return tmp_path / "acl" / "aclImdb"


@pytest.fixture
def kaggle(tmp_path, workspace):
    write_kaggle(tmp_path / "kaggle", seed=0, n_train=40, n_test=20, n_unsup=4)
    return tmp_path / "kaggle"


@pytest.fixture
def parts(tmp_path, workspace):
    rows = [("train", "pos" if i % 2 else "neg", i, 8 if i % 2 else 2, f"Review {i} was fine.") for i in range(20)]
    rows += [("test", "neg", i, 1, f"Test review {i}.") for i in range(6)]
    frame = pd.DataFrame(rows, columns=["split", "label", "id", "rating", "text"])
    folder = tmp_path / "parts"
    folder.mkdir()
    for split in ("train", "test"):
        with gzip.open(folder / f"{split}-00-of-01.csv.gz", "wt") as f:
            frame[frame.split == split].to_csv(f, index=False)
    return folder


def write_part(path, frame):
    with gzip.open(path, "wt") as f:
        frame.to_csv(f, index=False)


# ---------------------------------------------------------------------- aclImdb folders
def test_acl_review_file_that_is_a_directory(acl):
    review = next((acl / "train" / "pos").glob("*.txt"))
    review.unlink()
    review.mkdir()
    assert_error(train(acl.parent), review, "a directory")


def test_acl_label_folder_that_is_a_file(acl):
    neg = acl / "train" / "neg"
    for f in neg.iterdir():
        f.unlink()
    neg.rmdir()
    neg.write_text("not a folder")
    assert_error(train(acl.parent), neg, "is a file")


def test_acl_unsup_that_is_a_file(acl):
    unsup = acl / "train" / "unsup"
    for f in unsup.iterdir():
        f.unlink()
    unsup.rmdir()
    unsup.write_text("")
    assert_error(train(acl.parent), unsup, "is a file")


def test_acl_test_split_without_its_neg_folder(acl):
    neg = acl / "test" / "neg"
    for f in neg.iterdir():
        f.unlink()
    neg.rmdir()
    assert_error(train(acl.parent), neg, "is missing")


def test_acl_every_training_review_blank(acl):
    for label in ("pos", "neg"):
        for f in (acl / "train" / label).glob("*.txt"):
            f.write_text("  \n")
    assert_error(train(acl.parent), acl, "every training review is blank")


def test_acl_one_blank_review_is_skipped_with_a_count_not_an_error(acl):
    next((acl / "train" / "pos").glob("*.txt")).write_text("")
    result = train(acl.parent)
    assert result.exit_code == 0, result.output
    assert "1 empty training review(s) skipped" in result.output


def test_acl_train_folder_with_no_reviews(acl):
    for label in ("pos", "neg"):
        for f in (acl / "train" / label).glob("*.txt"):
            f.unlink()
    assert_error(train(acl.parent), acl / "train", "no .txt reviews")


# ---------------------------------------------------------------------- Kaggle TSVs
def test_kaggle_labelled_file_that_is_a_directory(kaggle):
    path = kaggle / "labeledTrainData.tsv"
    path.unlink()
    path.mkdir()
    assert_error(train(kaggle), path, "a directory")


@pytest.mark.parametrize("name", ["labeledTrainData.tsv", "testData.tsv", "unlabeledTrainData.tsv"])
def test_kaggle_empty_file(kaggle, name):
    (kaggle / name).write_bytes(b"")
    assert_error(train(kaggle), kaggle / name, "empty")


@pytest.mark.parametrize("name", ["testData.tsv", "unlabeledTrainData.tsv"])
def test_kaggle_optional_file_that_is_a_directory(kaggle, name):
    (kaggle / name).unlink()
    (kaggle / name).mkdir()
    assert_error(train(kaggle), kaggle / name, "a directory")


def test_kaggle_sentiment_column_with_words_instead_of_0_and_1(kaggle):
    path = kaggle / "labeledTrainData.tsv"
    lines = path.read_text().splitlines()
    head, rest = lines[0], [line.replace("\t1\t", "\tpositive\t", 1) for line in lines[1:]]
    path.write_text("\n".join([head, *rest]) + "\n")
    assert_error(train(kaggle), path, "column sentiment must be 0 or 1", "'positive'", "data row")


def test_kaggle_review_column_missing(kaggle):
    path = kaggle / "testData.tsv"
    path.write_text(path.read_text().replace("id\treview", "id\ttext", 1))
    assert_error(train(kaggle), path, "missing column", "review")


def test_kaggle_every_review_blank(kaggle):
    path = kaggle / "labeledTrainData.tsv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], *["\t".join(line.split("\t")[:2] + ['""']) for line in lines[1:]]]) + "\n")
    assert_error(train(kaggle), kaggle, "every training review is blank", "labeledTrainData.tsv")


def test_kaggle_blank_test_id(kaggle):
    path = kaggle / "testData.tsv"
    lines = path.read_text().splitlines()
    lines[3] = '""\t' + lines[3].split("\t", 1)[1]
    path.write_text("\n".join(lines) + "\n")
    assert_error(train(kaggle), path, "column id is blank at data row 3")


# ---------------------------------------------------------------------- gzipped CSV parts
def test_parts_truncated_gz(parts):
    path = parts / "train-00-of-01.csv.gz"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert_error(train(parts), path, "truncated or damaged")


def test_parts_gz_that_is_a_directory(parts):
    path = parts / "test-00-of-01.csv.gz"
    path.unlink()
    path.mkdir()
    assert_error(train(parts), path, "a directory")


def test_parts_empty_gz(parts):
    path = parts / "test-00-of-01.csv.gz"
    path.write_bytes(b"")
    assert_error(train(parts), path, "empty")


def test_parts_label_column_with_numbers_instead_of_pos_and_neg(parts):
    path = parts / "train-00-of-01.csv.gz"
    frame = pd.read_csv(path)
    frame["label"] = frame["label"].map({"pos": 1, "neg": 0})
    write_part(path, frame)
    assert_error(train(parts), path, "column label must be pos or neg", "data row 1")


def test_parts_text_column_missing(parts):
    path = parts / "train-00-of-01.csv.gz"
    write_part(path, pd.read_csv(path).drop(columns="text"))
    assert_error(train(parts), path, "missing column", "text")


def test_parts_every_text_blank(parts):
    path = parts / "train-00-of-01.csv.gz"
    write_part(path, pd.read_csv(path).assign(text=""))
    assert_error(train(parts), parts, "every training review is blank", "column text")


# ---------------------------------------------------------------------- pretrained language model
def test_pretrained_path_that_is_a_directory(acl, tmp_path):
    (tmp_path / "wt103").mkdir()
    result = train(acl.parent, "--set", 'model.kind="awd-lstm"', "--set", f'lm.pretrained="{tmp_path / "wt103"}"')
    assert_error(result, tmp_path / "wt103", "a directory")


def test_pretrained_empty_file(acl, tmp_path):
    (tmp_path / "lstm_wt103.pth").write_bytes(b"")
    result = train(acl.parent, "--set", 'model.kind="awd-lstm"', "--set", f'lm.pretrained="{tmp_path / "lstm_wt103.pth"}"')
    assert_error(result, tmp_path / "lstm_wt103.pth", "empty")


def test_pretrained_itos_that_is_not_a_list_of_strings(acl, tmp_path):
    (tmp_path / "lstm_wt103.pth").write_bytes(b"weights")
    (tmp_path / "itos.pkl").write_bytes(pickle.dumps([1, 2, 3]))
    result = train(acl.parent, "--set", 'model.kind="awd-lstm"', "--set", f'lm.pretrained="{tmp_path / "lstm_wt103.pth"}"',
                   "--set", f'lm.pretrained_itos="{tmp_path / "itos.pkl"}"')
    assert_error(result, tmp_path / "itos.pkl", "list of strings")


def test_pretrained_file_torch_cannot_read(acl, tmp_path):
    (tmp_path / "lstm_wt103.pth").write_bytes(b"not a torch file")
    result = train(acl.parent, "--set", 'model.kind="awd-lstm"', "--set", f'lm.pretrained="{tmp_path / "lstm_wt103.pth"}"',
                   "--set", "model.emb_sz=8", "--set", "model.n_hid=8", "--set", "model.n_layers=1",
                   "--set", "lm.bs=4")
    assert_error(result, tmp_path / "lstm_wt103.pth", "not a language model file")


# ---------------------------------------------------------------------- batch sizes
def test_classifier_batch_size_larger_than_the_training_reviews(acl):
    result = train(acl.parent, "--set", 'model.kind="awd-lstm"', "--set", "train.batch_size=500")
    assert_error(result, "train.batch_size = 500", "36 training reviews")


# ---------------------------------------------------------------------- generate's options
@pytest.mark.parametrize("args, expected", [
    (["--temperature", "nan"], "--temperature nan: give a finite number of 0 or more"),
    (["--temperature", "inf"], "--temperature inf: give a finite number of 0 or more"),
    (["--temperature", "-1"], "--temperature -1: give a finite number of 0 or more"),
    (["--top-k", "-3"], "--top-k -3: give a whole number of 0 or more"),
    (["--seed", "-1"], "--seed -1: give a whole number from 0 to 4294967295"),
    (["--seed", "99999999999999999999"], "--seed 99999999999999999999: give a whole number from 0 to 4294967295"),
    (["--words", "0"], "--words 0: give a whole number from 1 to 10000"),
    (["--words", "10001"], "--words 10001: give a whole number from 1 to 10000"),
])
def test_generate_options_out_of_range_are_one_error_line_before_any_run_is_read(workspace, args, expected):
    # No run exists: the options are refused as they are parsed, before the run is looked up.
    result = CliRunner().invoke(cli, ["generate", "imdb", "--prompt", "This movie", *args])
    assert assert_error(result) == f"error: {expected}"
    assert "Usage:" not in result.output
    assert not (workspace / "runs").exists()
