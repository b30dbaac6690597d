"""IMDB sentiment: the text-classification kind (harness.kinds.text) on IMDB's three layouts.

The kind does the work: spaCy tokenization, an AWD-LSTM language model and ULMFiT fine-tuning, or
the NB-SVM baseline (``model.kind = "nbsvm"``). What is IMDB's own: its layouts (data.py: aclImdb
folders, Kaggle's "Bag of Words Meets Bags of Popcorn" TSVs, or train-*/test-*.csv.gz parts, found
from the files), its generated sample (sample.py) and Kaggle's submission ``id,sentiment``, the
probability that the review is positive (Kaggle scores ROC AUC).
"""
from __future__ import annotations

from pathlib import Path

from harness.host.hookspecs import hookimpl
from harness.kinds.text import SubmissionFormat, TextClassification
from harness_competitions import config_path
from harness_plugins.imdb import data as imdb_data


class Imdb(TextClassification):
    name = "imdb"
    kaggle_slug = "word2vec-nlp-tutorial"
    submission_range = (0.0, 1.0)  # the probability of a positive review
    pretrained_key = "lm.pretrained"  # `harness train imdb --pretrained PATH` starts from a saved language model
    description = "IMDB sentiment: AWD-LSTM language model + ULMFiT classifier, or NB-SVM (accuracy)"
    config_path = config_path("imdb")
    noun = "review"

    def kind_defaults(self):
        """imdb.toml is the kind's defaults; IMDB's files are found from its layouts, not [data] keys."""
        return self.text_defaults()

    def source(self, data_dir, config):
        return imdb_data.source(Path(data_dir))

    def check_raw(self, data_dir):
        imdb_data.find_layout(Path(data_dir))

    def submission_format(self, raw, config):
        return SubmissionFormat("id", ["sentiment"], "probabilities")

    def write_sample(self, data_dir, seed=0, layout="aclImdb", **sizes):
        from harness_plugins.imdb import sample as imdb_sample

        writer = {"aclImdb": imdb_sample.write_aclimdb, "kaggle": imdb_sample.write_kaggle}[layout]
        writer(Path(data_dir), seed, **sizes)


@hookimpl
def register_competitions(register):
    register(Imdb())
