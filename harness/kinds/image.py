"""The image-classification kind: a pretrained CNN with the lesson's dropout head (fast.ai 2018, lessons 1-4).

Two layouts of the data folder, declared as ``data.layout`` (or inferred when ""):

- ``labels-csv`` (Kaggle's dog breeds): a labels CSV (``data.labels``, columns ``data.id`` and
  ``data.label``), the training images ``<images>/<id><ext>``, the test images ``<test>/<id><ext>`` and a
  sample submission (an id column, then one probability column per class, in sorted order);
- ``folders``: ``<images>/<class>/*.jpg`` (one folder per class) and ``<test>/*.jpg`` (ids = file stems).

Without a sample submission, the submission is the id and one probability column per class, in sorted
class order, for the test images found. The recipe, as the lesson's:

1. the backbone is frozen; its (pooled) activations for every train and validation image are
   computed once and cached on disk; the head trains on the cache at matrix speed;
2. optionally, the head trains on augmented images through the frozen backbone;
3. everything is unfrozen and fine-tuned with differential learning rates (SGDR) on augmented images;
4. predictions average the plain images and augmented copies (test-time augmentation).

A TOML competition (``kind = "image-classification"``) sets only the keys it changes: the kind's
defaults are the shipped ``competitions/dog-breeds.toml`` (less what a TOML infers: ``TOML_DEFAULTS``).
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from harness.config.loading import check_config, load_config, merged
from harness.config.schema import Choice, Flag, ListOf, Num, Rule, Text
from harness.data.files import check_file, check_no_duplicates, read_table
from harness.errors import HarnessError
from harness.host.competition import Predictions, Prepared
from harness.kinds.base import KindCompetition
from harness.progress import echo
from harness.scoring.submission import validate_submission
from harness.scoring.tasks import get_task
from harness.workspace import cache_dir
from harness_competitions import config_path as shipped_config

# torch is imported where a model or loader is made, so that config and file errors come first.
if TYPE_CHECKING:
    import torch
    from torch import nn

LAYOUTS = ("labels-csv", "folders")
# What a TOML competition leaves to the kind to find out, where dog breeds' TOML declares it.
TOML_DEFAULTS = {("data", "layout"): "", ("data", "sample_submission"): "",
                 ("data", "extensions"): [".jpg", ".jpeg", ".png"]}
# Top-level keys of a TOML competition that its config does not otherwise have.
TOML_TOP_KEYS = ("kind", "description", "kaggle_slug", "task")


class Layout(Rule):
    """data.layout: one of LAYOUTS, or "" for the one the files show."""

    def problem(self, key, value):
        if value in ("", *LAYOUTS):
            return None
        return key, value, ('must be "labels-csv" (a labels CSV and an image folder), "folders" (one per class) '
                            'or "" (inferred)')


class Name(Rule):
    """A file or folder name inside the data folder."""

    def problem(self, key, value):
        if isinstance(value, str) and value.strip():
            return None
        return key, value, "must be a file or folder name (in quotes) inside the data folder"


class Extension(Rule):
    """An entry of data.extensions: ".jpg" (or "jpg")."""

    def problem(self, key, value):
        if isinstance(value, str) and value.strip(".") and "/" not in value:
            return None
        return key, value, 'must be a file extension such as ".jpg"'


def log_loss_of_log_probs(log_probs, targets) -> float:
    """The model returns log-probabilities; Kaggle's log loss is on probabilities (clipped)."""
    from harness.scoring.metrics import log_loss_fn

    return log_loss_fn(np.exp(np.asarray(log_probs, np.float64)), targets)


@dataclass
class ImageData:
    train_paths: list[Path]
    labels: list[str]  # the class of each training image
    classes: list[str]  # sorted class names: the submission's columns
    test_ids: list[str] | None
    test_paths: list[Path] | None
    test_readable: list[bool] | None
    sample: pd.DataFrame | None  # the sample submission (built from the test ids if absent)
    data_dir: Path


def require_vision(name: str) -> None:
    """torchvision and Pillow are the optional `vision` extra: say so instead of a traceback."""
    try:
        import PIL  # noqa: F401
        import torchvision  # noqa: F401
    except ImportError as exc:
        raise HarnessError(f"{name} needs torchvision and Pillow ({exc}); install them with "
                           "pip install 'harness[vision]'") from None


def stratified_split(labels: np.ndarray, valid_pct: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and validation indices with each class split in the same proportion.

    Every class keeps at least one image for training, so a class with a single image goes to
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


def unknown_keys(config: dict, defaults: dict, path=()) -> list[str]:
    """Keys of ``config`` that ``defaults`` does not have (typos, or another kind's keys)."""
    found = []
    for key, value in config.items():
        here = (*path, key)
        if here == ("search",) or (not path and key in TOML_TOP_KEYS):
            continue
        if key not in defaults:
            found.append(".".join(here))
        elif isinstance(value, dict) and isinstance(defaults[key], dict):
            found += unknown_keys(value, defaults[key], here)
    return found


def extensions_of(d: dict) -> list[str]:
    """``data.extensions`` as lower-case suffixes with their dot: [".jpg", ".png"]."""
    return ["." + e.strip().lstrip(".").lower() for e in d["extensions"]]


def image_file(folder: Path, image_id: str, extensions: list[str]) -> Path:
    """The file of ``image_id`` in ``folder``: ``<id><ext>`` for the first extension that exists (or the
    id itself where it holds its extension); the first extension's name if none does."""
    for ext in extensions:
        path = folder / f"{image_id}{ext}"
        if path.is_file():
            return path
    if Path(image_id).suffix.lower() in extensions and (folder / image_id).is_file():
        return folder / image_id
    return folder / f"{image_id}{extensions[0]}"


def images_in(folder: Path, extensions: list[str]) -> list[Path]:
    """The image files directly in ``folder`` (by extension, any case), sorted by name."""
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in extensions and p.is_file()
                  and not p.name.startswith("."))


class ImageClassification(KindCompetition):
    kind = "image-classification"
    task = get_task("multiclass", "log_probabilities")  # the head ends in log-softmax
    # The kind's defaults: every key a TOML competition leaves out comes from here.
    defaults_path = shipped_config("dog-breeds")
    class_noun = "label"  # what a class is called in messages ("breed" for dog breeds)
    config_schema = {
        "data.layout": Layout(),
        "data.labels": Name(),
        "data.id": Name(),
        "data.label": Name(),
        "data.images": Name(),
        "data.test": Text(),  # "" = no test images
        "data.sample_submission": Text(),  # "" = the CSV whose name says sample or submission, if any
        "data.extensions": ListOf(Extension(), min_len=1),
        "data.corrupt_images": Choice("error", "skip"),
        # harness.models.vision.BACKBONES (not imported: torchvision is slow to load); a test keeps them equal
        "model.arch": Choice("resnet18", "resnet34", "resnet50", "resnext50_32x4d"),
        "model.pretrained": Flag(),
        "train.batch_size": Num(2, whole=True),  # the head's BatchNorm needs two images a batch
    }
    submission_range = (0.0, 1.0)
    submission_probabilities = True  # one probability per class, each row summing to 1

    from_toml = False  # True for a competition that a TOML with kind = "image-classification" makes

    def __init__(self, config_path: Path | None = None):
        super().__init__(config_path)
        if config_path is not None:
            self.from_toml = True
            if self.task.kind != "multiclass":
                raise HarnessError(f"{config_path}: task = {self.task.kind!r}: an image-classification competition "
                                   'is multiclass (two classes are a multiclass task too); set task = "multiclass"')
            self.task = get_task(self.task, "log_probabilities")

    # ------------------------------------------------------------------ config
    def kind_defaults(self) -> dict:
        """The shipped dog-breeds.toml; a TOML competition's layout and sample are found, not declared."""
        defaults = load_config(self.defaults_path, check=False)
        if self.from_toml:
            for (section, key), value in TOML_DEFAULTS.items():
                defaults[section][key] = value
        defaults["name"] = self.name
        return defaults

    def read_config(self, path) -> dict:
        """A config file on top of the kind's defaults, checked: a TOML competition's own file, or --config."""
        own = load_config(path, check=False)
        defaults = self.kind_defaults()
        if self.from_toml:  # nothing else would catch a misspelt key of a TOML competition
            unknown = unknown_keys(own, defaults)
            if unknown:
                raise HarnessError(f"{path}: unknown key(s) {', '.join(unknown)}; an image-classification "
                                   f"competition takes the keys of {self.defaults_path} (its defaults)")
        config = merged(defaults, own)
        if "search" in own:  # one search space, not entries to add to the default one
            config["search"] = copy.deepcopy(own["search"])
        if "label" in own.get("data", {}) and "target" not in own.get("validation", {}):
            config["validation"]["target"] = config["data"]["label"]  # stratify by the declared label column
        return check_config(config, path, self.config_schema)

    # ------------------------------------------------------------------ data
    def layout(self, data_dir: Path, d: dict) -> str:
        """``data.layout``, or the one the files show: a labels CSV, else one folder per class."""
        if d["layout"]:
            return d["layout"]
        images = data_dir / d["images"]
        if (data_dir / d["labels"]).exists():
            return "labels-csv"
        if images.is_dir() and any(p.is_dir() and not p.name.startswith(".") for p in images.iterdir()):
            return "folders"
        raise HarnessError(f"{data_dir}: found neither {d['labels']} (a labels CSV) nor class folders in {images}; "
                           f"set data.layout = \"labels-csv\" or \"folders\" and the names in [data] "
                           f"(labels, images, test)")

    def sample_path(self, data_dir: Path, d: dict) -> Path | None:
        """The sample submission: ``data.sample_submission``, else the one CSV whose name says sample or
        submission (None when there is none; a declared file may still be absent: it is built then)."""
        if d["sample_submission"]:
            return data_dir / d["sample_submission"]
        from harness.scoring.sample import find_sample

        return find_sample(data_dir)

    def missing_hint(self, d: dict, layout: str) -> str:
        """What the data folder must hold, e.g. "dog-breeds needs Kaggle's labels.csv, train/, test/ and ..."."""
        files = [d["labels"], f"{d['images']}/"] if layout == "labels-csv" else [f"{d['images']}/<class>/"]
        files += [f"{d['test']}/"] if d["test"] else []
        whose = "Kaggle's " if self.kaggle_slug else ""
        sample = f" (or `harness data {self.name} --sample`)" if self.has_sample else ""
        wanted = d["sample_submission"] or "a sample submission"
        return f"{self.name} needs {whose}{', '.join(files)} and {wanted}{sample}"

    @property
    def has_sample(self) -> bool:
        return type(self).write_sample is not ImageClassification.write_sample

    def check_raw(self, data_dir, config: dict | None = None):
        data_dir = Path(data_dir)
        d = (config or self.default_config())["data"]
        layout = self.layout(data_dir, d)
        ext = extensions_of(d)[0]
        needed = (d["labels"], d["images"]) if layout == "labels-csv" else (d["images"],)
        for name in needed:
            if not (data_dir / name).exists():
                raise HarnessError(f"{data_dir / name} is missing; {self.missing_hint(d, layout)}")
        if layout == "labels-csv":
            check_file(data_dir / d["labels"], what=f"CSV file ({d['id']},{d['label']})")
            check_folder(data_dir / d["images"], self.name, f"<{d['id']}>{ext} images")
        else:
            check_folder(data_dir / d["images"], self.name, f"class folders of {ext} images")
        if d["test"]:
            check_folder(data_dir / d["test"], self.name, f"<{d['id']}>{ext} images")
        sample = self.sample_path(data_dir, d)
        if sample is not None and sample.exists():
            check_file(sample, what="CSV file")

    def load(self, data_dir, config) -> ImageData:
        require_vision(self.name)
        from harness.data.images import scan_images

        data_dir = Path(data_dir)
        self.check_raw(data_dir, config)
        d = config["data"]
        on_error = d["corrupt_images"]
        if self.layout(data_dir, d) == "labels-csv":
            train_paths, labels = self.read_labels_csv(data_dir, d)
        else:
            train_paths, labels = self.read_class_folders(data_dir, d)
        readable = np.array(scan_images(train_paths, on_error, desc="checking train images"))
        classes = sorted(set(labels))
        train_paths = [p for p, ok in zip(train_paths, readable) if ok]
        labels = pd.Series(labels)[readable].tolist()

        sample, test_ids = None, None
        sample_path = self.sample_path(data_dir, d)
        test_dir = data_dir / d["test"] if d["test"] else None
        id_col = d["id"]
        if sample_path is not None and sample_path.exists():
            sample = read_table(sample_path, required=(id_col,), dtype={id_col: str})
            columns = list(sample.columns[1:])
            if sample.columns[0] != id_col or columns != classes:
                missing, extra = sorted(set(classes) - set(columns)), sorted(set(columns) - set(classes))
                source = d["labels"] if self.layout(data_dir, d) == "labels-csv" else f"{d['images']}/"
                if sample.columns[0] != id_col:
                    found = f"its first column is {sample.columns[0]!r}"
                elif missing or extra:
                    found = f"missing {missing[:3]}, unknown {extra[:3]}"
                else:  # the same classes in another order
                    first = next(i for i, (a, b) in enumerate(zip(columns, classes)) if a != b)
                    found = f"column {first + 2} is {columns[first]!r} where {classes[first]!r} belongs"
                raise HarnessError(f"{sample_path}: its columns should be {id_col} then the {len(classes)} "
                                   f"{self.class_noun}s of {source} in sorted order; {found}")
            # Kaggle's sample holds numbers in every cell; a blank one is a cut file, or not a sample.
            sample = read_table(sample_path, numeric=tuple(columns), dtype={id_col: str})
            check_ids(sample, sample_path, id_col)
            check_no_duplicates(sample, [id_col], sample_path)
            test_ids = sample[id_col].tolist()
            if test_dir is None:
                raise HarnessError(f"{sample_path} lists test images but data.test = \"\"; set data.test to "
                                   "the folder of the test images")
        elif test_dir is not None and test_dir.is_dir():
            exts = extensions_of(d)
            found = images_in(test_dir, exts)
            test_ids = sorted(p.stem for p in found)
            check_unique_stems(found, test_dir)
            if not test_ids:
                echo(f"note: {test_dir} holds no {', '.join(exts)} images and there is no sample submission: "
                     "no submission will be written", err=True)
            sample = pd.DataFrame({id_col: test_ids, **{c: 1.0 / len(classes) for c in classes}})
        test_paths = test_readable = None
        if test_ids:
            exts = extensions_of(d)
            test_paths = [image_file(test_dir, i, exts) for i in test_ids]
            listed_in = sample_path.name if sample_path is not None and sample_path.exists() else test_dir.name
            check_images_exist(test_paths, listed_in, test_dir, self.copy_hint, exts)
            test_readable = scan_images(test_paths, on_error, desc="checking test images")
        return ImageData(train_paths, labels, classes, test_ids or None, test_paths, test_readable, sample, data_dir)

    @property
    def copy_hint(self) -> str:
        return "copy Kaggle's images there" if self.kaggle_slug else "copy the images there"

    def read_labels_csv(self, data_dir: Path, d: dict) -> tuple[list[Path], list[str]]:
        """The training images and their classes from the labels CSV, in its row order."""
        id_col, label = d["id"], d["label"]
        labels_path = data_dir / d["labels"]
        labels = read_table(labels_path, required=(id_col, label), dtype={id_col: str, label: str})
        check_ids(labels, labels_path, id_col)
        check_no_duplicates(labels, [id_col], labels_path)
        blank = labels[label].isna() | (labels[label].str.strip() == "")
        if blank.any():
            noun = self.class_noun
            raise HarnessError(f"{labels_path}: {int(blank.sum())} row(s) without a {noun}, first at data row "
                               f"{int(blank.to_numpy().argmax()) + 1}{truncation_hint(labels_path, blank)}; "
                               f"give every image its {noun}")
        check_last_label(labels, labels_path, label, self.class_noun)
        images = data_dir / d["images"]
        exts = extensions_of(d)
        train_paths = [image_file(images, i, exts) for i in labels[id_col]]
        check_images_exist(train_paths, labels_path.name, images, self.copy_hint, exts)
        return train_paths, labels[label].tolist()

    def read_class_folders(self, data_dir: Path, d: dict) -> tuple[list[Path], list[str]]:
        """The training images of ``<images>/<class>/``, class by class (sorted), files sorted by name."""
        images = data_dir / d["images"]
        exts = extensions_of(d)
        folders = sorted(p for p in images.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not folders:
            raise HarnessError(f"{images} holds no class folders; put each class's images in {images}/<class>/ "
                               'or set data.layout = "labels-csv"')
        if len(folders) < 2:
            raise HarnessError(f"{images} holds one class folder ({folders[0].name}); a classifier needs at "
                               "least two classes")
        paths, labels = [], []
        for folder in folders:
            found = images_in(folder, exts)
            if not found:
                raise HarnessError(f"{folder}: a class folder with no {', '.join(exts)} images; add its images "
                                   "or remove the folder")
            paths += found
            labels += [folder.name] * len(found)
        return paths, labels

    # ------------------------------------------------------------------ preprocessing
    def fold_rows(self, raw: ImageData, config) -> pd.DataFrame:
        """The training images K folds are cut from (path and class, in the column data.label; stratified
        by it), in the labels' order less any skipped unreadable image. Stratified folds need every class
        in every fold's training rows, so a class with a single image stops here (the holdout split sends
        it to training)."""
        label = config["data"]["label"]
        rows = pd.DataFrame({"path": [str(p) for p in raw.train_paths], label: raw.labels})
        validation = config.get("validation", {})
        target = validation.get("target")
        if target and target not in rows.columns:
            raise HarnessError(f"validation.target = {target!r}: the image rows have the columns path and {label} "
                               f"(data.label); set validation.target = {label!r}")
        if validation.get("scheme") == "stratified":
            counts = rows[label].value_counts()
            alone = sorted(counts.index[counts < 2])
            if alone:
                noun = self.class_noun
                source = config["data"]["labels"] if self.layout(raw.data_dir, config["data"]) == "labels-csv" \
                    else f"{config['data']['images']}/"
                raise HarnessError(f"{len(alone)} {noun}(s) have a single training image ({', '.join(alone[:3])}"
                                   f"{', ...' if len(alone) > 3 else ''}): stratified folds need at least as many "
                                   f"images of each {noun} as folds; add images, drop the {noun} from {source}, "
                                   'use --set validation.scheme="kfold", or train without --folds')
        return rows

    def prepare(self, raw: ImageData, config, rows=None) -> Prepared:
        """Image loaders. ``rows`` = (training, validation) positions into ``fold_rows`` (the same order as
        ``raw.train_paths``) under K folds; None: the stratified holdout split by validation.split_seed."""
        from harness.data.images import eval_transform, image_loader, train_transform

        d, t = config["data"], config["train"]
        seed = int(config.get("seed", 0))
        code = {c: i for i, c in enumerate(raw.classes)}
        y = np.array([code[b] for b in raw.labels])
        if rows is None:
            from harness.data.folds import split_seed

            train_idx, valid_idx = stratified_split(y, d["valid_pct"], split_seed(config))
        else:
            train_idx, valid_idx = (np.asarray(r, dtype=np.int64) for r in rows)
        alone = [c for c, n in zip(raw.classes, np.bincount(y, minlength=len(raw.classes))) if n == 1]
        if alone and d["valid_pct"] > 0 and rows is None:
            echo(f"note: {len(alone)} {self.class_noun}(s) have a single image ({', '.join(alone[:3])}"
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
        require_vision(self.name)
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
            probs = self.tta(learn, extra["valid_paths"], config)
            targets = torch.tensor(extra["valid_y"])
            learn.metrics["log_loss_tta"] = log_loss_fn(probs, targets)
            learn.metrics["accuracy_tta"] = accuracy_fn(probs, targets)
            echo(f"validation with TTA ({n_aug} augmented copies): log_loss {learn.metrics['log_loss_tta']:.5f}, "
                 f"accuracy {learn.metrics['accuracy_tta']:.4f}")

    def tta(self, learn, paths, config) -> torch.Tensor:
        """Class probabilities for ``paths``: the plain image plus ``predict.tta`` augmented copies."""
        from harness.data.images import eval_transform, image_loader, predict_tta, train_transform

        d, size = config["data"], config["data"]["image_size"]

        def make_loader(augment):
            tf = train_transform(size, d["min_scale"]) if augment else eval_transform(size)
            return image_loader(paths, None, tf, 2 * config["train"]["batch_size"], num_workers=d["num_workers"],
                                draft_size=size)

        return predict_tta(learn, make_loader, config["predict"]["tta"], seed=int(config.get("seed", 0)))

    # ------------------------------------------------------------------ submission
    def predict(self, learn, state, raw: ImageData, config):
        if raw.test_ids is None:
            return None
        readable = np.array(raw.test_readable)
        probs = np.tile(np.array(state["class_freq"], dtype=np.float64), (len(raw.test_ids), 1))
        if readable.any():
            paths = [p for p, ok in zip(raw.test_paths, readable) if ok]
            probs[readable] = self.tta(learn, paths, config).double().numpy()
        if not readable.all():
            echo(f"warning: {int((~readable).sum())} unreadable test image(s) get the training class "
                 "frequencies as their prediction", err=True)
        probs /= probs.sum(axis=1, keepdims=True)
        submission = pd.DataFrame(probs, columns=state["classes"])
        submission.insert(0, raw.sample.columns[0], raw.test_ids)
        submission = submission[list(raw.sample.columns)]
        return Predictions(submission, np.log(np.clip(submission.iloc[:, 1:].to_numpy(dtype=np.float64), 1e-15, 1)))

    def submission_from_outputs(self, outputs, template, valid=None, config=None):
        """Probabilities from (averaged) log-probabilities, each row renormalised to sum to 1."""
        probs = np.exp(np.asarray(outputs, dtype=np.float64))
        submission = template.copy()
        submission[list(template.columns[1:])] = probs / probs.sum(axis=1, keepdims=True)
        return submission

    def check_submission(self, submission, raw: ImageData):
        validate_submission(submission, raw.sample, id_column=str(raw.sample.columns[0]),
                            value_range=self.submission_range, probabilities=self.submission_probabilities)

    def write_sample(self, data_dir, seed=0):
        raise HarnessError(f"{self.name} has no generated sample; give its files with "
                           f"`harness data {self.name} --from DIR`")


def check_folder(path: Path, name: str, what: str) -> None:
    """The image folders (when there) must be folders."""
    if path.exists() and not path.is_dir():
        raise HarnessError(f"{path} is a file; {name} expects a folder of {what} there")


def check_ids(frame: pd.DataFrame, path: Path, column: str = "id") -> None:
    """Every id names one image file: not blank, and no folder separators (it must stay inside its folder)."""
    ids = frame[column]
    bad = ids.isna() | (ids.str.strip() == "") | ids.str.contains(r"[/\\]", na=False)
    if bad.any():
        row = int(bad.to_numpy().argmax())
        raise HarnessError(f"{path}: {int(bad.sum())} row(s) with an empty {column} or one holding / or \\, first "
                           f"{ids.iloc[row]!r} at data row {row + 1}; each {column} is an image's file name "
                           "without its extension")


def check_unique_stems(paths: list[Path], folder: Path) -> None:
    """Test ids are file stems: two files of one stem (a.jpg, a.png) would be one id."""
    stems = pd.Series([p.stem for p in paths])
    dup = stems.duplicated()
    if dup.any():
        raise HarnessError(f"{folder}: {int(dup.sum())} image name(s) used twice with different extensions, first "
                           f"{stems[dup].iloc[0]!r}; keep one file per image")


def ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, 2)
        return f.read(1) in (b"\n", b"\r")


def truncation_hint(path: Path, bad_rows: pd.Series) -> str:
    """A note for a fault in the last row of a file that does not end with a line break: a cut file."""
    if bool(bad_rows.iloc[-1]) and not ends_with_newline(path):
        return " (the last row has no line break after it: the file looks truncated; copy it again)"
    return ""


def check_last_label(labels: pd.DataFrame, path: Path, column: str, noun: str) -> None:
    """A file cut inside its last class name leaves a class of one image that no other row has."""
    last = labels[column].iloc[-1]
    if (labels[column] == last).sum() == 1 and len(labels) > 1 and not ends_with_newline(path):
        raise HarnessError(f"{path}: the last row's {noun} {last!r} occurs nowhere else and has no line break after "
                           "it: the file looks truncated; copy it again")


def check_images_exist(paths: list[Path], listed_in: str, folder: Path, hint: str, extensions=(".jpg",)) -> None:
    """Every listed image is a file: say how many are missing (or are folders) and name the first (by
    each extension it was looked for with)."""
    bad = [p for p in paths if not p.is_file()]
    if not bad:
        return
    folders = [p for p in bad if p.is_dir()]
    if folders:
        kind = {".jpg": "JPEG", ".jpeg": "JPEG"}.get(folders[0].suffix.lower(), folders[0].suffix.lstrip(".").upper())
        raise HarnessError(f"{folders[0]} is a folder where an image should be ({len(folders)} such in {folder}); "
                           f"replace it with the {kind} file")
    first = bad[0].name
    if len(extensions) > 1 and first.endswith(extensions[0]):
        first = f"{first[:-len(extensions[0])]} ({', '.join(extensions[:-1])} or {extensions[-1]})"
    raise HarnessError(f"{len(bad)} image(s) listed in {listed_in} are missing from {folder}, first {first}; {hint}")


def activation_cache_dir(config) -> Path:
    """``data.cache_dir``, else <workspace>/cache/activations."""
    if config["data"]["cache_dir"]:
        return Path(config["data"]["cache_dir"])
    return cache_dir("activations")
