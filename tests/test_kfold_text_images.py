"""`harness train imdb|dog-breeds --folds K`: stratified folds of the labelled reviews and of the training
images, every row once out of fold, the CV score on the OOF rows, the submission from the folds' mean, and
folds and holdout splits that a training-seed change never moves."""
import numpy as np
import pandas as pd
import pytest
import torch

from harness.config.loading import apply_overrides
from harness.runs.folder import Run
from harness.runs.kfold import fold_plan
from harness_plugins.dog_breeds import DogBreeds
from harness.kinds.image import log_loss_of_log_probs
from harness_plugins.imdb import Imdb
from harness_plugins.imdb.sample import write_aclimdb

NBSVM = ["--set", "model.kind=nbsvm", "--set", "nbsvm.n_features=16384"]
# A tiny AWD-LSTM, one classifier stage: seconds on a CPU.
TINY_ULMFIT = ["--set", "model.emb_sz=16", "--set", "model.n_hid=32", "--set", "model.n_layers=2",
               "--set", "lm.bs=8", "--set", "lm.bptt=20", "--set", "train.batch_size=16",
               "--set", "train.stages=[{freeze_to = -1, epochs = 1}]"]
# ResNet-18 with random weights on 32 px images, one epoch of the head, no unfreezing, no TTA.
FAST_DOGS = ["--no-pretrained", "--set", "model.arch=resnet18", "--set", "data.image_size=32",
             "--set", "data.num_workers=0", "--set", "train.batch_size=16", "--set", "train.epochs=1",
             "--set", "train.unfreeze_cycles=0", "--set", "predict.tta=0"]


@pytest.fixture(scope="module")
def acl(tmp_path_factory):
    path = tmp_path_factory.mktemp("imdb")
    write_aclimdb(path, seed=0, n_train=150, n_test=30, n_unsup=0)
    # Unbalanced on purpose (75 negative, 25 positive reviews), so stratification has something to keep.
    for extra in sorted((path / "aclImdb" / "train" / "pos").glob("*.txt"))[25:]:
        extra.unlink()
    return path


@pytest.fixture(scope="module")
def dogs(tmp_path_factory):
    path = tmp_path_factory.mktemp("dogs")
    DogBreeds().write_sample(path, seed=1, n_breeds=3, n_per_breed=14, n_test=6, size=32)
    return path


def only_run(workspace, name) -> Run:
    (run,) = Run.all(workspace, name)
    return run


def check_folds(run: Run, labels: np.ndarray, k: int) -> np.ndarray:
    """Every training row is validated by exactly one of the k folds, each class in its whole share."""
    folds = pd.read_csv(run.path("folds.csv"))
    assert len(folds) == len(labels) and folds["row"].tolist() == list(range(len(labels)))
    fold = folds["fold"].to_numpy()
    assert sorted(set(fold)) == list(range(k))  # no -1: every row gets one out-of-fold prediction
    assert run.summary()["scheme"] == "stratified"
    for i in range(k):
        in_fold = labels[fold == i]
        for c in np.unique(labels):
            share = (labels == c).mean()
            assert abs((in_fold == c).sum() - share * len(in_fold)) <= 1, (i, c)
    return fold


def check_submission_is_the_folds_mean(run: Run, k: int) -> np.ndarray:
    mean = np.mean([run.array(f"fold-{i}/test_preds.npy") for i in range(k)], axis=0)
    assert np.allclose(run.array("test_preds.npy"), mean)
    return mean


# ---------------------------------------------------------------------- IMDB
def test_imdb_nbsvm_stratified_folds_oof_cv_and_mean_submission(cli_run, workspace, acl):
    out = cli_run("train", "imdb", "--data-dir", acl, "--folds", "3", *NBSVM).output
    run = only_run(workspace, "imdb")
    comp = Imdb()
    rows = comp.fold_rows(comp.load(acl, run.config()), run.config())
    labels = rows["label"].to_numpy()
    assert len(rows) == 100 and labels.mean() == pytest.approx(0.25)
    fold = check_folds(run, labels, 3)
    oof, targets = run.array("oof_preds.npy"), run.array("oof_targets.npy")
    assert not np.isnan(oof).any() and np.array_equal(targets, labels)  # row for row: the fold_rows' labels
    for i in range(3):  # each fold model scored the rows it held out, and only those
        assert np.array_equal(run.array(f"fold-{i}/valid_targets.npy"), labels[fold == i])
    accuracy = float(((oof > 0) == (labels == 1)).mean())
    assert run.summary()["cv_score"] == pytest.approx(accuracy) and f"CV accuracy on all {len(rows)}" in out
    mean = check_submission_is_the_folds_mean(run, 3)
    submission = pd.read_csv(run.path("submission.csv"))
    assert np.allclose(submission["sentiment"], 1 / (1 + np.exp(-mean)), atol=1e-6)  # the mean logit's probability


def test_imdb_ulmfit_folds_score_the_reviews_in_their_own_order(cli_run, workspace, acl):
    # The classifier validates in length-sorted batches; its OOF rows must still line up with the reviews.
    cli_run("train", "imdb", "--data-dir", acl, "--folds", "2", *TINY_ULMFIT)
    run = only_run(workspace, "imdb")
    comp = Imdb()
    labels = comp.fold_rows(comp.load(acl, run.config()), run.config())["label"].to_numpy()
    check_folds(run, labels, 2)
    oof = run.array("oof_preds.npy")
    assert np.array_equal(run.array("oof_targets.npy"), labels)
    assert run.summary()["cv_score"] == pytest.approx(float(((oof > 0) == (labels == 1)).mean()))
    check_submission_is_the_folds_mean(run, 2)


def test_imdb_training_seed_keeps_the_folds_and_the_holdout_split(cli_run, workspace, acl):
    for seed in ("1", "2"):
        cli_run("train", "imdb", "--data-dir", acl, "--folds", "3", *NBSVM, "--set", f"seed={seed}")
    cli_run("train", "imdb", "--data-dir", acl, "--folds", "3", *NBSVM, "--set", "validation.split_seed=7")
    a, b, c = (pd.read_csv(r.path("folds.csv"))["fold"] for r in Run.all(workspace, "imdb"))
    assert a.equals(b) and not a.equals(c)

    comp = Imdb()
    raw = comp.load(acl, comp.default_config())

    def holdout(*overrides):
        config = apply_overrides(comp.default_config(), ['model.kind="nbsvm"', *overrides], schema=comp.config_schema)
        prepared = comp.prepare(raw, config)
        return prepared.extra["train"]["id"].tolist(), prepared.extra["valid"]["id"].tolist()

    assert holdout("seed=1") == holdout("seed=2") != holdout("validation.split_seed=7")
    # data.max_train: the folds are cut from the same reviews the holdout split uses
    config = apply_overrides(comp.default_config(), ["data.max_train=40"], schema=comp.config_schema)
    train_rows, valid_rows = comp.split_rows(raw, config)
    rows = comp.fold_rows(raw, config)
    assert len(rows) == 40 and set(rows["id"]) == set(raw.train["id"].iloc[np.r_[train_rows, valid_rows]])


# ---------------------------------------------------------------------- dog breeds
def test_dog_breeds_stratified_folds_oof_cv_and_mean_submission(cli_run, workspace, dogs):
    cli_run("train", "dog-breeds", "--data-dir", dogs, "--folds", "3", *FAST_DOGS)
    run = only_run(workspace, "dog-breeds")
    comp = DogBreeds()
    raw = comp.load(dogs, run.config())
    rows = comp.fold_rows(raw, run.config())
    codes = np.array([raw.classes.index(b) for b in rows["breed"]])
    fold = check_folds(run, codes, 3)
    oof, targets = run.array("oof_preds.npy"), run.array("oof_targets.npy")
    assert not np.isnan(oof).any() and np.array_equal(targets, codes)
    for i in range(3):
        assert np.array_equal(run.array(f"fold-{i}/valid_targets.npy"), codes[fold == i])
    cv = log_loss_of_log_probs(torch.from_numpy(oof.astype(np.float32)), torch.from_numpy(codes))
    assert run.summary()["cv_score"] == pytest.approx(cv, rel=1e-5)
    mean = check_submission_is_the_folds_mean(run, 3)
    submission = pd.read_csv(run.path("submission.csv"))
    probs = np.exp(mean) / np.exp(mean).sum(axis=1, keepdims=True)
    assert list(submission.columns) == ["id", *raw.classes]
    assert np.allclose(submission[raw.classes].to_numpy(), probs, atol=1e-6)


def test_dog_breeds_training_seed_keeps_the_folds_and_the_holdout_split(dogs):
    comp = DogBreeds()

    def config(*overrides):
        return apply_overrides(comp.default_config(), ["data.num_workers=0", "train.batch_size=16", *overrides],
                               schema=comp.config_schema)

    raw = comp.load(dogs, config())
    rows = comp.fold_rows(raw, config())

    def folds(*overrides):
        return fold_plan(rows, config(*overrides), 3).folds

    assert np.array_equal(folds("seed=1"), folds("seed=2"))
    assert not np.array_equal(folds("seed=1"), folds("validation.split_seed=7"))

    def holdout(*overrides):
        return comp.prepare(raw, config(*overrides)).extra["valid_paths"]

    assert holdout("seed=1") == holdout("seed=2") != holdout("validation.split_seed=7")


def test_dog_breeds_breed_with_one_image_cannot_be_stratified(cli_run, workspace, dogs, tmp_path):
    import shutil

    data = tmp_path / "dogs"
    shutil.copytree(dogs, data)
    labels = pd.read_csv(data / "labels.csv")
    labels.loc[0, "breed"] = "corgi"
    labels.to_csv(data / "labels.csv", index=False)
    (data / "sample_submission.csv").unlink()  # rebuilt from test/ with the new breed's column
    out = cli_run("train", "dog-breeds", "--data-dir", data, "--folds", "3", *FAST_DOGS, expect=2).output
    assert "1 breed(s) have a single training image (corgi): stratified folds need" in out
    assert not Run.all(workspace, "dog-breeds")
    # The holdout split keeps its rule: the single image trains.
    comp = DogBreeds()
    config = apply_overrides(comp.default_config(), ["data.num_workers=0", "train.batch_size=16"],
                             schema=comp.config_schema)
    prepared = comp.prepare(comp.load(data, config), config)
    assert data / "train" / f"{labels['id'][0]}.jpg" in prepared.extra["train_paths"]
