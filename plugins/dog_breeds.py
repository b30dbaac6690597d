"""Dog breed identification: a pretrained CNN with the lesson's dropout head (fast.ai 2018).

Kaggle's layout: labels.csv (id,breed), train/<id>.jpg, test/<id>.jpg and sample_submission.csv
(id plus one probability column per breed, in sorted order). The recipe, as the lesson's:

1. the backbone is frozen; its (pooled) activations for every train and validation image are
   computed once and cached on disk; the head trains on the cache at matrix speed;
2. optionally, the head trains on augmented images through the frozen backbone;
3. everything is unfrozen and fine-tuned with differential learning rates (SGDR) on augmented images;
4. predictions average the plain images and augmented copies (test-time augmentation).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np
import pandas as pd
import torch
from torch import nn

from competitions import config_path
from harness.competition import Competition, Predictions, Prepared
from harness.data.files import check_no_duplicates, read_table
from harness.data.loaders import TensorLoader
from harness.errors import HarnessError
from harness.hookspecs import hookimpl
from harness.metrics import Metric, accuracy, accuracy_fn, log_loss_fn
from harness.submission import validate_submission
from harness.workspace import cache_dir

# The model returns log-probabilities; Kaggle's log loss is on probabilities (clipped).
log_loss = Metric("log_loss", lambda log_probs, targets: log_loss_fn(np.exp(np.asarray(log_probs, np.float64)), targets))


@dataclass
class DogBreedsData:
    train_paths: list[Path]
    breeds: list[str]  # per training image
    classes: list[str]  # sorted breed names: the submission's columns
    test_ids: list[str] | None
    test_paths: list[Path] | None
    test_readable: list[bool] | None
    sample: pd.DataFrame | None  # the sample submission (built from the test ids if absent)
    data_dir: Path


def require_vision() -> None:
    """torchvision and Pillow are the optional `vision` extra: say so instead of a traceback."""
    try:
        import PIL  # noqa: F401
        import torchvision  # noqa: F401
    except ImportError as exc:
        raise HarnessError(f"dog-breeds needs torchvision and Pillow ({exc}); install them with "
                           "pip install 'harness[vision]'") from None


def stratified_split(labels: np.ndarray, valid_pct: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and validation indices with each class split in the same proportion."""
    rng = np.random.default_rng(seed)
    train, valid = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_valid = min(int(round(len(idx) * valid_pct)), len(idx) - 1)
        valid.extend(idx[:n_valid])
        train.extend(idx[n_valid:])
    return np.sort(np.array(train, dtype=int)), np.sort(np.array(valid, dtype=int))


class DogBreeds(Competition):
    name = "dog-breeds"
    kaggle_slug = "dog-breed-identification"
    description = "Dog breeds from photos: pretrained CNN, dropout head, precomputed activations (log loss)"
    config_path = config_path("dog-breeds")
    submission_range = (0.0, 1.0)
    submission_probabilities = True  # one probability per breed, each row summing to 1

    # ------------------------------------------------------------------ data
    def check_raw(self, data_dir):
        data_dir = Path(data_dir)
        for name in ("labels.csv", "train"):
            if not (data_dir / name).exists():
                raise HarnessError(f"{data_dir / name} is missing; dog-breeds needs Kaggle's labels.csv, train/, "
                                   "test/ and sample_submission.csv (or `harness data dog-breeds --sample`)")

    def load(self, data_dir, config) -> DogBreedsData:
        require_vision()
        from harness.data.images import scan_images

        data_dir = Path(data_dir)
        self.check_raw(data_dir)
        on_error = config["data"]["corrupt_images"]
        labels = read_table(data_dir / "labels.csv", required=("id", "breed"), dtype={"id": str, "breed": str})
        check_no_duplicates(labels, ["id"], data_dir / "labels.csv")
        if labels["breed"].isna().any():
            raise HarnessError(f"{data_dir / 'labels.csv'}: {int(labels['breed'].isna().sum())} row(s) without a breed")
        train_paths = [data_dir / "train" / f"{i}.jpg" for i in labels["id"]]
        _check_exist(train_paths, "labels.csv", data_dir / "train")
        readable = np.array(scan_images(train_paths, on_error, desc="checking train images"))
        train_paths = [p for p, ok in zip(train_paths, readable) if ok]
        breeds = labels["breed"][readable].tolist()
        classes = sorted(set(labels["breed"]))

        sample, test_ids = None, None
        sample_path = data_dir / "sample_submission.csv"
        if sample_path.exists():
            sample = read_table(sample_path, required=("id",), dtype={"id": str})
            columns = list(sample.columns[1:])
            if sample.columns[0] != "id" or columns != classes:
                missing, extra = sorted(set(classes) - set(columns)), sorted(set(columns) - set(classes))
                raise HarnessError(f"{sample_path}: its columns should be id then the {len(classes)} breeds of "
                                   f"labels.csv in sorted order; missing {missing[:3]}, unknown {extra[:3]}")
            test_ids = sample["id"].tolist()
        elif (data_dir / "test").is_dir():
            test_ids = sorted(p.stem for p in (data_dir / "test").glob("*.jpg"))
            sample = pd.DataFrame({"id": test_ids, **{c: 1.0 / len(classes) for c in classes}})
        test_paths = test_readable = None
        if test_ids:
            test_paths = [data_dir / "test" / f"{i}.jpg" for i in test_ids]
            _check_exist(test_paths, "sample_submission.csv", data_dir / "test")
            test_readable = scan_images(test_paths, on_error, desc="checking test images")
        return DogBreedsData(train_paths, breeds, classes, test_ids or None, test_paths, test_readable, sample,
                             data_dir)

    # ------------------------------------------------------------------ preprocessing
    def prepare(self, raw: DogBreedsData, config) -> Prepared:
        from harness.data.images import eval_transform, image_loader, train_transform

        d, t = config["data"], config["train"]
        seed = int(config.get("seed", 0))
        code = {c: i for i, c in enumerate(raw.classes)}
        y = np.array([code[b] for b in raw.breeds])
        train_idx, valid_idx = stratified_split(y, d["valid_pct"], seed)
        paths = np.array(raw.train_paths, dtype=object)
        counts = np.bincount(y[train_idx], minlength=len(raw.classes))
        state = {"classes": raw.classes, "class_freq": (counts / counts.sum()).tolist(),
                 "n_train": len(train_idx), "n_valid": len(valid_idx)}
        size, workers = d["image_size"], d["num_workers"]
        extra = {"train_paths": list(paths[train_idx]), "train_y": y[train_idx].tolist(),
                 "valid_paths": list(paths[valid_idx]), "valid_y": y[valid_idx].tolist()}
        train_dl = image_loader(extra["train_paths"], extra["train_y"], train_transform(size, d["min_scale"]),
                                t["batch_size"], shuffle=True, num_workers=workers, seed=seed, draft_size=size)
        valid_dl = None
        if len(valid_idx):
            valid_dl = image_loader(extra["valid_paths"], extra["valid_y"], eval_transform(size), t["batch_size"],
                                    num_workers=workers, draft_size=size)
        return Prepared(train_dl, valid_dl, state, extra)

    # ------------------------------------------------------------------ model
    def build_model(self, state, config) -> nn.Module:
        require_vision()
        from harness.models.vision import VisionModel

        m = config["model"]
        return VisionModel(len(state["classes"]), m["arch"], m["pretrained"], m["ps"], m["xtra_fc"])

    def layer_groups(self, model):
        return model.layer_groups()

    def loss_fn(self, config):
        return nn.NLLLoss()

    def metrics(self, config):
        return [log_loss, accuracy]

    # ------------------------------------------------------------------ the recipe
    def train(self, learn, config) -> None:
        from harness.data.images import eval_transform, precompute_activations
        from harness.models.vision import FeatureExtractor

        d, t = config["data"], config["train"]
        prepared, model = learn.prepared, learn.model
        extra, size = prepared.extra, d["image_size"]

        # 1. The head on cached activations of the frozen backbone.
        learn.freeze()
        cache_root = activation_cache_dir(config)
        extractor = FeatureExtractor(model)
        common = dict(cache_root=cache_root, model_name=config["model"]["arch"], device=learn.device,
                      batch_size=t["batch_size"], num_workers=d["num_workers"], draft_size=size)
        # One pass over train and valid images: the cache file is read and written once.
        n_train = len(extra["train_paths"])
        acts, cache = precompute_activations(extractor, extra["train_paths"] + extra["valid_paths"],
                                             eval_transform(size), **common)
        train_acts, valid_acts = acts[:n_train], acts[n_train:]
        click.echo(f"activations: {len(acts)} images, {cache.hits} reused from {cache.folder}")
        seed = int(config.get("seed", 0))
        head_train = TensorLoader(train_acts, torch.tensor(extra["train_y"]), t["batch_size"], shuffle=True, seed=seed)
        head_valid = None
        if len(valid_acts):
            head_valid = TensorLoader(valid_acts, torch.tensor(extra["valid_y"]), 4 * t["batch_size"])
        images = (learn.train_dl, learn.valid_dl)
        learn.model, learn.train_dl, learn.valid_dl = model.head, head_train, head_valid
        try:
            learn.fit(t["epochs"], t["lr"], schedule=t["schedule"], pct_start=t["pct_start"])
        finally:
            learn.model, (learn.train_dl, learn.valid_dl) = model, images

        # 2. Optionally, the head on augmented images through the frozen backbone.
        if t["frozen_epochs"]:
            learn.fit(t["frozen_epochs"], t["lr"], schedule="sgdr", cycle_len=1)

        # 3. Unfreeze: fine-tune everything with differential learning rates, early layers slowest.
        if t["unfreeze_cycles"]:
            learn.unfreeze()
            learn.fit(t["unfreeze_cycles"], list(t["unfreeze_lrs"]), schedule="sgdr",
                      cycle_len=t["cycle_len"], cycle_mult=t["cycle_mult"])

        # The validation score with test-time augmentation, beside the plain one.
        n_aug = config["predict"]["tta"]
        if n_aug and extra["valid_paths"]:
            probs = self._tta(learn, extra["valid_paths"], config)
            targets = torch.tensor(extra["valid_y"])
            learn.metrics["log_loss_tta"] = log_loss_fn(probs, targets)
            learn.metrics["accuracy_tta"] = accuracy_fn(probs, targets)
            click.echo(f"validation with TTA ({n_aug} augmented copies): log_loss {learn.metrics['log_loss_tta']:.5f}, "
                       f"accuracy {learn.metrics['accuracy_tta']:.4f}")

    def _tta(self, learn, paths, config) -> torch.Tensor:
        """Class probabilities for ``paths``: the plain image plus ``predict.tta`` augmented copies."""
        from harness.data.images import eval_transform, image_loader, predict_tta, train_transform

        d, size = config["data"], config["data"]["image_size"]

        def make_loader(augment):
            tf = train_transform(size, d["min_scale"]) if augment else eval_transform(size)
            return image_loader(paths, None, tf, 2 * config["train"]["batch_size"], num_workers=d["num_workers"],
                                draft_size=size)

        return predict_tta(learn, make_loader, config["predict"]["tta"], seed=int(config.get("seed", 0)))

    # ------------------------------------------------------------------ submission
    def predict(self, learn, state, raw: DogBreedsData, config):
        if raw.test_ids is None:
            return None
        readable = np.array(raw.test_readable)
        probs = np.tile(np.array(state["class_freq"], dtype=np.float64), (len(raw.test_ids), 1))
        if readable.any():
            paths = [p for p, ok in zip(raw.test_paths, readable) if ok]
            probs[readable] = self._tta(learn, paths, config).double().numpy()
        if not readable.all():
            click.echo(f"warning: {int((~readable).sum())} unreadable test image(s) get the training class "
                       "frequencies as their prediction", err=True)
        probs /= probs.sum(axis=1, keepdims=True)
        submission = pd.DataFrame(probs, columns=state["classes"])
        submission.insert(0, "id", raw.test_ids)
        submission = submission[list(raw.sample.columns)]
        return Predictions(submission, np.log(np.clip(submission.iloc[:, 1:].to_numpy(dtype=np.float64), 1e-15, 1)))

    def submission_from_outputs(self, outputs, template):
        """Probabilities from (averaged) log-probabilities, each row renormalised to sum to 1."""
        probs = np.exp(np.asarray(outputs, dtype=np.float64))
        submission = template.copy()
        submission[list(template.columns[1:])] = probs / probs.sum(axis=1, keepdims=True)
        return submission

    def check_submission(self, submission, raw: DogBreedsData):
        validate_submission(submission, raw.sample, value_range=self.submission_range,
                            probabilities=self.submission_probabilities)

    # ------------------------------------------------------------------ sample data
    def write_sample(self, data_dir, seed=0, n_breeds=4, n_per_breed=40, n_test=40, size=64):
        require_vision()
        from plugins._dog_breeds_sample import write_sample

        write_sample(Path(data_dir), seed, n_breeds, n_per_breed, n_test, size)


def _check_exist(paths: list[Path], listed_in: str, folder: Path) -> None:
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise HarnessError(f"{len(missing)} image(s) listed in {listed_in} are missing from {folder}, first "
                           f"{missing[0].name}; copy Kaggle's images there")


def activation_cache_dir(config) -> Path:
    """``data.cache_dir``, else <workspace>/cache/activations."""
    if config["data"]["cache_dir"]:
        return Path(config["data"]["cache_dir"])
    return cache_dir("activations")


@hookimpl
def register_competitions(register):
    register(DogBreeds())
