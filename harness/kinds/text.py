"""The text-classification kind: texts with a label each, classified by the ULMFiT route or NB-SVM.

``model.kind = "awd-lstm"`` (default): the texts are tokenized (cached), a language model is trained
(or fine-tuned from ``lm.pretrained``) on all the text and saved as the run's ``lm.pt``, then its encoder
is fine-tuned as the classifier with gradual unfreezing (harness.kinds.text_ulmfit). ``model.kind =
"nbsvm"``: NB-SVM on hashed word uni+bigrams, fitted in seconds; with more than two classes it fits one
NB-SVM per class against the rest. The task is binary (one logit per text) or multiclass (one per class).

The data (harness.kinds.text_data) is a CSV/TSV with a text and a label column, or a folder per label;
a TOML competition names its files and columns in [data], and the kind's defaults (the shipped
imdb.toml's settings, which IMDB's figures were measured with, plus the readers' keys) fill in every
key it leaves out. The submission takes its shape from the sample submission when there is one.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click
import numpy as np
import pandas as pd

from harness.config.loading import load_config, merged
from harness.config.schema import (COUNT, NON_NEGATIVE, OPTIONAL_COUNT, POSITIVE, Choice, Flag, ListOf, Num, Rule,
                                   Text)
from harness.errors import HarnessError
from harness.kinds.base import KindCompetition
from harness.kinds.text_data import LAYOUTS, TextData, TextSource, check_source, read, sorted_classes, source_from_config
from harness.scoring.submission import validate_submission
from harness.scoring.tasks import get_task
from harness_competitions import config_path as shipped_config

# torch is imported where a model is made or run, so that config and file errors come first.
if TYPE_CHECKING:
    from torch import nn

MODEL_KINDS = ("awd-lstm", "nbsvm")
TASKS = ("binary", "multiclass")
FORMATS = ("probabilities", "labels", "class_probabilities")

# The keys of the readers and the submission, which a TOML competition may leave out. The settings
# of the models and their training come from the shipped imdb.toml (``TextClassification.text_defaults``).
READER_DEFAULTS = {
    "data": {
        "layout": "",  # "csv" | "folders"; "" = folders if <data>/train is a folder, else csv
        "train": "",  # csv: a file or a glob of parts ("" = train.csv, .tsv, .csv.gz ...); folders: "" = train
        "test": "",  # "" = test.csv ... (csv) or test/ (folders) where there is one
        "text": "text",  # csv: the column of texts
        "label": "label",  # csv: the column of labels
        "id": "id",  # csv: the id column ("" = row numbers); test files must have it
        "classes": [],  # the classes in code order ([] = the sorted labels); binary: the second is positive
        "unsup": "",  # unlabelled texts for the language model: a file (csv) or a folder (folders)
        "empty_texts": "skip",  # blank training texts: "skip" (with a count) or "error"
        "sample_submission": "",  # the sample submission, whose ids, columns and order the submission takes
    },
    "submission": {
        "format": "",  # probabilities | labels | class_probabilities; "" = from the sample and the task
        "columns": [],  # the prediction columns ([] = the sample's, else the label column or the classes)
        "id_column": "",  # "" = the sample's first column, else data.id (or "id")
    },
}


class OneOf(Rule):
    """One of ``values``, or "" (inferred)."""

    def __init__(self, *values):
        self.values = values

    def problem(self, key, value):
        if value in ("", *self.values):
            return None
        return key, value, f"must be {' or '.join(map(repr, self.values))} (or \"\" to infer it)"


class ClassNames(Rule):
    def problem(self, key, value):
        ok = isinstance(value, list) and all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in value)
        return None if ok else (key, value, 'must be a list of class names (strings or whole numbers), e.g. ["neg", "pos"]')


@dataclass
class SubmissionFormat:
    id_column: str
    columns: list[str]
    format: str  # one of FORMATS


def probability(logits) -> np.ndarray:
    from scipy.special import expit  # the logistic function, overflow-safe

    return expit(np.asarray(logits, dtype=np.float32))


def class_probabilities(logits) -> np.ndarray:
    from scipy.special import softmax

    return softmax(np.asarray(logits, dtype=np.float64), axis=1)


def blend(net_logits: np.ndarray, nb_logits: np.ndarray) -> np.ndarray:
    """The logit of the averaged probabilities (binary), or the log of the averaged class probabilities."""
    if np.ndim(net_logits) == 2:
        p = (class_probabilities(net_logits) + class_probabilities(nb_logits)) / 2
        return np.log(np.clip(p, 1e-7, 1)).astype(np.float32)
    p = (probability(net_logits) + probability(nb_logits)) / 2
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return np.log(p / (1 - p)).astype(np.float32)


def cross_entropy_of_codes(pred, target):
    """Multiclass loss: the loaders carry class codes as floats."""
    import torch.nn.functional as F

    return F.cross_entropy(pred, target.long())


class TextClassification(KindCompetition):
    kind = "text-classification"
    description = "text classification: AWD-LSTM language model + ULMFiT classifier, or NB-SVM"
    task = get_task("binary")
    noun = "text"  # what messages call one text
    # Keys the shared schema (harness.config.schema) leaves to this kind.
    config_schema = {
        "kind": Choice("text-classification"),
        "task": Choice(*TASKS),
        "description": Text(),
        "kaggle_slug": Text(),
        "data.layout": OneOf(*LAYOUTS),
        "data.train": Text(),
        "data.test": Text(),
        "data.text": Text(),
        "data.label": Text(),
        "data.id": Text(),
        "data.classes": ClassNames(),
        "data.unsup": Text(),
        "data.empty_texts": Choice("skip", "error"),
        "data.sample_submission": Text(),
        "data.lm_unsup": Flag(),
        "data.lm_test": Flag(),
        "submission.format": OneOf(*FORMATS),
        "submission.columns": ListOf(Text()),
        "submission.id_column": Text(),
        "text.max_vocab": COUNT,
        "text.min_freq": COUNT,
        "text.max_len": OPTIONAL_COUNT,  # 0: the whole text
        "text.cache_dir": Text(),
        "model.kind": Choice(*MODEL_KINDS),
        # harness.models.awd_lstm.SIZES (not imported: it imports torch); a test keeps them equal
        "model.size": Choice("cpu", "lesson", "ulmfit", "ulmfit-v1"),
        "model.emb_sz": OPTIONAL_COUNT,  # 0: from model.size
        "model.n_hid": OPTIONAL_COUNT,
        "model.n_layers": OPTIONAL_COUNT,
        "model.drop_mult": Num(0, 2, hi_open=True),  # scales dropouts up to 0.5, which must stay below 1
        "model.head_hidden": COUNT,
        "model.grad_len": COUNT,  # gradients through a text's last grad_len tokens (fastai's max_len)
        "model.blend_nbsvm": Flag(),
        "nbsvm.n_features": COUNT,
        "nbsvm.ngram_max": COUNT,
        "nbsvm.C": POSITIVE,
        "lm.pretrained": Text(),
        "lm.pretrained_itos": Text(),  # "" = itos_wt103.pkl beside fast.ai's weights
        "lm.epochs": OPTIONAL_COUNT,  # 0 skips language-model training
        "lm.bptt": COUNT,
        "lm.max_tokens": OPTIONAL_COUNT,
        "lm.adaptive_cutoffs": ListOf(COUNT, increasing=True),
        "lm.alpha": NON_NEGATIVE,
        "lm.beta": NON_NEGATIVE,
    }

    def __init__(self, config_path: Path | None = None):
        super().__init__(config_path)
        if self.task.kind not in TASKS:
            raise HarnessError(f"{config_path}: task = {self.task.kind!r}: a text-classification competition is "
                               "binary or multiclass")
        self.loaded_classes: list[str] = []  # the classes of the data last read (blends of label submissions)

    # ------------------------------------------------------------------ config
    def text_defaults(self) -> dict:
        """The settings every text competition starts from: the shipped imdb.toml's, but its name."""
        config = load_config(shipped_config("imdb"), check=False)
        config.pop("name", None)
        return config

    def kind_defaults(self) -> dict:
        return merged(self.text_defaults(), {"name": self.name, **READER_DEFAULTS})

    # ------------------------------------------------------------------ data
    def source(self, data_dir, config) -> TextSource:
        """Where this competition's texts are: the [data] section's files and columns."""
        return source_from_config(data_dir, config["data"], self.noun)

    def check_raw(self, data_dir):
        check_source(self.source(Path(data_dir), self.default_config()))

    def write_sample(self, data_dir, seed=0):
        raise HarnessError(f"{self.name} has no generated sample; give its files with "
                           f"`harness data {self.name} --from DIR`")

    def load(self, data_dir, config) -> TextData:
        data = read(self.source(Path(data_dir), config))
        if self.task.kind == "binary" and len(data.classes) != 2:
            raise HarnessError(f"{data.data_dir}: task = \"binary\" but the training labels hold {len(data.classes)} "
                               f"classes ({', '.join(data.classes[:6])}); set task = \"multiclass\" in "
                               f"{self.config_path or 'the config'}")
        sample = config["data"].get("sample_submission", "")
        if sample:
            from harness.data.files import read_table

            data.sample = read_table(Path(data_dir) / sample, dtype=str, keep_default_na=False)
        data.submission = self.submission_format(data, config)
        self.loaded_classes = data.classes
        return data

    def check_inputs(self, raw, config):
        """A bad pretrained language model path fails before tokenizing and training, not after; so do
        test ids the sample submission does not list."""
        lm = config["lm"]
        if self.model_kind(config) == "awd-lstm" and lm["pretrained"]:
            from harness.text.ulmfit import check_pretrained

            check_pretrained(lm["pretrained"], lm.get("pretrained_itos") or None)
        if raw.sample is not None and raw.test is not None:
            self.sample_order(raw)

    def review_order(self, raw, config) -> np.ndarray:
        """The labelled texts in a random order fixed by ``validation.split_seed`` (never the training
        seed), cut to ``data.max_train`` when set: the texts both the holdout split and K folds use."""
        from harness.data.folds import split_seed

        order = np.random.default_rng(split_seed(config)).permutation(len(raw.train))
        max_train = config["data"]["max_train"]
        return order[:max_train] if max_train else order

    def split_rows(self, raw, config) -> tuple[np.ndarray, np.ndarray]:
        """Row positions of the training and validation texts (a random split by validation.split_seed)."""
        d = config["data"]
        order = self.review_order(raw, config)
        # valid_pct = 0 means no validation at all; any other share holds out at least one text.
        n_valid = max(1, int(round(len(order) * d["valid_pct"]))) if d["valid_pct"] > 0 else 0
        if n_valid >= len(order):
            raise HarnessError(f"data.valid_pct = {d['valid_pct']} leaves no training {self.noun}s out of {len(order)}")
        return order[n_valid:], order[:n_valid]

    def fold_rows(self, raw, config) -> pd.DataFrame:
        """The labelled training texts K folds are cut from (id, text, label; stratified by label), in
        their file order; with ``data.max_train``, the same texts the holdout split would use."""
        return raw.train.iloc[np.sort(self.review_order(raw, config))].reset_index(drop=True)

    # ------------------------------------------------------------------ preprocessing
    def model_kind(self, config) -> str:
        kind = config["model"]["kind"]
        if kind not in MODEL_KINDS:
            raise HarnessError(f"model.kind = {kind!r}: use \"awd-lstm\" or \"nbsvm\"")
        return kind

    def training_batch_size(self, config):
        return None if self.model_kind(config) == "nbsvm" else super().training_batch_size(config)

    def n_outputs(self, state) -> int:
        """One logit per text for a binary task, else one per class."""
        return 1 if self.task.kind == "binary" else len(state["classes"])

    def featurize(self, texts, config):
        from harness.models.nbsvm import make_featurizer

        nb = config["nbsvm"]
        return make_featurizer(nb["n_features"], nb["ngram_max"]).transform(texts)

    def prepare(self, raw, config, rows=None):
        """NB-SVM features or the ULMFiT loaders. ``rows`` = (training, validation) positions into
        ``fold_rows`` under K folds; None: the holdout split of ``split_rows``."""
        from harness.host.competition import Prepared
        from harness.models.nbsvm import BagLoader

        if rows is None:
            texts, (train_rows, valid_rows) = raw.train, self.split_rows(raw, config)
        else:
            texts, (train_rows, valid_rows) = self.fold_rows(raw, config), rows
        train = texts.iloc[np.asarray(train_rows, dtype=np.int64)].reset_index(drop=True)
        valid = texts.iloc[np.asarray(valid_rows, dtype=np.int64)].reset_index(drop=True)
        state = {"kind": self.model_kind(config), "layout": raw.layout, "classes": list(raw.classes)}
        extra = {"train": train, "valid": valid}
        if valid.empty:
            click.echo(f"no validation split (data.valid_pct = 0): training on all {len(train)} {self.noun}s, "
                       "no validation score", err=True)
        if state["kind"] == "nbsvm" or config["model"]["blend_nbsvm"]:
            extra["x_train"] = self.featurize(train["text"], config)
            extra["x_valid"] = self.featurize(valid["text"], config) if len(valid) else None
        if state["kind"] == "nbsvm":
            valid_dl = BagLoader(extra["x_valid"], valid["label"].to_numpy()) if len(valid) else None
            return Prepared(BagLoader(extra["x_train"], train["label"].to_numpy()), valid_dl, state, extra)
        from harness.kinds.text_ulmfit import prepare_text

        return prepare_text(self, raw, state, extra, config)

    def tokenize(self, texts, config, desc="tokenizing"):
        from harness.text.cache import tokenize_cached
        from harness.text.tokenizer import Tokenizer

        cache = config["text"]["cache_dir"]
        return tokenize_cached(list(texts), Tokenizer(), False if cache == "none" else (cache or None), desc=desc)

    # ------------------------------------------------------------------ model
    def nbsvm_module(self, state, config):
        """NB-SVM's weights: one column per output (a multiclass task's one-vs-rest models side by side)."""
        import torch

        from harness.models.nbsvm import NBSVM

        n_features, n_out = config["nbsvm"]["n_features"], self.n_outputs(state)
        module = NBSVM(n_features)
        if n_out > 1:  # its forward sums weight rows per text, any number of columns
            module.weight, module.bias = torch.zeros(n_features, n_out), torch.zeros(n_out)
        return module

    def build_model(self, state, config) -> nn.Module:
        if state["kind"] == "nbsvm":
            return self.nbsvm_module(state, config)
        from harness.kinds.text_ulmfit import build_classifier

        model = build_classifier(state, config, n_out=self.n_outputs(state))
        if config["model"]["blend_nbsvm"]:
            model.add_module("nbsvm", self.nbsvm_module(state, config))  # its weights travel in model.pt
        return model

    def layer_groups(self, model):
        return model.layer_groups() if hasattr(model, "layer_groups") else [list(model.parameters())]

    def loss_fn(self, config):
        if self.task.kind == "multiclass":
            return cross_entropy_of_codes
        from torch import nn

        return nn.BCEWithLogitsLoss()

    def metrics(self, config):
        from harness.scoring.metrics import accuracy, get_metric, learner_metric, roc_auc

        if self.task.kind == "multiclass":
            return [accuracy, learner_metric(get_metric("log_loss"), self.task)]
        return [accuracy, roc_auc]

    def callbacks(self, config):
        """The classifier validates in length-sorted batches; its saved validation predictions go back
        to the texts' order, so they line up with other runs' (blends) and with K folds' OOF rows."""
        if self.model_kind(config) == "nbsvm":
            return []
        from harness.kinds.text_ulmfit import InputOrder

        return [InputOrder()]

    # ------------------------------------------------------------------ training
    def train(self, ctx):
        learn, config, prepared = ctx.learn, ctx.config, ctx.prepared
        if prepared.state["kind"] == "nbsvm":
            self.fit_nbsvm(learn.model, prepared.extra, config)
            learn.validate()
            return
        from harness.kinds.text_ulmfit import train_ulmfit

        train_ulmfit(self, ctx)
        if config["model"]["blend_nbsvm"]:
            self.fit_nbsvm(learn.model.nbsvm, prepared.extra, config)
            learn.validate()
            if prepared.valid_dl is not None:
                self.blend_valid(learn, prepared)

    def fit_nbsvm(self, module, extra, config):
        """Binary: one NB-SVM. Multiclass: one per class, that class against the rest."""
        import torch

        from harness.models.nbsvm import fit_nbsvm

        click.echo("fitting NB-SVM on word uni+bigrams ...", err=True)
        x, y, C = extra["x_train"], extra["train"]["label"].to_numpy(), config["nbsvm"]["C"]
        if self.task.kind == "binary":
            weight, bias = fit_nbsvm(x, y, C=C)
            module.set_weights(weight, bias)
            return
        columns, biases = [], []
        for code in range(module.weight.shape[1]):
            if not (y == code).any():
                raise HarnessError(f"no training {self.noun} of class number {code} in this split; NB-SVM fits one "
                                   "model per class against the rest (use more data or fewer folds)")
            weight, bias = fit_nbsvm(x, (y == code).astype(int), C=C)
            columns.append(weight)
            biases.append(bias)
        module.weight.copy_(torch.from_numpy(np.stack(columns, axis=1)))
        module.bias.copy_(torch.tensor(biases, dtype=torch.float32))

    def blend_valid(self, learn, prepared):
        """Validation scores of the averaged probabilities (InputOrder keeps the texts' order)."""
        nb_logits = self.nbsvm_logits(learn, learn.model.nbsvm, prepared.extra["x_valid"])
        blended = blend(learn.valid_preds.numpy(), nb_logits)
        import torch

        learn.valid_preds = torch.from_numpy(blended)
        learn.metrics = {m.name: m(learn.valid_preds, learn.valid_targets) for m in learn.metric_list}
        click.echo(f"blended with NB-SVM: {learn.metrics}", err=True)

    @staticmethod
    def nbsvm_logits(learn, module, x) -> np.ndarray:
        """NB-SVM logits for feature rows ``x``, on the learner's device (the module may be a submodule)."""
        import torch

        from harness.models.nbsvm import BagLoader

        with torch.no_grad():
            module.eval()
            return torch.cat([module(*learn.to_device(xb)).float().cpu() for xb, _ in BagLoader(x)]).numpy()

    # ------------------------------------------------------------------ submission
    def submission_format(self, raw: TextData, config) -> SubmissionFormat:
        """The [submission] section's format, the rest from the sample submission (if any) and the task."""
        s, d = config.get("submission", {}), config["data"]
        sample_columns = list(raw.sample.columns[1:]) if raw.sample is not None else []
        columns = list(s.get("columns") or sample_columns)
        fmt = s.get("format", "")
        if not fmt:
            metric = config.get("metric")
            from harness.scoring.metrics import get_metric

            takes = get_metric(metric).takes if metric else ""
            if len(columns) >= 2 and set(columns) == set(raw.classes):
                fmt = "class_probabilities"
            elif self.task.kind == "binary":
                fmt = "labels" if takes == "labels" else "probabilities"
            else:
                fmt = "class_probabilities" if takes == "probabilities" and not columns else "labels"
        if not columns:
            columns = list(raw.classes) if fmt == "class_probabilities" else [d.get("label") or "label"]
        if fmt == "class_probabilities" and set(columns) != set(raw.classes):
            raise HarnessError(f"submission.format = \"class_probabilities\" needs a column per class "
                               f"({', '.join(raw.classes[:9])}); the submission's columns are {', '.join(columns[:9])}")
        if fmt != "class_probabilities" and len(columns) != 1:
            raise HarnessError(f"submission.format = {fmt!r} writes one prediction column; submission.columns "
                               f"(or the sample's) are {', '.join(columns[:9])}")
        id_column = s.get("id_column") or (str(raw.sample.columns[0]) if raw.sample is not None else "") \
            or (d["id"] if isinstance(d.get("id"), str) and d.get("id") else "id")
        return SubmissionFormat(id_column, columns, fmt)

    def sample_order(self, raw: TextData) -> np.ndarray:
        """Positions of the sample submission's ids among the test ids: the submission's row order."""
        column = raw.submission.id_column
        if column not in raw.sample.columns:
            raise HarnessError(f"the sample submission has no column {column}; its columns are "
                               f"{', '.join(map(str, raw.sample.columns))}: set submission.id_column")
        wanted = raw.sample[column].astype(str)
        where = pd.Index(raw.test["id"].astype(str)).get_indexer(wanted)
        if (where < 0).any():
            first = wanted.iloc[int(np.argmax(where < 0))]
            raise HarnessError(f"the sample submission's {column} {first!r} is not a test id "
                               f"({int((where < 0).sum())} such); check data.id and data.sample_submission")
        if len(where) != len(raw.test):
            missing = sorted(set(raw.test["id"]) - set(wanted))[:1]
            raise HarnessError(f"the sample submission lists {len(where)} rows for {len(raw.test)} test {self.noun}s"
                               + (f" (test id {missing[0]!r} is not in it)" if missing else "")
                               + "; give the competition's own sample submission")
        return where

    def predict(self, learn, state, raw, config):
        if raw.test is None:
            return None
        from harness.host.competition import Predictions

        test = raw.test
        if state["kind"] == "nbsvm":
            logits = self.nbsvm_logits(learn, learn.model, self.featurize(test["text"], config))
        else:
            from harness.kinds.text_ulmfit import classifier_logits

            logits = classifier_logits(self, learn, state, test["text"], config)
            if config["model"]["blend_nbsvm"]:
                logits = blend(logits, self.nbsvm_logits(learn, learn.model.nbsvm, self.featurize(test["text"], config)))
        labels = test["label"].to_numpy()
        known = labels >= 0
        test_metrics = {}
        if known.any():
            if self.task.kind == "binary":
                acc = float(((probability(logits)[known] > 0.5) == labels[known]).mean())
            else:
                acc = float((np.asarray(logits)[known].argmax(axis=1) == labels[known]).mean())
            click.echo(f"test accuracy on {int(known.sum())} labelled test {self.noun}s: {acc:.4f}")
            test_metrics = {"test_accuracy": acc, "n_test": int(known.sum())}
        outputs, ids = np.asarray(logits), test["id"].to_numpy()
        if raw.sample is not None:
            order = self.sample_order(raw)
            outputs, ids = outputs[order], ids[order]
        return Predictions(self.fill(outputs, self.template(raw, ids), raw.submission, raw.classes), outputs,
                           test_metrics)

    def template(self, raw: TextData, ids) -> pd.DataFrame:
        fmt = raw.submission
        return pd.DataFrame({fmt.id_column: ids, **{c: 0.0 for c in fmt.columns}})

    def fill(self, outputs, template: pd.DataFrame, fmt: SubmissionFormat, classes: list[str]) -> pd.DataFrame:
        """``template`` with its prediction columns filled from the outputs (logits), in its row order."""
        outputs = np.asarray(outputs)
        binary = self.task.kind == "binary"
        column = template.columns[1]
        if fmt.format == "probabilities":
            if not binary:
                raise HarnessError("submission.format = \"probabilities\" is one P(positive) per row, for a binary task; "
                                   "use \"class_probabilities\" or \"labels\"")
            return template.assign(**{column: probability(outputs.reshape(-1))})
        probs = class_probabilities(outputs) if not binary else None
        if fmt.format == "labels":
            codes = (probability(outputs.reshape(-1)) > 0.5).astype(int) if binary else probs.argmax(axis=1)
            return template.assign(**{column: np.array(classes, dtype=object)[codes]})
        if binary:
            p = probability(outputs.reshape(-1)).astype(np.float64)
            probs = np.stack([1 - p, p], axis=1)
        submission = template.copy()
        for name in template.columns[1:]:
            submission[name] = probs[:, classes.index(str(name))]
        return submission

    def submission_from_outputs(self, outputs, template, valid=None, config=None):
        """A submission from (averaged) test outputs, in ``template``'s rows and format."""
        config = config or self.default_config()
        classes = [str(c) for c in config["data"].get("classes") or []] or self.loaded_classes
        columns = [str(c) for c in template.columns[1:]]
        declared = config.get("submission", {}).get("format", "")
        if declared:
            fmt = declared
        elif len(columns) >= 2:
            fmt = "class_probabilities"
            classes = classes or sorted_classes(columns)  # the order inferred classes have
        elif pd.api.types.is_float_dtype(template[template.columns[1]]) and self.task.kind == "binary":
            fmt = "probabilities"
        else:
            fmt = "labels"
        if fmt == "labels" and not classes:
            raise HarnessError(f"{self.name}: a label submission needs the classes; declare data.classes "
                               f"in {self.config_path or 'the config'}")
        return self.fill(outputs, template, SubmissionFormat(str(template.columns[0]), columns, fmt), classes)

    def check_submission(self, submission, raw):
        fmt: SubmissionFormat = raw.submission
        if raw.test is not None:
            ids = raw.test["id"]
        else:
            ids = submission[fmt.id_column] if fmt.id_column in submission else submission.iloc[:, 0]
        expected = pd.DataFrame({fmt.id_column: ids, **{c: 0.0 for c in fmt.columns}})
        name = f"{self.name} submission"
        if fmt.format == "labels":
            column = fmt.columns[0]
            if column in submission:
                bad = ~submission[column].astype(str).isin(raw.classes)
                if bad.any():
                    raise HarnessError(f"{name}: column {column} holds {submission[column][bad].iloc[0]!r}, "
                                       f"which is no class ({', '.join(raw.classes[:9])})")
                submission = submission.assign(**{column: 0.0})
        validate_submission(submission, expected, id_column=fmt.id_column,
                            value_range=None if fmt.format == "labels" else (0.0, 1.0),
                            probabilities=fmt.format == "class_probabilities", name=name)

    # ------------------------------------------------------------------ text generation
    def generate(self, run, prompt: str, words: int = 50, temperature: float = 1.0, top_k: int = 0, seed: int = 0,
                 device=None) -> str:
        from harness.kinds.text_ulmfit import generate_text

        return generate_text(run, prompt, words, temperature, top_k, seed, device)
