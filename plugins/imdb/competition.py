"""IMDB sentiment: spaCy tokenization, an AWD-LSTM language model, ULMFiT fine-tuning; NB-SVM baseline.

``model.kind = "awd-lstm"`` (default): the reviews are tokenized (cached), a language model is trained
(or fine-tuned from ``lm.pretrained``) on all review text and saved as the run's ``lm.pt``, then its
encoder is fine-tuned as a sentiment classifier with gradual unfreezing. ``model.kind = "nbsvm"``:
the NB-SVM baseline on hashed word uni+bigrams, fitted in seconds. Reads the aclImdb folders, Kaggle's
"Bag of Words Meets Bags of Popcorn" TSVs, or train-*/test-*.csv.gz parts (see ``_imdb_data``).
Submission: ``id,sentiment`` with the probability that the review is positive (Kaggle scores ROC AUC).
"""
from __future__ import annotations

from pathlib import Path

from typing import TYPE_CHECKING

import click
import numpy as np
import pandas as pd

from harness_competitions import config_path
from harness.host.competition import Competition, Predictions, Prepared
from harness.config.schema import COUNT, NON_NEGATIVE, OPTIONAL_COUNT, POSITIVE, Choice, Flag, ListOf, Num, Text
from harness.errors import HarnessError
from harness.scoring.tasks import get_task
from harness.host.hookspecs import hookimpl
from harness.scoring.submission import validate_submission
from harness_plugins.imdb import data as imdb_data

# torch is imported where a model is made or run, so that config and file errors come first.
if TYPE_CHECKING:
    from torch import nn

KINDS = ("awd-lstm", "nbsvm")


def _probability(logits) -> np.ndarray:
    from scipy.special import expit  # the logistic function, overflow-safe

    return expit(np.asarray(logits, dtype=np.float32))


class Imdb(Competition):
    name = "imdb"
    kaggle_slug = "word2vec-nlp-tutorial"
    submission_range = (0.0, 1.0)  # the probability of a positive review
    pretrained_key = "lm.pretrained"  # `harness train imdb --pretrained PATH` starts from a saved language model
    description = "IMDB sentiment: AWD-LSTM language model + ULMFiT classifier, or NB-SVM (accuracy)"
    config_path = config_path("imdb")
    task = get_task("binary")  # the classifier emits one logit per review
    # Keys the shared schema (harness.config.schema) leaves to this plugin.
    config_schema = {
        "data.lm_unsup": Flag(),
        "data.lm_test": Flag(),
        "text.max_vocab": COUNT,
        "text.min_freq": COUNT,
        "text.max_len": OPTIONAL_COUNT,  # 0: the whole review
        "text.cache_dir": Text(),
        "model.kind": Choice(*KINDS),
        # harness.models.awd_lstm.SIZES (not imported: it imports torch); a test keeps them equal
        "model.size": Choice("cpu", "lesson", "ulmfit", "ulmfit-v1"),
        "model.emb_sz": OPTIONAL_COUNT,  # 0: from model.size
        "model.n_hid": OPTIONAL_COUNT,
        "model.n_layers": OPTIONAL_COUNT,
        "model.drop_mult": Num(0, 2, hi_open=True),  # scales dropouts up to 0.5, which must stay below 1
        "model.head_hidden": COUNT,
        "model.grad_len": COUNT,  # gradients through a review's last grad_len tokens (fastai's max_len)
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

    # ------------------------------------------------------------------ data
    def check_raw(self, data_dir):
        imdb_data.find_layout(Path(data_dir))

    def load(self, data_dir, config) -> imdb_data.ImdbData:
        return imdb_data.load(Path(data_dir))

    def check_inputs(self, raw, config):
        """A bad pretrained language model path fails before tokenizing and training, not after."""
        lm = config["lm"]
        if self._kind(config) == "awd-lstm" and lm["pretrained"]:
            from harness.text.ulmfit import check_pretrained

            check_pretrained(lm["pretrained"], lm.get("pretrained_itos") or None)

    def write_sample(self, data_dir, seed=0, layout="aclImdb", **sizes):
        from harness_plugins.imdb import sample as imdb_sample

        writer = {"aclImdb": imdb_sample.write_aclimdb, "kaggle": imdb_sample.write_kaggle}[layout]
        writer(Path(data_dir), seed, **sizes)

    def _review_order(self, raw, config) -> np.ndarray:
        """The labelled reviews in a random order fixed by ``validation.split_seed`` (never the training
        seed), cut to ``data.max_train`` when set: the reviews both the holdout split and K folds use."""
        from harness.data.folds import split_seed

        order = np.random.default_rng(split_seed(config)).permutation(len(raw.train))
        max_train = config["data"]["max_train"]
        return order[:max_train] if max_train else order

    def split_rows(self, raw, config) -> tuple[np.ndarray, np.ndarray]:
        """Row positions of the training and validation reviews (a random split by validation.split_seed)."""
        d = config["data"]
        order = self._review_order(raw, config)
        # valid_pct = 0 means no validation at all; any other share holds out at least one review.
        n_valid = max(1, int(round(len(order) * d["valid_pct"]))) if d["valid_pct"] > 0 else 0
        if n_valid >= len(order):
            raise HarnessError(f"data.valid_pct = {d['valid_pct']} leaves no training reviews out of {len(order)}")
        return order[n_valid:], order[:n_valid]

    def fold_rows(self, raw, config) -> pd.DataFrame:
        """The labelled training reviews K folds are cut from (id, text, label; stratified by label), in
        their file order; with ``data.max_train``, the same reviews the holdout split would use."""
        return raw.train.iloc[np.sort(self._review_order(raw, config))].reset_index(drop=True)

    # ------------------------------------------------------------------ preprocessing
    def _kind(self, config) -> str:
        kind = config["model"]["kind"]
        if kind not in KINDS:
            raise HarnessError(f"model.kind = {kind!r}: use \"awd-lstm\" or \"nbsvm\"")
        return kind

    def _featurize(self, texts, config):
        from harness.models.nbsvm import make_featurizer

        nb = config["nbsvm"]
        return make_featurizer(nb["n_features"], nb["ngram_max"]).transform(texts)

    def prepare(self, raw, config, rows=None) -> Prepared:
        """NB-SVM features or the ULMFiT loaders. ``rows`` = (training, validation) positions into
        ``fold_rows`` under K folds; None: the holdout split of ``split_rows``."""
        from harness.models.nbsvm import BagLoader

        if rows is None:
            reviews, (train_rows, valid_rows) = raw.train, self.split_rows(raw, config)
        else:
            reviews, (train_rows, valid_rows) = self.fold_rows(raw, config), rows
        train = reviews.iloc[np.asarray(train_rows, dtype=np.int64)].reset_index(drop=True)
        valid = reviews.iloc[np.asarray(valid_rows, dtype=np.int64)].reset_index(drop=True)
        state = {"kind": self._kind(config), "layout": raw.layout}
        extra = {"train": train, "valid": valid}
        if valid.empty:
            click.echo(f"no validation split (data.valid_pct = 0): training on all {len(train)} reviews, "
                       "no validation score", err=True)
        if state["kind"] == "nbsvm" or config["model"]["blend_nbsvm"]:
            extra["x_train"] = self._featurize(train["text"], config)
            extra["x_valid"] = self._featurize(valid["text"], config) if len(valid) else None
        if state["kind"] == "nbsvm":
            valid_dl = BagLoader(extra["x_valid"], valid["label"].to_numpy()) if len(valid) else None
            return Prepared(BagLoader(extra["x_train"], train["label"].to_numpy()), valid_dl, state, extra)
        from harness_plugins.imdb.ulmfit import prepare_text

        return prepare_text(self, raw, state, extra, config)

    def tokenize(self, texts, config, desc="tokenizing"):
        from harness.text.cache import tokenize_cached
        from harness.text.tokenizer import Tokenizer

        cache = config["text"]["cache_dir"]
        return tokenize_cached(list(texts), Tokenizer(), False if cache == "none" else (cache or None), desc=desc)

    # ------------------------------------------------------------------ model
    def build_model(self, state, config) -> nn.Module:
        from harness.models.nbsvm import NBSVM

        if state["kind"] == "nbsvm":
            return NBSVM(config["nbsvm"]["n_features"])
        from harness_plugins.imdb.ulmfit import build_classifier

        model = build_classifier(state, config)
        if config["model"]["blend_nbsvm"]:
            model.add_module("nbsvm", NBSVM(config["nbsvm"]["n_features"]))  # its weights travel in model.pt
        return model

    def layer_groups(self, model):
        return model.layer_groups() if hasattr(model, "layer_groups") else [list(model.parameters())]

    def loss_fn(self, config):
        from torch import nn

        return nn.BCEWithLogitsLoss()

    def metrics(self, config):
        from harness.scoring.metrics import accuracy, roc_auc

        return [accuracy, roc_auc]

    def callbacks(self, config):
        """The classifier validates in length-sorted batches; its saved validation predictions go back
        to the reviews' order, so they line up with other runs' (blends) and with K folds' OOF rows."""
        if self._kind(config) == "nbsvm":
            return []
        from harness_plugins.imdb.ulmfit import InputOrder

        return [InputOrder()]

    # ------------------------------------------------------------------ training
    def train(self, ctx):
        learn, config, prepared = ctx.learn, ctx.config, ctx.prepared
        if prepared.state["kind"] == "nbsvm":
            self._fit_nbsvm(learn.model, prepared.extra, config)
            learn.validate()
            return
        from harness_plugins.imdb.ulmfit import train_ulmfit

        train_ulmfit(self, ctx)
        if config["model"]["blend_nbsvm"]:
            self._fit_nbsvm(learn.model.nbsvm, prepared.extra, config)
            learn.validate()
            if prepared.valid_dl is not None:
                self._blend_valid(learn, prepared)

    def _fit_nbsvm(self, module, extra, config):
        from harness.models.nbsvm import fit_nbsvm

        click.echo("fitting NB-SVM on word uni+bigrams ...", err=True)
        weight, bias = fit_nbsvm(extra["x_train"], extra["train"]["label"].to_numpy(), C=config["nbsvm"]["C"])
        module.set_weights(weight, bias)

    def _blend_valid(self, learn, prepared):
        """Validation scores of the averaged probabilities (InputOrder keeps the reviews' order)."""
        nb_logits = self._nbsvm_logits(learn, learn.model.nbsvm, prepared.extra["x_valid"])
        blended = _blend(learn.valid_preds.numpy(), nb_logits)
        import torch

        learn.valid_preds = torch.from_numpy(blended)
        learn.metrics = {m.name: m(learn.valid_preds, learn.valid_targets) for m in learn.metric_list}
        click.echo(f"blended with NB-SVM: {learn.metrics}", err=True)

    @staticmethod
    def _nbsvm_logits(learn, module, x) -> np.ndarray:
        """NB-SVM logits for feature rows ``x``, on the learner's device (the module may be a submodule)."""
        import torch

        from harness.models.nbsvm import BagLoader

        with torch.no_grad():
            module.eval()
            return torch.cat([module(*learn.to_device(xb)).float().cpu() for xb, _ in BagLoader(x)]).numpy()

    # ------------------------------------------------------------------ submission
    def predict(self, learn, state, raw, config):
        if raw.test is None:
            return None
        test = raw.test
        if state["kind"] == "nbsvm":
            logits = self._nbsvm_logits(learn, learn.model, self._featurize(test["text"], config))
        else:
            from harness_plugins.imdb.ulmfit import classifier_logits

            logits = classifier_logits(self, learn, state, test["text"], config)
            if config["model"]["blend_nbsvm"]:
                logits = _blend(logits, self._nbsvm_logits(learn, learn.model.nbsvm, self._featurize(test["text"], config)))
        probs = _probability(logits)
        known = test["label"].to_numpy() >= 0
        test_metrics = {}
        if known.any():
            acc = float(((probs[known] > 0.5) == test["label"].to_numpy()[known]).mean())
            click.echo(f"test accuracy on {int(known.sum())} labelled test reviews: {acc:.4f}")
            test_metrics = {"test_accuracy": acc, "n_test": int(known.sum())}
        return Predictions(pd.DataFrame({"id": test["id"].to_numpy(), "sentiment": probs}), np.asarray(logits),
                           test_metrics)

    def submission_from_outputs(self, outputs, template, valid=None, config=None):
        return template.assign(sentiment=_probability(np.asarray(outputs).reshape(-1)))

    def check_submission(self, submission, raw):
        ids = raw.test["id"] if raw.test is not None else submission["id"]
        validate_submission(submission, pd.DataFrame({"id": ids, "sentiment": 0.0}), value_range=self.submission_range,
                            name="imdb submission")

    # ------------------------------------------------------------------ text generation
    def generate(self, run, prompt: str, words: int = 50, temperature: float = 1.0, top_k: int = 0, seed: int = 0,
                 device=None) -> str:
        from harness_plugins.imdb.ulmfit import generate_text

        return generate_text(run, prompt, words, temperature, top_k, seed, device)


def _blend(net_logits: np.ndarray, nb_logits: np.ndarray) -> np.ndarray:
    """The logit of the averaged probabilities, so metrics and thresholds work as before."""
    p = (_probability(net_logits) + _probability(nb_logits)) / 2
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return np.log(p / (1 - p)).astype(np.float32)


@hookimpl
def register_competitions(register):
    register(Imdb())
