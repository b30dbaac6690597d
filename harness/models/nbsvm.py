"""NB-SVM (Wang and Manning, 2012) as the lesson uses it: logistic regression on binary word n-grams
scaled by their naive-Bayes log-count ratios.

Features are hashed (scikit-learn's HashingVectorizer), so the fitted model is just one weight per
hash bucket plus a bias: it lives in an ``nn.Module``'s buffers, is saved in ``model.pt`` like any
network, and scores a batch with one ``embedding_bag`` sum (the features are binary).
"""
from __future__ import annotations

import re

import numpy as np
import torch
from scipy import sparse
from torch import nn

_BR = re.compile(r"<\s*br\s*/?\s*>", re.IGNORECASE)
TOKEN_PATTERN = r"(?u)\b\w+\b|[^\w\s]"  # words and single punctuation marks ("!" carries sentiment)


def _clean(text: str) -> str:
    return _BR.sub(" ", text).lower()


def make_featurizer(n_features: int = 2**22, ngram_max: int = 2):
    """Binary uni- (and bi-, ...) gram presence, hashed into ``n_features`` buckets."""
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(ngram_range=(1, ngram_max), n_features=n_features, binary=True,
                             alternate_sign=False, norm=None, preprocessor=_clean, token_pattern=TOKEN_PATTERN)


def log_count_ratio(x: sparse.csr_matrix, y: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """r = log((p / |p|) / (q / |q|)), p and q the smoothed feature counts in positive and negative rows."""
    p = alpha + np.asarray(x[y == 1].sum(0)).ravel()
    q = alpha + np.asarray(x[y == 0].sum(0)).ravel()
    return np.log((p / p.sum()) / (q / q.sum()))


def fit_nbsvm(x: sparse.csr_matrix, y: np.ndarray, C: float = 0.1, alpha: float = 1.0) -> tuple[np.ndarray, float]:
    """Fit logistic regression on x * r; return the combined weights (w * r) and the bias."""
    from sklearn.linear_model import LogisticRegression

    y = np.asarray(y).astype(int)
    if len(np.unique(y)) < 2:
        raise ValueError("NB-SVM needs both classes in the training labels")
    r = log_count_ratio(x, y, alpha)
    model = LogisticRegression(C=C, dual=True, solver="liblinear", max_iter=1000)
    model.fit(x @ sparse.diags(r), y)
    return (model.coef_.ravel() * r).astype(np.float32), float(model.intercept_[0])


def to_bags(x: sparse.csr_matrix) -> tuple[torch.Tensor, torch.Tensor]:
    """A binary sparse batch as (feature indices, row offsets), the input of ``NBSVM``."""
    x = x.tocsr()
    return torch.from_numpy(x.indices.astype(np.int64)), torch.from_numpy(x.indptr[:-1].astype(np.int64))


class NBSVM(nn.Module):
    """One logit per row: the sum of the weights of the row's features, plus the bias."""

    def __init__(self, n_features: int):
        super().__init__()
        self.register_buffer("weight", torch.zeros(n_features, 1))
        self.register_buffer("bias", torch.zeros(1))

    def set_weights(self, weight: np.ndarray, bias: float) -> None:
        self.weight.copy_(torch.from_numpy(np.asarray(weight, dtype=np.float32)).view(-1, 1))
        self.bias.fill_(bias)

    def forward(self, indices: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        return nn.functional.embedding_bag(indices, self.weight, offsets, mode="sum").squeeze(1) + self.bias


class BagLoader:
    """Batches of sparse rows as ((feature indices, row offsets), label) for ``NBSVM``."""

    def __init__(self, x: sparse.csr_matrix, labels=None, bs: int = 4096):
        self.x, self.bs = x.tocsr(), bs
        self.labels = None if labels is None else torch.tensor(np.asarray(labels, dtype=np.float32))

    def __len__(self) -> int:
        return -(-self.x.shape[0] // self.bs)

    def __iter__(self):
        for start in range(0, self.x.shape[0], self.bs):
            stop = start + self.bs
            y = self.labels[start:stop] if self.labels is not None else torch.zeros(min(stop, self.x.shape[0]) - start)
            yield to_bags(self.x[start:stop]), y
