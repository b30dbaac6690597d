"""IMDB end to end on generated reviews in the competition's own layouts, and its bad-input checks."""
import gzip
import json

import numpy as np
import pandas as pd
import pytest

from harness.errors import HarnessError
from harness_plugins.imdb import data as imdb_data
from harness_plugins.imdb.sample import write_aclimdb, write_kaggle

# A tiny AWD-LSTM and a short schedule: seconds on a CPU.
TINY = ["--set", "model.emb_sz=16", "--set", "model.n_hid=32", "--set", "model.n_layers=2", "--set", "lm.bs=8",
        "--set", "lm.bptt=20", "--set", "lm.lr=0.01", "--set", "train.batch_size=16", "--set", "model.drop_mult=0.2",
        "--set", "train.lr=0.05", "--set", "train.lr_div=1.5",
        "--set", "train.stages=[{freeze_to = -1, epochs = 1}, {freeze_to = 0, epochs = 4, lr_mult = 0.5}]"]


@pytest.fixture
def cache(workspace):
    """Token caches live in the workspace (a fresh one per test)."""
    return workspace / "cache"


@pytest.fixture
def acl(tmp_path):
    write_aclimdb(tmp_path / "acl", seed=0, n_train=300)
    return tmp_path / "acl"


# ---------------------------------------------------------------------- layouts
def test_aclimdb_layout(acl):
    data = imdb_data.load(acl)
    assert data.layout == "aclImdb" and len(data.train) == 300 and len(data.test) == 200 and len(data.unsup) == 100
    assert set(data.train["label"]) == {0, 1} and data.test["id"].is_unique
    assert "<br />" in " ".join(data.train["text"])  # raw text; the tokenizer cleans it


def test_kaggle_layout_unquotes_ids_and_reviews(tmp_path):
    write_kaggle(tmp_path, seed=1, n_train=40, n_test=20, n_unsup=10)
    data = imdb_data.load(tmp_path)
    assert data.layout == "kaggle" and len(data.train) == 40 and len(data.test) == 20 and len(data.unsup) == 10
    assert not data.train["id"].str.contains('"').any()
    assert not data.train["text"].str.startswith('"').any()
    assert (data.test["label"] == -1).all()


def test_csv_parts_layout(tmp_path):
    rows = [("train", "pos", 0, 9, "Great fun."), ("train", "neg", 0, 2, "Awful, dull."),
            ("train", "pos", 1, 8, "Loved it."), ("test", "neg", 0, 1, "Boring.")]
    frame = pd.DataFrame(rows, columns=["split", "label", "id", "rating", "text"])
    for split in ("train", "test"):
        with gzip.open(tmp_path / f"{split}-00-of-01.csv.gz", "wt") as f:
            frame[frame.split == split].to_csv(f, index=False)
    data = imdb_data.load(tmp_path)
    assert data.layout == "csv" and data.train["id"].tolist() == ["0_9", "0_2", "1_8"]
    assert data.train["label"].tolist() == [1, 0, 1] and data.test["label"].tolist() == [0]


# ---------------------------------------------------------------------- bad input
def test_missing_folder_and_unknown_layout(tmp_path, acl):
    with pytest.raises(HarnessError, match="holds no IMDB reviews"):
        imdb_data.load(tmp_path / "nothing")
    for f in (acl / "aclImdb" / "train" / "neg").iterdir():
        f.unlink()
    (acl / "aclImdb" / "train" / "neg").rmdir()
    with pytest.raises(HarnessError, match=r"train/neg is missing"):
        imdb_data.load(acl)


def test_empty_reviews_skipped_with_a_count_and_bad_bytes_replaced(acl, capsys):
    pos = acl / "aclImdb" / "train" / "pos"
    (pos / "900_9.txt").write_text("   ")
    (pos / "901_9.txt").write_text("")
    (pos / "902_8.txt").write_bytes(b"Great \xff\xfe film")
    data = imdb_data.load(acl)
    err = capsys.readouterr().err
    assert "2 empty training review(s) skipped" in err
    assert "1 review file(s) are not valid UTF-8" in err and "902_8.txt" in err
    assert len(data.train) == 301 and data.train["text"].str.contains("\ufffd").sum() == 1


def test_kaggle_bad_label_missing_column_and_duplicate_test_ids(tmp_path):
    write_kaggle(tmp_path, seed=0, n_train=20, n_test=10, n_unsup=0)
    path = tmp_path / "labeledTrainData.tsv"
    good = path.read_text()
    lines = good.splitlines()
    lines[3] = lines[3].replace("\t1\t", "\t2\t").replace("\t0\t", "\t2\t")
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(HarnessError, match=r"labeledTrainData.tsv: column sentiment must be 0 or 1; found '2'"):
        imdb_data.load(tmp_path)
    path.write_text(good.replace("id\tsentiment\treview", "id\tlabel\treview", 1))
    with pytest.raises(HarnessError, match="missing column"):
        imdb_data.load(tmp_path)
    path.write_text(good)
    test = tmp_path / "testData.tsv"
    lines = test.read_text().splitlines()
    lines.append(lines[1])
    test.write_text("\n".join(lines) + "\n")
    with pytest.raises(HarnessError, match="duplicated id"):
        imdb_data.load(tmp_path)


def test_csv_label_outside_the_set(tmp_path):
    frame = pd.DataFrame([("train", "positive", 0, 9, "Great.")], columns=["split", "label", "id", "rating", "text"])
    frame.to_csv(tmp_path / "train-00-of-01.csv", index=False)
    with pytest.raises(HarnessError, match="label must be pos or neg; found 'positive'"):
        imdb_data.load(tmp_path)


# ---------------------------------------------------------------------- end to end
def test_nbsvm_end_to_end_through_the_cli(cli_run, workspace, cache):
    cli_run("data", "imdb", "--sample")
    out = cli_run("train", "imdb", "--set", 'model.kind="nbsvm"', "--set", "nbsvm.n_features=65536").output
    run = sorted((workspace / "runs" / "imdb").iterdir())[-1]
    acc = json.loads((run / "test_metrics.json").read_text())["test_accuracy"]
    assert acc > 0.75, out  # the generated sentiment words are 80% pure: far above chance
    sub = pd.read_csv(run / "submission.csv")
    assert list(sub.columns) == ["id", "sentiment"] and len(sub) == 200 and sub["sentiment"].between(0, 1).all()
    # The fitted weights live in model.pt: predict rebuilds the same submission.
    cli_run("predict", "imdb", "--run", run.name)
    assert np.allclose(pd.read_csv(run / "submission.csv")["sentiment"], sub["sentiment"], atol=1e-6)
    result = cli_run("generate", "imdb", "--prompt", "The movie", expect=2)
    assert "no language model" in result.output


@pytest.mark.slow
def test_ulmfit_end_to_end_language_model_generation_classifier(cli_run, workspace, cache):
    write_aclimdb(workspace / "data" / "imdb", seed=0, n_train=800, n_test=200, n_unsup=0)
    # Eight unfrozen epochs, not TINY's four: at four the classifier takes off or not by the last float
    # digit (a 1-thread and a 2-thread run of the same seed landed at 0.6 and 0.9).
    long = ["--set", "train.stages=[{freeze_to = -1, epochs = 1}, {freeze_to = 0, epochs = 8, lr_mult = 0.5}]"]
    cli_run("train", "imdb", "--set", "lm.epochs=1", *TINY, *long)
    assert list(cache.glob("tokens/*.npz"))  # tokenized reviews cached
    run = sorted((workspace / "runs" / "imdb").iterdir())[-1]
    for name in ("lm.pt", "model.pt", "submission.csv", "lm_history.csv", "history.csv", "preprocessing.json"):
        assert (run / name).exists(), name
    lm = pd.read_csv(run / "lm_history.csv")
    assert lm["valid_loss"].iloc[-1] < np.log(len(json.loads((run / "preprocessing.json").read_text())["itos"]))
    acc = json.loads((run / "test_metrics.json").read_text())["test_accuracy"]
    assert acc > 0.7  # 200 test reviews: chance is 0.5
    text = cli_run("generate", "imdb", "--prompt", "The movie was", "--words", "20", "--top-k", "5").output
    assert text.startswith("The movie was") and len(text.split()) > 8
    # Fine-tune again from this run's language model, without LM epochs, blending in NB-SVM.
    out = cli_run("train", "imdb", "--set", f'lm.pretrained="{run / "lm.pt"}"', "--set", "lm.epochs=0",
                  "--set", "model.blend_nbsvm=true", "--set", "nbsvm.n_features=65536", *TINY, *long).output
    assert f"knows {len(json.loads((run / 'preprocessing.json').read_text())['itos'])} of our" in out
    second = sorted((workspace / "runs" / "imdb").iterdir())[-1]
    assert json.loads((second / "test_metrics.json").read_text())["test_accuracy"] > 0.7


def test_missing_pretrained_file_says_where_to_put_it(cli_run, workspace, cache, tmp_path):
    cli_run("data", "imdb", "--sample")
    result = cli_run("train", "imdb", "--pretrained", tmp_path / "wt103" / "lstm_wt103.pth", *TINY, expect=2)
    assert "does not exist; put there" in result.output and "wt103" in result.output
    refused = cli_run("train", "movielens", "--pretrained", tmp_path / "x.pt", expect=2)
    assert "movielens takes no --pretrained PATH" in refused.output


def test_kaggle_layout_submission_is_probabilities_per_test_id(cli_run, workspace, tmp_path):
    write_kaggle(tmp_path / "kaggle", seed=2)
    cli_run("train", "imdb", "--data-dir", tmp_path / "kaggle", "--set", "model.kind=nbsvm",
            "--set", "nbsvm.n_features=65536")
    run = sorted((workspace / "runs" / "imdb").iterdir())[-1]
    sub = pd.read_csv(run / "submission.csv")
    sample = pd.read_csv(tmp_path / "kaggle" / "sampleSubmission.csv")
    assert list(sub.columns) == ["id", "sentiment"] and sub["id"].tolist() == sample["id"].tolist()
    assert sub["sentiment"].between(0, 1).all() and sub["sentiment"].nunique() > 100
    assert not (run / "test_metrics.json").exists()  # Kaggle's test labels are unknown
    summary = json.loads((run / "summary.json").read_text())
    assert summary["metrics"]["roc_auc"] > 0.8  # validation ROC AUC, Kaggle's metric


# ---------------------------------------------------------------------- no validation split
def test_nbsvm_with_valid_pct_0_trains_on_every_review_and_reports_no_score(cli_run, workspace, tmp_path):
    import warnings

    write_aclimdb(tmp_path / "acl", seed=0, n_train=60, n_test=20, n_unsup=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scikit-learn's one-sample warnings would fail here
        out = cli_run("train", "imdb", "--data-dir", tmp_path / "acl", "--set", "model.kind=nbsvm",
                      "--set", "nbsvm.n_features=4096", "--set", "data.valid_pct=0").output
    assert "no validation split (data.valid_pct = 0): training on all 60 reviews" in out
    assert "validation accuracy" not in out
    run = sorted((workspace / "runs" / "imdb").iterdir())[-1]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["primary_score"] is None and summary["metrics"] == {} and "no validation" in summary["note"]
    assert not (run / "valid_preds.npy").exists()
    assert json.loads((run / "test_metrics.json").read_text())["test_accuracy"] > 0.6


def test_ulmfit_with_valid_pct_0_trains_without_a_validation_split(cli_run, workspace, tmp_path):
    write_aclimdb(tmp_path / "acl", seed=0, n_train=66, n_test=20, n_unsup=0)
    out = cli_run("train", "imdb", "--data-dir", tmp_path / "acl", "--set", "data.valid_pct=0", *TINY,
                  "--set", "train.stages=[{freeze_to = -1, epochs = 1}]").output
    assert "no validation split (data.valid_pct = 0): training on all 66 reviews" in out
    run = sorted((workspace / "runs" / "imdb").iterdir())[-1]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["primary_score"] is None and "no validation" in summary["note"]
    assert (run / "submission.csv").exists()
