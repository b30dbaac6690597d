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

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from harness_competitions import config_path
from harness.host.competition import Competition, Predictions, Prepared
from harness.config.schema import Choice, Flag, Num
from harness.data.files import check_file, check_no_duplicates, read_table
from harness.errors import HarnessError
from harness.scoring.tasks import get_task
from harness.host.hookspecs import hookimpl
from harness.progress import echo
from harness.scoring.submission import validate_submission
from harness.workspace import cache_dir

# torch is imported where a model or loader is made, so that config and file errors come first.
if TYPE_CHECKING:
    import torch
    from torch import nn


def log_loss_of_log_probs(log_probs, targets) -> float:
    """The model returns log-probabilities; Kaggle's log loss is on probabilities (clipped)."""
    from harness.scoring.metrics import log_loss_fn

    return log_loss_fn(np.exp(np.asarray(log_probs, np.float64)), targets)


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
    """Train and validation indices with each class split in the same proportion.

    Every class keeps at least one image for training, so a breed with a single image goes to
    training and has none in validation.
    """
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
    task = get_task("multiclass", "log_probabilities")  # the head ends in log-softmax
    config_schema = {
        "data.corrupt_images": Choice("error", "skip"),
        # harness.models.vision.BACKBONES (not imported: torchvision is slow to load); a test keeps them equal
        "model.arch": Choice("resnet18", "resnet34", "resnet50", "resnext50_32x4d"),
        "model.pretrained": Flag(),
        "train.batch_size": Num(2, whole=True),  # the head's BatchNorm needs two images a batch
    }
    submission_range = (0.0, 1.0)
    submission_probabilities = True  # one probability per breed, each row summing to 1

    # ------------------------------------------------------------------ data
    def check_raw(self, data_dir):
        data_dir = Path(data_dir)
        for name in ("labels.csv", "train"):
            if not (data_dir / name).exists():
                raise HarnessError(f"{data_dir / name} is missing; dog-breeds needs Kaggle's labels.csv, train/, "
                                   "test/ and sample_submission.csv (or `harness data dog-breeds --sample`)")
        check_file(data_dir / "labels.csv", what="CSV file (id,breed)")
        for name in ("train", "test"):
            check_folder(data_dir / name)
        if (data_dir / "sample_submission.csv").exists():
            check_file(data_dir / "sample_submission.csv", what="CSV file")

    def load(self, data_dir, config) -> DogBreedsData:
        require_vision()
        from harness.data.images import scan_images

        data_dir = Path(data_dir)
        self.check_raw(data_dir)
        on_error = config["data"]["corrupt_images"]
        labels_path = data_dir / "labels.csv"
        labels = read_table(labels_path, required=("id", "breed"), dtype={"id": str, "breed": str})
        check_ids(labels, labels_path)
        check_no_duplicates(labels, ["id"], labels_path)
        blank = labels["breed"].isna() | (labels["breed"].str.strip() == "")
        if blank.any():
            raise HarnessError(f"{labels_path}: {int(blank.sum())} row(s) without a breed, first at data row "
                               f"{int(blank.to_numpy().argmax()) + 1}{truncation_hint(labels_path, blank)}; "
                               "give every image its breed")
        check_last_breed(labels, labels_path)
        train_paths = [data_dir / "train" / f"{i}.jpg" for i in labels["id"]]
        check_images_exist(train_paths, labels_path.name, data_dir / "train")
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
            # Kaggle's sample holds numbers in every cell; a blank one is a cut file, or not a sample.
            sample = read_table(sample_path, numeric=tuple(columns), dtype={"id": str})
            check_ids(sample, sample_path)
            check_no_duplicates(sample, ["id"], sample_path)
            test_ids = sample["id"].tolist()
        elif (data_dir / "test").is_dir():
            test_ids = sorted(p.stem for p in (data_dir / "test").glob("*.jpg"))
            if not test_ids:
                echo(f"note: {data_dir / 'test'} holds no .jpg images and there is no sample_submission.csv: "
                     "no submission will be written", err=True)
            sample = pd.DataFrame({"id": test_ids, **{c: 1.0 / len(classes) for c in classes}})
        test_paths = test_readable = None
        if test_ids:
            test_paths = [data_dir / "test" / f"{i}.jpg" for i in test_ids]
            check_images_exist(test_paths, sample_path.name, data_dir / "test")
            test_readable = scan_images(test_paths, on_error, desc="checking test images")
        return DogBreedsData(train_paths, breeds, classes, test_ids or None, test_paths, test_readable, sample,
                             data_dir)

    # ------------------------------------------------------------------ preprocessing
    def fold_rows(self, raw: DogBreedsData, config) -> pd.DataFrame:
        """The training images K folds are cut from (path, breed; stratified by breed), in labels.csv's
        order less any skipped unreadable image. Stratified folds need every breed in every fold's
        training rows, so a breed with a single image stops here (the holdout split sends it to training)."""
        rows = pd.DataFrame({"path": [str(p) for p in raw.train_paths], "breed": raw.breeds})
        if config.get("validation", {}).get("scheme") == "stratified":
            counts = rows["breed"].value_counts()
            alone = sorted(counts.index[counts < 2])
            if alone:
                raise HarnessError(f"{len(alone)} breed(s) have a single training image ({', '.join(alone[:3])}"
                                   f"{', ...' if len(alone) > 3 else ''}): stratified folds need at least as many "
                                   "images of each breed as folds; add images, drop the breed from labels.csv, "
                                   'use --set validation.scheme="kfold", or train without --folds')
        return rows

    def prepare(self, raw: DogBreedsData, config, rows=None) -> Prepared:
        """Image loaders. ``rows`` = (training, validation) positions into ``fold_rows`` (the same order as
        ``raw.train_paths``) under K folds; None: the stratified holdout split by validation.split_seed."""
        from harness.data.images import eval_transform, image_loader, train_transform

        d, t = config["data"], config["train"]
        seed = int(config.get("seed", 0))
        code = {c: i for i, c in enumerate(raw.classes)}
        y = np.array([code[b] for b in raw.breeds])
        if rows is None:
            from harness.data.folds import split_seed

            train_idx, valid_idx = stratified_split(y, d["valid_pct"], split_seed(config))
        else:
            train_idx, valid_idx = (np.asarray(r, dtype=np.int64) for r in rows)
        alone = [c for c, n in zip(raw.classes, np.bincount(y, minlength=len(raw.classes))) if n == 1]
        if alone and d["valid_pct"] > 0 and rows is None:
            echo(f"note: {len(alone)} breed(s) have a single image ({', '.join(alone[:3])}"
                 f"{', ...' if len(alone) > 3 else ''}): it goes to training, none to validation", err=True)
        from harness.data.loaders import check_batch_size

        check_batch_size(len(train_idx), t["batch_size"])  # at least 2: config_schema
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
        from torch import nn

        return nn.NLLLoss()

    def metrics(self, config):
        from harness.scoring.metrics import Metric, accuracy

        return [Metric("log_loss", log_loss_of_log_probs), accuracy]

    # ------------------------------------------------------------------ the recipe
    def train(self, ctx) -> None:
        import torch

        from harness.data.images import eval_transform, precompute_activations
        from harness.data.loaders import TensorLoader
        from harness.scoring.metrics import accuracy_fn, log_loss_fn
        from harness.models.vision import FeatureExtractor
        from harness.train.schedules import DEFAULT_MOMS

        learn, config, prepared = ctx.learn, ctx.config, ctx.prepared
        d, t = config["data"], config["train"]
        model = learn.model
        extra, size = prepared.extra, d["image_size"]
        moms = tuple(t.get("moms", DEFAULT_MOMS))  # one-cycle's beta1: start, peak rate, end

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
        echo(f"activations: {len(acts)} images, {cache.hits} reused from {cache.folder}")
        seed, bs = int(config.get("seed", 0)), t["batch_size"]
        # A training loader: like the image loader, it drops a last batch of one row (BatchNorm cannot train on it).
        head_train = TensorLoader(train_acts, torch.tensor(extra["train_y"]), bs, shuffle=True, seed=seed,
                                  drop_last_single=True)
        head_valid = None
        if len(valid_acts):
            head_valid = TensorLoader(valid_acts, torch.tensor(extra["valid_y"]), 4 * bs)
        # The Learner still trains the whole model (only the head runs, on the cached inputs), so its
        # checkpoints, checkpoints/last.pt and best.pt, hold the full model state at every stage.
        with learn.using_loaders(head_train, head_valid), model.cached_features():
            learn.fit(t["epochs"], t["lr"], schedule=t["schedule"], pct_start=t["pct_start"], moms=moms)

        # 2. Optionally, the head on augmented images through the frozen backbone.
        if t["frozen_epochs"]:
            learn.fit(t["frozen_epochs"], t["lr"], schedule="sgdr", cycle_len=1, moms=moms)

        # 3. Unfreeze: fine-tune everything with differential learning rates, early layers slowest.
        if t["unfreeze_cycles"]:
            learn.unfreeze()
            learn.fit(t["unfreeze_cycles"], list(t["unfreeze_lrs"]), schedule="sgdr",
                      cycle_len=t["cycle_len"], cycle_mult=t["cycle_mult"], moms=moms)

        # The validation score with test-time augmentation, beside the plain one.
        n_aug = config["predict"]["tta"]
        if n_aug and extra["valid_paths"]:
            probs = self._tta(learn, extra["valid_paths"], config)
            targets = torch.tensor(extra["valid_y"])
            learn.metrics["log_loss_tta"] = log_loss_fn(probs, targets)
            learn.metrics["accuracy_tta"] = accuracy_fn(probs, targets)
            echo(f"validation with TTA ({n_aug} augmented copies): log_loss {learn.metrics['log_loss_tta']:.5f}, "
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
            echo(f"warning: {int((~readable).sum())} unreadable test image(s) get the training class "
                 "frequencies as their prediction", err=True)
        probs /= probs.sum(axis=1, keepdims=True)
        submission = pd.DataFrame(probs, columns=state["classes"])
        submission.insert(0, "id", raw.test_ids)
        submission = submission[list(raw.sample.columns)]
        return Predictions(submission, np.log(np.clip(submission.iloc[:, 1:].to_numpy(dtype=np.float64), 1e-15, 1)))

    def submission_from_outputs(self, outputs, template, valid=None, config=None):
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
        from harness_plugins.dog_breeds.sample import write_sample

        write_sample(Path(data_dir), seed, n_breeds, n_per_breed, n_test, size)


def check_folder(path: Path) -> None:
    """``train`` and ``test`` (when there) must be folders of images."""
    if path.exists() and not path.is_dir():
        raise HarnessError(f"{path} is a file; dog-breeds expects a folder of <id>.jpg images there")


def check_ids(frame: pd.DataFrame, path: Path) -> None:
    """Every id names one image file: not blank, and no folder separators (it must stay inside train/ or test/)."""
    ids = frame["id"]
    bad = ids.isna() | (ids.str.strip() == "") | ids.str.contains(r"[/\\]", na=False)
    if bad.any():
        row = int(bad.to_numpy().argmax())
        raise HarnessError(f"{path}: {int(bad.sum())} row(s) with an empty id or one holding / or \\, first "
                           f"{ids.iloc[row]!r} at data row {row + 1}; each id is an image's file name without .jpg")


def ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, 2)
        return f.read(1) in (b"\n", b"\r")


def truncation_hint(path: Path, bad_rows: pd.Series) -> str:
    """A note for a fault in the last row of a file that does not end with a line break: a cut file."""
    if bool(bad_rows.iloc[-1]) and not ends_with_newline(path):
        return " (the last row has no line break after it: the file looks truncated; copy it again)"
    return ""


def check_last_breed(labels: pd.DataFrame, path: Path) -> None:
    """A file cut inside its last breed name leaves a breed of one image that no other row has."""
    last = labels["breed"].iloc[-1]
    if (labels["breed"] == last).sum() == 1 and len(labels) > 1 and not ends_with_newline(path):
        raise HarnessError(f"{path}: the last row's breed {last!r} occurs nowhere else and has no line break after "
                           "it: the file looks truncated; copy it again")


def check_images_exist(paths: list[Path], listed_in: str, folder: Path) -> None:
    """Every listed image is a file: say how many are missing (or are folders) and name the first."""
    bad = [p for p in paths if not p.is_file()]
    if not bad:
        return
    folders = [p for p in bad if p.is_dir()]
    if folders:
        raise HarnessError(f"{folders[0]} is a folder where an image should be ({len(folders)} such in {folder}); "
                           "replace it with the JPEG file")
    raise HarnessError(f"{len(bad)} image(s) listed in {listed_in} are missing from {folder}, first "
                       f"{bad[0].name}; copy Kaggle's images there")


def activation_cache_dir(config) -> Path:
    """``data.cache_dir``, else <workspace>/cache/activations."""
    if config["data"]["cache_dir"]:
        return Path(config["data"]["cache_dir"])
    return cache_dir("activations")


@hookimpl
def register_competitions(register):
    register(DogBreeds())
