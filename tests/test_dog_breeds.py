"""Dog breeds end to end on generated images in Kaggle's layout, and bad input."""
from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from harness_competitions import config_path
from harness.config.loading import apply_overrides
from harness.errors import HarnessError
from harness.models.vision import VisionModel
from harness.train.callbacks import Callback
from harness_plugins.dog_breeds import DogBreeds

# Small and quick: 32 px images, ResNet-18 with random weights, no decoding processes.
FAST = {"model.arch": "resnet18", "model.pretrained": False, "data.image_size": 32, "data.num_workers": 0,
        "train.batch_size": 32}


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("dogs")
    DogBreeds().write_sample(path, seed=1, n_breeds=4, n_per_breed=30, n_test=12, size=32)
    return path


@pytest.fixture
def data_copy(sample_dir, tmp_path):
    path = tmp_path / "dogs"
    shutil.copytree(sample_dir, path)
    return path


def config(**overrides):
    return apply_overrides(DogBreeds().default_config(), {**FAST, **overrides})


def test_sample_is_in_kaggles_layout(tmp_path):
    DogBreeds().write_sample(tmp_path)
    labels = pd.read_csv(tmp_path / "labels.csv")
    assert list(labels.columns) == ["id", "breed"] and len(labels) == 160
    assert labels["id"].str.fullmatch(r"[0-9a-f]{32}").all()
    assert labels["breed"].value_counts().tolist() == [40] * 4
    with Image.open(tmp_path / "train" / f"{labels['id'][0]}.jpg") as image:
        assert image.format == "JPEG" and image.size == (64, 64)
    sample = pd.read_csv(tmp_path / "sample_submission.csv")
    assert list(sample.columns) == ["id", *sorted(labels["breed"].unique())]
    assert sample["id"].tolist() == sorted(sample["id"]) and len(sample) == 40
    assert all((tmp_path / "test" / f"{i}.jpg").exists() for i in sample["id"])
    assert np.allclose(sample.iloc[:, 1:].sum(axis=1), 1.0)


@pytest.mark.slow
def test_end_to_end_cached_activations_then_unfreeze(cli_run, workspace, sample_dir):
    fast = [a for k, v in FAST.items() if k != "model.pretrained" for a in ("--set", f"{k}={v}")]
    cli_run("data", "dog-breeds", "--from", sample_dir)
    out = cli_run("train", "dog-breeds", "--no-pretrained", *fast, "--set", "train.epochs=2",
                  "--set", "train.unfreeze_cycles=2", "--set", "train.unfreeze_lrs=[0.001, 0.003, 0.01]",
                  "--set", "predict.tta=1").output
    assert "activations: 120 images, 0 reused" in out and "validation with TTA" in out
    run_dir = next((workspace / "runs" / "dog-breeds").iterdir())
    history = pd.read_csv(run_dir / "history.csv")
    assert history["stage"].tolist() == [0, 0, 1, 1, 1]  # 2 head epochs on the cache, then 1 + 2 unfrozen
    summary = pd.read_json(run_dir / "summary.json", typ="series")
    assert summary["metrics"]["accuracy"] >= 0.7  # four classes: chance is 0.25
    assert summary["primary_metric"] == "log_loss" and summary["primary_score"] < 0.8 * np.log(4)
    # The log loss on the saved validation predictions is the one reported.
    probs, targets = np.exp(np.load(run_dir / "valid_preds.npy")), np.load(run_dir / "valid_targets.npy")
    assert np.isclose(-np.log(probs[np.arange(len(targets)), targets]).mean(), summary["primary_score"], rtol=1e-4)

    sub = pd.read_csv(run_dir / "submission.csv")
    sample = pd.read_csv(sample_dir / "sample_submission.csv")
    assert list(sub.columns) == list(sample.columns)
    assert sub["id"].tolist() == sample["id"].tolist()
    values = sub.iloc[:, 1:].to_numpy()
    assert np.allclose(values.sum(axis=1), 1.0, atol=1e-6) and (values >= 0).all()
    outputs = np.load(run_dir / "test_preds.npy")  # log-probabilities: the model's scale, which blends average
    assert np.allclose(np.exp(outputs), values)
    assert np.allclose(DogBreeds().submission_from_outputs(outputs, sub).iloc[:, 1:].to_numpy(), values)

    (run_dir / "submission.csv").unlink()
    cli_run("predict", "dog-breeds")
    assert np.allclose(pd.read_csv(run_dir / "submission.csv").iloc[:, 1:], values, atol=1e-6)

    # A second run with the same backbone and transform reuses every cached activation.
    out = cli_run("train", "dog-breeds", "--no-pretrained", *fast, "--set", "train.epochs=1",
                  "--set", "train.unfreeze_cycles=0", "--set", "predict.tta=0").output
    assert "activations: 120 images, 120 reused" in out


def test_offline_without_weights_one_line_exit_2(cli_run, sample_dir, tmp_path, monkeypatch):
    import urllib.error

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    out = cli_run("train", "dog-breeds", "--data-dir", sample_dir, expect=2).output
    expected = tmp_path / "torch" / "hub" / "checkpoints" / "resnet34-b627a593.pth"
    assert out.startswith("error: ImageNet weights for resnet34") and str(expected) in out
    assert out.count("\n") == 1 and "Traceback" not in out
    # the way out the message names works for the other commands too
    model = cli_run("model", "dog-breeds", "--data-dir", sample_dir, "--no-pretrained").output
    assert "total parameters: 21,8" in model  # resnet34 body + the lesson's head


def test_missing_and_mismatched_files(data_copy):
    comp = DogBreeds()
    labels = pd.read_csv(data_copy / "labels.csv")
    sample = pd.read_csv(data_copy / "sample_submission.csv")
    sample.drop(columns=["pug"]).to_csv(data_copy / "sample_submission.csv", index=False)
    with pytest.raises(HarnessError, match=r"sample_submission.csv: its columns .* missing \['pug'\]"):
        comp.load(data_copy, config())
    (data_copy / "sample_submission.csv").unlink()
    raw = comp.load(data_copy, config())  # the sample is rebuilt from test/
    assert list(raw.sample.columns) == list(sample.columns) and raw.sample["id"].tolist() == sample["id"].tolist()
    (data_copy / "train" / f"{labels['id'][3]}.jpg").unlink()
    with pytest.raises(HarnessError, match=f"1 image.*missing from .*train, first {labels['id'][3]}.jpg"):
        comp.load(data_copy, config())
    shutil.rmtree(data_copy / "train")
    with pytest.raises(HarnessError, match="train is missing"):
        comp.load(data_copy, config())


def test_corrupt_images_error_or_skip(cli_run, data_copy, capsys):
    comp = DogBreeds()
    labels = pd.read_csv(data_copy / "labels.csv")
    bad_train = data_copy / "train" / f"{labels['id'][0]}.jpg"
    bad_train.write_bytes(bad_train.read_bytes()[:200])  # truncated
    out = cli_run("train", "dog-breeds", "--data-dir", data_copy, "--no-pretrained", expect=2).output
    assert f"{bad_train}: cannot decode" in out and "corrupt_images" in out
    raw = comp.load(data_copy, config(**{"data.corrupt_images": "skip"}))
    assert len(raw.train_paths) == len(labels) - 1 and bad_train not in raw.train_paths
    assert "skipped 1 unreadable image(s)" in capsys.readouterr().err


def test_unreadable_test_image_gets_the_class_prior(data_copy):
    comp = DogBreeds()
    sample = pd.read_csv(data_copy / "sample_submission.csv")
    (data_copy / "test" / f"{sample['id'][5]}.jpg").write_bytes(b"not an image")
    cfg = config(**{"data.corrupt_images": "skip", "predict.tta": 0})
    raw = comp.load(data_copy, cfg)
    assert raw.test_readable.count(False) == 1
    prepared = comp.prepare(raw, cfg)
    model = comp.build_model(prepared.state, cfg)
    from harness.train import Learner

    learn = Learner(model, None, None, comp.loss_fn(cfg), comp.metrics(cfg), device="cpu")
    predictions = comp.predict(learn, prepared.state, raw, cfg)
    comp.check_submission(predictions.submission, raw)
    assert np.allclose(predictions.submission.iloc[5, 1:].to_numpy(float), prepared.state["class_freq"])


def test_submission_checks(sample_dir):
    comp = DogBreeds()
    raw = comp.load(sample_dir, config())
    good = raw.sample.copy()
    comp.check_submission(good, raw)
    with pytest.raises(HarnessError, match="do not sum to 1"):
        comp.check_submission(good.assign(beagle=good["beagle"] + 0.5), raw)
    with pytest.raises(HarnessError, match="columns"):
        comp.check_submission(good[["id", *reversed(good.columns[1:])]], raw)
    with pytest.raises(HarnessError, match="1 missing"):
        comp.check_submission(good.iloc[1:], raw)
    with pytest.raises(HarnessError, match="must lie in"):
        comp.check_submission(good.assign(beagle=-0.5, boxer=good["boxer"] + 0.75), raw)


def test_without_torchvision_says_which_extra_to_install(monkeypatch, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "torchvision", None)  # as if the `vision` extra were not installed
    with pytest.raises(HarnessError, match=r"pip install 'harness\[vision\]'"):
        DogBreeds().write_sample(tmp_path)


# ---------------------------------------------------------------------- checkpoints and resume
def fast_args(**overrides) -> list[str]:
    settings = {k: v for k, v in FAST.items() if k != "model.pretrained"} | overrides
    return ["--no-pretrained", *[a for k, v in settings.items() for a in ("--set", f"{k}={v}")]]


def full_model(n_classes=4) -> VisionModel:
    return VisionModel(n_classes, "resnet18", pretrained=False)


def test_sample_config_with_one_epoch_trains_and_checkpoints_hold_the_full_model(cli_run, workspace, sample_dir):
    # One head epoch of 3 batches: too few steps for torch's one-cycle (ZeroDivisionError before).
    out = cli_run("train", "dog-breeds", "--config", config_path("dog-breeds-sample"), "--epochs", "1",
                  "--data-dir", sample_dir, "--set", "data.image_size=32", "--set", "train.unfreeze_cycles=0",
                  "--set", "predict.tta=1").output
    assert "Traceback" not in out and "validation with TTA" in out
    (run_dir,) = (workspace / "runs" / "dog-breeds").iterdir()
    assert pd.read_csv(run_dir / "history.csv")["stage"].tolist() == [0]
    # Written while the head trained on cached activations, the checkpoints still hold body and head.
    for name in ("checkpoints/last.pt", "checkpoints/best.pt", "model.pt"):
        state = torch.load(run_dir / name, weights_only=True)
        full_model().load_state_dict(state["model"] if name.endswith("last.pt") else state, strict=True)
    assert (run_dir / "submission.csv").is_file()


class Killed(Exception):
    """Stands for the process being killed right after a checkpoint was written."""


class KillAfter(Callback):
    order = 35  # after Checkpoint (30) has written the epoch's checkpoint

    def __init__(self, fit_index: int, epoch: int):
        self.fit_index, self.epoch = fit_index, epoch

    def after_epoch(self, learn):
        if (learn.fit_index, learn.epoch) == (self.fit_index, self.epoch):
            raise Killed()


@pytest.mark.slow
@pytest.mark.parametrize("fit_index", [0, 1], ids=["head-on-cache", "unfrozen"])
def test_run_killed_in_a_stage_resumes_to_the_uninterrupted_weights(cli_run, workspace, sample_dir, fit_index):
    from harness.runs import runner
    from harness.runs.folder import Run

    comp = DogBreeds()
    cfg = config(**{"train.epochs": 2, "train.unfreeze_cycles": 2, "train.cycle_mult": 1, "predict.tta": 0})
    whole = runner.train(comp, cfg, sample_dir, workspace, echo=False)
    reference = torch.load(whole.path("model.pt"), weights_only=True)

    with pytest.raises(Killed):
        runner.train(comp, cfg, sample_dir, workspace, echo=False, callbacks=[KillAfter(fit_index, 0)])
    killed = Run.find(workspace, "dog-breeds", unfinished=True)
    assert not killed.finished
    checkpoint = torch.load(killed.checkpoint, weights_only=True)
    assert (checkpoint["fit_index"], checkpoint["epoch"]) == (fit_index, 0)
    full_model().load_state_dict(checkpoint["model"], strict=True)

    cli_run("train", "dog-breeds", "--resume", "--data-dir", sample_dir)
    resumed = Run.find(workspace, "dog-breeds", killed.id)
    assert resumed.finished
    assert pd.read_csv(resumed.path("history.csv"))["stage"].tolist() == [0, 0, 1, 1]
    final = torch.load(resumed.path("model.pt"), weights_only=True)
    # The same weights bit for bit: the model, optimizer, schedule, RNG and the loaders' shuffle
    # orders all continued where the killed run stopped.
    assert final.keys() == reference.keys()
    assert all(torch.equal(final[k], reference[k]) for k in reference)


# ---------------------------------------------------------------------- batches of one, single images
def test_last_training_batch_of_one_is_dropped_in_both_stages(cli_run, workspace, sample_dir):
    # 96 training images in batches of 19 leave one image over: BatchNorm cannot train on it.
    out = cli_run("train", "dog-breeds", *fast_args(**{"train.batch_size": 19, "train.epochs": 1,
                                                       "train.unfreeze_cycles": 1, "predict.tta": 0}),
                  "--data-dir", sample_dir).output
    assert "Traceback" not in out
    (run_dir,) = (workspace / "runs" / "dog-breeds").iterdir()
    assert pd.read_csv(run_dir / "history.csv")["stage"].tolist() == [0, 1]


def test_batch_size_larger_than_the_training_images_names_the_key(cli_run, workspace, sample_dir):
    out = cli_run("train", "dog-breeds", *fast_args(**{"train.batch_size": 97}), "--data-dir", sample_dir,
                  expect=2).output
    assert out.startswith("error: train.batch_size = 97 is larger than the 96 training") and out.count("\n") == 1
    out = cli_run("train", "dog-breeds", *fast_args(**{"train.batch_size": 1}), "--data-dir", sample_dir,
                  expect=2).output
    assert out.startswith("error: config: train.batch_size = 1 must be ≥ 2 (--set)") and out.count("\n") == 1
    assert not (workspace / "runs" / "dog-breeds").exists() or not any((workspace / "runs" / "dog-breeds").iterdir())


def test_breed_with_a_single_image_goes_to_training(cli_run, workspace, data_copy):
    labels = pd.read_csv(data_copy / "labels.csv")
    (data_copy / "train" / f"{labels['id'][0]}.jpg").rename(data_copy / "train" / "lonely.jpg")
    labels.loc[0, "id"], labels.loc[0, "breed"] = "lonely", "corgi"
    labels.to_csv(data_copy / "labels.csv", index=False)
    (data_copy / "sample_submission.csv").unlink()  # rebuilt from test/ with the new breed's column
    cfg = config(**{"data.valid_pct": 0.5})
    raw = DogBreeds().load(data_copy, cfg)
    prepared = DogBreeds().prepare(raw, cfg)
    assert data_copy / "train" / "lonely.jpg" in prepared.extra["train_paths"]
    assert data_copy / "train" / "lonely.jpg" not in prepared.extra["valid_paths"]
    result = cli_run("train", "dog-breeds", *fast_args(**{"train.epochs": 1, "train.unfreeze_cycles": 1,
                                                          "predict.tta": 0}), "--data-dir", data_copy)
    assert "note: 1 breed(s) have a single image (corgi): it goes to training, none to validation" in result.stderr
    (run_dir,) = (workspace / "runs" / "dog-breeds").iterdir()
    assert "corgi" in pd.read_csv(run_dir / "submission.csv").columns
