"""The text-classification kind from a TOML alone: the csv layout (binary and 3 classes) and the folders
layout on tiny generated texts, NB-SVM and a tiny AWD-LSTM end to end, submissions in the sample's ids,
columns and order, K folds, and bad inputs as one-line errors."""
import gzip
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.config.loading import apply_overrides
from harness.errors import HarnessError
from harness.host.hookspecs import hookimpl
from harness.kinds import competition_from_toml
from harness.runs import runner
from harness.runs.kfold import train_folds

ROOT = Path(__file__).resolve().parents[1]
# Words that give a text's class away (mostly: a fifth of them come from another class).
WORDS = {
    "neg": ["awful", "boring", "dull", "terrible", "weak", "clumsy"],
    "pos": ["great", "brilliant", "moving", "superb", "charming", "clever"],
    "meh": ["okay", "average", "fine", "middling", "passable", "plain"],
}
COMMON = ["the", "film", "was", "plot", "and", "acting", "it", "a", "story", "cast", "we", "saw"]
# A tiny AWD-LSTM, one short classifier stage: seconds on a CPU.
TINY_LSTM = ["model.emb_sz=16", "model.n_hid=32", "model.n_layers=2", "lm.bs=8", "lm.bptt=20", "lm.lr=0.01",
             "train.batch_size=16", "model.drop_mult=0.2", "train.lr=0.05", "train.lr_div=1.5",
             "train.stages=[{freeze_to = -1, epochs = 1}, {freeze_to = 0, epochs = 2, lr_mult = 0.5}]"]


def text_of(rng, label: str) -> str:
    others = [c for c in WORDS if c != label]
    words = list(rng.choice(COMMON, 6))
    for _ in range(4):
        source = label if rng.random() < 0.8 else others[int(rng.integers(len(others)))]
        words.append(str(rng.choice(WORDS[source])))
    rng.shuffle(words)
    return " ".join(words).capitalize() + "."


def texts(n: int, classes, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    labels = [classes[i % len(classes)] for i in range(n)]
    return pd.DataFrame({"id": [f"r{seed}_{i}" for i in range(n)], "review": [text_of(rng, c) for c in labels],
                         "sentiment": labels})


def write_toml(path: Path, body: str) -> Path:
    path.write_text(body)
    return path


def write_csv_data(folder: Path, classes, n_train=120, n_test=30, test_name="test.csv", sample_columns=None):
    """train.csv, a test file and a sample submission whose rows are in another order than the test file's."""
    folder.mkdir(parents=True, exist_ok=True)
    texts(n_train, classes, seed=0).to_csv(folder / "train.csv", index=False)
    test = texts(n_test, classes, seed=1)
    if test_name.endswith(".gz"):
        with gzip.open(folder / test_name, "wt") as f:
            test[["id", "review"]].to_csv(f, index=False)
    else:
        test[["id", "review"]].to_csv(folder / test_name, index=False)
    sample = pd.DataFrame({"id": test["id"].iloc[::-1].to_numpy()})
    for column in sample_columns or ["sentiment"]:
        sample[column] = 0
    sample.to_csv(folder / "sample_submission.csv", index=False)
    return test


def write_folders(folder: Path, classes, n_train=60, n_test=12, labelled_test=False):
    train = texts(n_train, classes, seed=0)
    for row in train.itertuples():
        (folder / "train" / row.sentiment).mkdir(parents=True, exist_ok=True)
        (folder / "train" / row.sentiment / f"{row.id}.txt").write_text(row.review)
    test = texts(n_test, classes, seed=1)
    for row in test.itertuples():
        where = folder / "test" / (row.sentiment if labelled_test else "")
        where.mkdir(parents=True, exist_ok=True)
        (where / f"{row.id}.txt").write_text(row.review)
    return test


BINARY_TOML = """
name = "toy-text-binary"
kind = "text-classification"
task = "binary"
metric = "roc_auc"
[data]
text = "review"
label = "sentiment"
sample_submission = "sample_submission.csv"
[model]
kind = "nbsvm"
[nbsvm]
n_features = 4096
"""

MULTI_TOML = """
name = "toy-text-3"
kind = "text-classification"
task = "multiclass"
[data]
text = "review"
label = "sentiment"
test = "test.csv.gz"
sample_submission = "sample_submission.csv"
[model]
kind = "nbsvm"
[nbsvm]
n_features = 4096
"""

FOLDERS_TOML = """
name = "toy-text-folders"
kind = "text-classification"
task = "multiclass"
[model]
kind = "nbsvm"
[nbsvm]
n_features = 4096
"""


def train(comp, data_dir, workspace, *overrides):
    config = apply_overrides(comp.default_config(), list(overrides), schema=comp.config_schema)
    return runner.train(comp, config, data_dir, workspace, echo=False, progress=False)


# ---------------------------------------------------------------------- csv layout
def test_binary_csv_nbsvm_submission_in_the_samples_order(tmp_path, workspace):
    write_csv_data(tmp_path / "data", ["neg", "pos"])
    comp = competition_from_toml(write_toml(tmp_path / "binary.toml", BINARY_TOML))
    assert comp.name == "toy-text-binary" and comp.task.kind == "binary"
    config = comp.default_config()
    assert config["lm"]["bptt"] == 70 and config["validation"]["scheme"] == "stratified"  # the kind's defaults
    assert config["data"]["layout"] == "" and config["submission"]["format"] == ""
    run = train(comp, tmp_path / "data", workspace)
    summary = run.summary()
    assert summary["primary_metric"] == "roc_auc" and summary["primary_score"] > 0.8
    sub = pd.read_csv(run.path("submission.csv"))
    sample = pd.read_csv(tmp_path / "data" / "sample_submission.csv")
    assert list(sub.columns) == ["id", "sentiment"] and sub["id"].tolist() == sample["id"].tolist()
    assert sub["sentiment"].between(0, 1).all() and sub["sentiment"].nunique() > 5
    # test_preds.npy follows the submission's rows: P(positive) is its logistic
    assert np.allclose(sub["sentiment"], 1 / (1 + np.exp(-run.array("test_preds.npy"))), atol=1e-6)
    assert not run.path("test_metrics.json").exists()  # the test file has no labels


def test_three_classes_csv_nbsvm_labels_from_the_sample(tmp_path, workspace):
    test = write_csv_data(tmp_path / "data", ["neg", "meh", "pos"], test_name="test.csv.gz")
    comp = competition_from_toml(write_toml(tmp_path / "multi.toml", MULTI_TOML))
    run = train(comp, tmp_path / "data", workspace)
    assert run.summary()["metrics"]["accuracy"] > 0.6  # chance is 1/3
    assert set(run.summary()["metrics"]) == {"accuracy", "log_loss"}
    sub = pd.read_csv(run.path("submission.csv"))
    assert list(sub.columns) == ["id", "sentiment"] and sub["id"].tolist() == test["id"].iloc[::-1].tolist()
    assert set(sub["sentiment"]) <= {"neg", "meh", "pos"}
    assert (sub["sentiment"].to_numpy() == test["sentiment"].iloc[::-1].to_numpy()).mean() > 0.6
    assert run.array("test_preds.npy").shape == (30, 3)


def test_three_classes_with_one_probability_column_per_class(tmp_path, workspace):
    write_csv_data(tmp_path / "data", ["neg", "meh", "pos"], test_name="test.csv.gz",
                   sample_columns=["pos", "neg", "meh"])
    comp = competition_from_toml(write_toml(tmp_path / "multi.toml", MULTI_TOML))
    run = train(comp, tmp_path / "data", workspace)
    sub = pd.read_csv(run.path("submission.csv"))
    assert list(sub.columns) == ["id", "pos", "neg", "meh"]  # the sample's columns, in its order
    assert np.allclose(sub[["pos", "neg", "meh"]].sum(axis=1), 1)
    # the column named pos holds the class pos: the texts are mostly right
    test = texts(30, ["neg", "meh", "pos"], seed=1).set_index("id").loc[sub["id"]]
    assert (sub[["pos", "neg", "meh"]].to_numpy().argmax(axis=1) == test["sentiment"].map(
        {"pos": 0, "neg": 1, "meh": 2}).to_numpy()).mean() > 0.6


def test_tsv_with_kaggle_quoting_and_declared_classes(tmp_path, workspace):
    data = tmp_path / "data"
    data.mkdir()
    frame = texts(60, ["neg", "pos"], seed=0)
    frame["sentiment"] = (frame["sentiment"] == "pos").astype(int)  # Kaggle's 0/1
    lines = ["id\tsentiment\treview"] + [f'"{r.id}"\t{r.sentiment}\t"{r.review} \\"quoted\\""' for r in frame.itertuples()]
    (data / "train.tsv").write_text("\n".join(lines) + "\n")
    comp = competition_from_toml(write_toml(tmp_path / "tsv.toml", BINARY_TOML.replace(
        'sample_submission = "sample_submission.csv"', "classes = [0, 1]")))
    raw = comp.load(data, comp.default_config())
    assert raw.classes == ["0", "1"] and raw.test is None
    assert raw.train["id"].iloc[0] == "r0_0" and raw.train["text"].iloc[0].endswith('"quoted"')
    assert raw.train["label"].tolist() == frame["sentiment"].tolist()


# ---------------------------------------------------------------------- folders layout
def test_folders_layout_nbsvm_ids_from_the_file_names(tmp_path, workspace):
    test = write_folders(tmp_path / "data", ["neg", "meh", "pos"])
    comp = competition_from_toml(write_toml(tmp_path / "folders.toml", FOLDERS_TOML))
    raw = comp.load(tmp_path / "data", comp.default_config())
    assert raw.layout == "folders" and raw.classes == ["meh", "neg", "pos"]  # sorted folder names
    run = train(comp, tmp_path / "data", workspace)
    sub = pd.read_csv(run.path("submission.csv"))
    assert list(sub.columns) == ["id", "label"] and sorted(sub["id"]) == sorted(test["id"])
    assert set(sub["label"]) <= {"neg", "meh", "pos"}


def test_folders_layout_with_a_labelled_test_set_scores_it(tmp_path, workspace):
    write_folders(tmp_path / "data", ["neg", "pos"], labelled_test=True)
    comp = competition_from_toml(write_toml(tmp_path / "folders.toml", FOLDERS_TOML.replace("multiclass", "binary")))
    run = train(comp, tmp_path / "data", workspace)
    metrics = run.path("test_metrics.json")
    assert metrics.exists()
    import json

    scores = json.loads(metrics.read_text())
    assert scores["n_test"] == 12 and scores["test_accuracy"] > 0.6
    sub = pd.read_csv(run.path("submission.csv"))
    assert list(sub.columns) == ["id", "label"] and sub["label"].between(0, 1).all()  # P(pos)


def test_tiny_awd_lstm_end_to_end_on_three_classes(tmp_path, workspace):
    test = write_folders(tmp_path / "data", ["neg", "meh", "pos"], n_train=90, n_test=15)
    lstm_toml = FOLDERS_TOML.replace('kind = "nbsvm"', 'kind = "awd-lstm"')
    comp = competition_from_toml(write_toml(tmp_path / "lstm.toml", lstm_toml))
    run = train(comp, tmp_path / "data", workspace, *TINY_LSTM, 'text.cache_dir="none"')
    for name in ("lm.pt", "model.pt", "submission.csv", "lm_history.csv", "valid_preds.npy"):
        assert run.path(name).exists(), name
    assert run.array("valid_preds.npy").shape == (9, 3)  # 10% of 90 held out, a logit per class
    sub = pd.read_csv(run.path("submission.csv"))
    assert sorted(sub["id"]) == sorted(test["id"]) and set(sub["label"]) <= {"neg", "meh", "pos"}
    # predict rebuilds the model from the run: the same submission
    again = runner.predict(comp, run, tmp_path / "data")
    assert pd.read_csv(again).equals(sub)
    text = comp.generate(run, "The film was", words=5, seed=0)
    assert text.startswith("The film was")


# ---------------------------------------------------------------------- K folds
def test_k_folds_on_three_classes(tmp_path, workspace):
    test = write_csv_data(tmp_path / "data", ["neg", "meh", "pos"], test_name="test.csv.gz")
    comp = competition_from_toml(write_toml(tmp_path / "multi.toml", MULTI_TOML))
    config = comp.default_config()
    run = train_folds(comp, config, tmp_path / "data", workspace, 3, echo=False, progress=False)
    rows = comp.fold_rows(comp.load(tmp_path / "data", config), config)
    oof, targets = run.array("oof_preds.npy"), run.array("oof_targets.npy")
    assert oof.shape == (120, 3) and not np.isnan(oof).any()
    assert np.array_equal(targets, rows["label"].to_numpy())
    folds = pd.read_csv(run.path("folds.csv"))["fold"].to_numpy()
    for i in range(3):  # stratified: 40 texts of each class, a third of them in each fold
        assert set(np.bincount(targets[folds == i].astype(int), minlength=3)) <= {13, 14}
    assert run.summary()["cv_score"] == pytest.approx(float((oof.argmax(axis=1) == targets).mean()))
    sub = pd.read_csv(run.path("submission.csv"))
    assert sub["id"].tolist() == test["id"].iloc[::-1].tolist() and set(sub["sentiment"]) <= {"neg", "meh", "pos"}
    mean = run.array("test_preds.npy")
    assert (sub["sentiment"].to_numpy() == np.array(["meh", "neg", "pos"])[mean.argmax(axis=1)]).all()


# ---------------------------------------------------------------------- the host and the CLI
def test_a_toml_competition_loads_without_torch(tmp_path):
    path = write_toml(tmp_path / "binary.toml", BINARY_TOML)
    code = ("import sys\nfrom harness.kinds import competition_from_toml\n"
            f"c = competition_from_toml({str(path)!r})\nc.default_config()\n"
            "print(c.name, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.stdout.split() == ["toy-text-binary", "False"], out.stderr


def test_train_and_predict_through_the_cli(tmp_path, cli_run, workspace):
    from harness.host import plugins

    write_csv_data(workspace / "data" / "toy-text-binary", ["neg", "pos"])
    comp = competition_from_toml(write_toml(tmp_path / "binary.toml", BINARY_TOML))

    class Plugin:
        @hookimpl
        def register_competitions(self, register):
            register(comp)

    plugins.register_plugin(Plugin(), name="toy-text-kind", source="test")
    try:
        cli_run("train", "toy-text-binary", "--set", "nbsvm.C=0.5")
        (run,) = [p for p in (workspace / "runs" / "toy-text-binary").iterdir() if p.is_dir()]
        first = pd.read_csv(run / "submission.csv")
        cli_run("predict", "toy-text-binary", "--run", run.name)
        assert np.allclose(pd.read_csv(run / "submission.csv")["sentiment"], first["sentiment"], atol=1e-6)
        result = cli_run("train", "toy-text-binary", "--set", 'data.text="body"', expect=2)
        assert "missing column(s) body" in result.output and "data.text" in result.output
    finally:
        plugins.unregister_plugin("toy-text-kind")


# ---------------------------------------------------------------------- bad input
def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message, message
    return message


def test_missing_text_column_names_the_file_and_the_key(tmp_path):
    write_csv_data(tmp_path / "data", ["neg", "pos"])
    comp = competition_from_toml(write_toml(tmp_path / "t.toml", BINARY_TOML.replace('text = "review"', 'text = "body"')))
    with pytest.raises(HarnessError) as exc:
        comp.load(tmp_path / "data", comp.default_config())
    message = one_line(exc)
    assert "train.csv is missing column(s) body" in message and "found: id, review, sentiment" in message
    assert "set data.text" in message


def test_label_folder_with_no_files(tmp_path):
    write_folders(tmp_path / "data", ["neg", "pos"])
    (tmp_path / "data" / "train" / "meh").mkdir()
    comp = competition_from_toml(write_toml(tmp_path / "f.toml", FOLDERS_TOML))
    with pytest.raises(HarnessError) as exc:
        comp.load(tmp_path / "data", comp.default_config())
    assert f"{tmp_path / 'data' / 'train' / 'meh'} has no .txt texts" in one_line(exc)


def test_unknown_layout_is_a_config_error(tmp_path):
    comp = competition_from_toml(write_toml(tmp_path / "l.toml", FOLDERS_TOML + '[data]\nlayout = "xml"\n'))
    with pytest.raises(HarnessError) as exc:
        comp.default_config()
    assert one_line(exc).startswith("config: data.layout = 'xml' must be 'csv' or 'folders'")


def test_empty_texts_are_skipped_with_a_count_or_refused(tmp_path, capsys):
    write_csv_data(tmp_path / "data", ["neg", "pos"])
    frame = pd.read_csv(tmp_path / "data" / "train.csv")
    frame.loc[3, "review"] = "  "
    frame.to_csv(tmp_path / "data" / "train.csv", index=False)
    comp = competition_from_toml(write_toml(tmp_path / "e.toml", BINARY_TOML))
    raw = comp.load(tmp_path / "data", comp.default_config())
    assert len(raw.train) == 119 and "1 empty training text(s) skipped (first id 'r0_3')" in capsys.readouterr().err
    strict = apply_overrides(comp.default_config(), ['data.empty_texts="error"'], schema=comp.config_schema)
    with pytest.raises(HarnessError) as exc:
        comp.load(tmp_path / "data", strict)
    assert "1 blank training text(s)" in one_line(exc) and "'r0_3'" in str(exc.value)
    frame["review"] = ""
    frame.to_csv(tmp_path / "data" / "train.csv", index=False)
    with pytest.raises(HarnessError) as exc:
        comp.load(tmp_path / "data", comp.default_config())
    assert "every training text is blank (train.csv, column review)" in one_line(exc)


def test_more_classes_than_the_task_and_undeclared_labels(tmp_path):
    write_csv_data(tmp_path / "data", ["neg", "meh", "pos"])
    comp = competition_from_toml(write_toml(tmp_path / "b.toml", BINARY_TOML))
    with pytest.raises(HarnessError) as exc:
        comp.load(tmp_path / "data", comp.default_config())
    assert 'task = "binary" but the training labels hold 3 classes (meh, neg, pos)' in one_line(exc)
    declared = apply_overrides(comp.default_config(), ['data.classes=["neg", "pos"]'], schema=comp.config_schema)
    with pytest.raises(HarnessError) as exc:
        comp.load(tmp_path / "data", declared)
    assert "column sentiment must be neg or pos; found 'meh' at data row 2" in one_line(exc)


def test_sample_submission_with_an_id_the_test_file_lacks(tmp_path):
    write_csv_data(tmp_path / "data", ["neg", "pos"])
    sample = pd.read_csv(tmp_path / "data" / "sample_submission.csv")
    sample.loc[0, "id"] = "nope"
    sample.to_csv(tmp_path / "data" / "sample_submission.csv", index=False)
    comp = competition_from_toml(write_toml(tmp_path / "s.toml", BINARY_TOML))
    config = comp.default_config()
    raw = comp.load(tmp_path / "data", config)
    with pytest.raises(HarnessError) as exc:
        comp.check_inputs(raw, config)
    assert "the sample submission's id 'nope' is not a test id" in one_line(exc)


def test_no_training_file_says_what_was_expected(tmp_path):
    (tmp_path / "empty").mkdir()
    comp = competition_from_toml(write_toml(tmp_path / "n.toml", BINARY_TOML))
    with pytest.raises(HarnessError) as exc:
        comp.load(tmp_path / "empty", comp.default_config())
    assert "holds no training texts: expected one of train.csv, train.tsv" in one_line(exc)


def test_bad_task_and_bad_model_kind(tmp_path):
    with pytest.raises(HarnessError, match="task = 'regression': a text-classification competition is binary or multiclass"):
        competition_from_toml(write_toml(tmp_path / "r.toml", BINARY_TOML.replace('task = "binary"', 'task = "regression"')))
    comp = competition_from_toml(write_toml(tmp_path / "m.toml", BINARY_TOML.replace('kind = "nbsvm"', 'kind = "svm"')))
    with pytest.raises(HarnessError, match="model.kind = 'svm' must be one of awd-lstm, nbsvm"):
        comp.default_config()
