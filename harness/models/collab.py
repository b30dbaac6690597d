"""Collaborative filtering with embeddings (lesson 4): a biased dot product (and SVD++, the same with
implicit feedback), a small neural net, and an item autoencoder (I-AutoRec).

Row 0 of every table is reserved for ids never seen in training. It starts at zero and, having no
gradient, stays there, so an unknown user or item falls back to the other side's bias and the
global bias (about the mean rating).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from harness.models.layers import logit_of, scale_to_range


def _embedding(n: int, dim: int, std: float = 0.01) -> nn.Embedding:
    emb = nn.Embedding(n, dim)
    with torch.no_grad():
        nn.init.trunc_normal_(emb.weight, std=std, a=-2 * std, b=2 * std)
        emb.weight[0].zero_()
    return emb


def sorted_groups(keys: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The stable order that sorts rows by key, and where each key's rows start in it: key k owns positions
    [starts[k], starts[k + 1]) of the sorted rows (a CSR index, so a batch reads only its own keys' rows)."""
    order = torch.argsort(keys, stable=True)
    starts = torch.zeros(n + 1, dtype=torch.long)
    starts[1:] = torch.cumsum(torch.bincount(keys, minlength=n), 0)
    return order, starts


def group_positions(starts: torch.Tensor, keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The sorted positions of every row of each of ``keys``, key after key, and each key's number of rows."""
    first_of_key = starts[keys]
    lengths = starts[keys + 1] - first_of_key
    first_in_out = torch.cumsum(lengths, 0) - lengths
    positions = (torch.repeat_interleave(first_of_key - first_in_out, lengths)
                 + torch.arange(int(lengths.sum()), device=keys.device))
    return positions, lengths


class DotProductBias(nn.Module):
    def __init__(self, n_users: int, n_items: int, n_factors: int = 50, y_range=(0.0, 5.5), global_mean: float = 3.5):
        super().__init__()
        self.y_range = tuple(y_range)
        self.user_factors = _embedding(n_users, n_factors)
        self.item_factors = _embedding(n_items, n_factors)
        self.user_bias = _embedding(n_users, 1)
        self.item_bias = _embedding(n_items, 1)
        self.global_bias = nn.Parameter(torch.tensor(logit_of(global_mean, y_range)))

    def penalty(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Mean squared norm of the batch's user and item factors (per-rating L2, as in SGD MF)."""
        return (self.user_factors(users).pow(2).sum(1) + self.item_factors(items).pow(2).sum(1)).mean()

    def user_vectors(self, users: torch.Tensor) -> torch.Tensor:
        return self.user_factors(users)

    def item_vectors(self) -> torch.Tensor:
        """Every item's learned vector (row 0: unseen items), for `harness explain`."""
        return self.item_factors.weight

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        dot = (self.user_vectors(users) * self.item_factors(items)).sum(dim=1)
        x = dot + self.user_bias(users).squeeze(1) + self.item_bias(items).squeeze(1) + self.global_bias
        return scale_to_range(x, self.y_range)


class DotProductImplicit(DotProductBias):
    """SVD++ (Koren, 2008): the biased dot product with each user's vector plus what the user chose to rate,
    ``|N(u)|^-1/2 * sum of y_j over the items j in N(u)``, the items the user rated in training. Which items a
    user rates says something about taste beyond the ratings themselves.

    ``rated`` is (user codes, item codes) of the training ratings; it is rebuilt from the run's state, not
    saved with the weights.
    """

    def __init__(self, n_users: int, n_items: int, n_factors: int = 50, y_range=(0.0, 5.5), global_mean: float = 3.5,
                 rated=((), ())):
        super().__init__(n_users, n_items, n_factors, y_range, global_mean)
        self.implicit_factors = _embedding(n_items, n_factors)
        users = torch.as_tensor(rated[0], dtype=torch.long)
        order, starts = sorted_groups(users, n_users)
        counts = (starts[1:] - starts[:-1]).clamp(min=1).float()
        self.register_buffer("rated_items", torch.as_tensor(rated[1], dtype=torch.long)[order], persistent=False)
        self.register_buffer("user_starts", starts, persistent=False)  # user u: rated_items[starts[u]:starts[u + 1]]
        self.register_buffer("user_scale", counts.rsqrt().unsqueeze(1), persistent=False)  # |N(u)|^-1/2

    def user_vectors(self, users: torch.Tensor) -> torch.Tensor:
        # Only the batch's own users' sums: the cost grows with their ratings, not with all of training's.
        unique, inverse = torch.unique(users, return_inverse=True)
        positions, lengths = group_positions(self.user_starts, unique)
        implicit = F.embedding_bag(self.rated_items[positions], self.implicit_factors.weight,
                                   torch.cumsum(lengths, 0) - lengths, mode="sum")
        return self.user_factors(users) + (implicit * self.user_scale[unique])[inverse]

    def penalty(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        # the batch items' implicit factors share the factors' per-rating L2
        return super().penalty(users, items) + self.implicit_factors(items).pow(2).sum(1).mean()


DENSE_RATINGS_LIMIT = 20_000_000  # items x users (80 MB of float32) up to which AutoRec keeps a dense matrix


class ItemAutoRec(nn.Module):
    """I-AutoRec (Sedhain et al., 2015): each item is the vector of its training ratings over all users (0
    where a user has not rated it), encoded through ``hidden`` sigmoid units; a user's rating of the item is
    read from the code by the user's own decoder row and bias. It sees a user through the other users who
    rated the same item, which a dot product does not: a different error to blend with.

    The rating being predicted is blanked in its item's input, so a training pair is predicted as a
    held-out one is (the original lets the input hold it and relies on the bottleneck not to copy it).
    ``ratings`` is (user codes, item codes, ratings) of the training rows; it is rebuilt from the run's
    state, not saved with the weights. Up to ``dense_limit`` items x users the ratings are a dense matrix
    (a matrix product: fastest); above it they stay sparse, sorted by item, and an embedding bag encodes
    them, so memory and time grow with the ratings, not with users x items (MovieLens 25M: 9.5e9 cells).
    """

    def __init__(self, n_users: int, n_items: int, hidden: int = 200, y_range=(0.0, 5.5), global_mean: float = 3.5,
                 ratings=((), (), ()), dense_limit: int = DENSE_RATINGS_LIMIT):
        super().__init__()
        self.y_range = tuple(y_range)
        users, items = torch.as_tensor(ratings[0], dtype=torch.long), torch.as_tensor(ratings[1], dtype=torch.long)
        values = torch.as_tensor(ratings[2], dtype=torch.float32)
        self.dense = n_items * n_users <= dense_limit
        if self.dense:
            matrix = torch.zeros(n_items, n_users)
            matrix[items, users] = values
            self.register_buffer("item_ratings", matrix, persistent=False)
        else:
            order, starts = sorted_groups(items, n_items)
            self.register_buffer("rating_users", users[order], persistent=False)
            self.register_buffer("rating_values", values[order], persistent=False)
            self.register_buffer("item_starts", starts, persistent=False)  # item i: [starts[i], starts[i + 1])
        self.n_items = n_items
        self.encoder = nn.Linear(n_users, hidden)
        self.user_factors = _embedding(n_users, hidden)  # the decoder: one row per user
        self.user_bias = _embedding(n_users, 1)
        self.global_bias = nn.Parameter(torch.tensor(logit_of(global_mean, y_range)))

    def penalty(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Mean squared norm of the batch users' decoder rows and encoder columns (per-rating L2)."""
        return (self.user_factors(users).pow(2).sum(1) + self.encoder.weight[:, users].pow(2).sum(0)).mean()

    def encode(self, items: torch.Tensor, blanked_users: torch.Tensor | None = None) -> torch.Tensor:
        """The sigmoid code of each item's training ratings, without ``blanked_users[k]``'s rating of item k."""
        if self.dense:
            x = self.item_ratings[items]  # indexing copies: blanking leaves the buffer as it is
            if blanked_users is not None:
                x[torch.arange(len(items), device=x.device), blanked_users] = 0.0
            return torch.sigmoid(self.encoder(x))
        at, lengths = group_positions(self.item_starts, items)
        bag = torch.repeat_interleave(torch.arange(len(items), device=items.device), lengths)
        users, values = self.rating_users[at], self.rating_values[at]
        if blanked_users is not None:
            keep = users != blanked_users[bag]
            users, values, bag = users[keep], values[keep], bag[keep]
            lengths = torch.bincount(bag, minlength=len(items))
        offsets = torch.cumsum(lengths, 0) - lengths
        summed = F.embedding_bag(users, self.encoder.weight.t().contiguous(), offsets, mode="sum",
                                 per_sample_weights=values)
        return torch.sigmoid(summed + self.encoder.bias)

    def item_vectors(self) -> torch.Tensor:
        """Every item's code, from all of its training ratings: what the decoder reads."""
        return self.encode(torch.arange(self.n_items, device=self.global_bias.device))

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        code = self.encode(items, blanked_users=users)
        out = (self.user_factors(users) * code).sum(1) + self.user_bias(users).squeeze(1) + self.global_bias
        return scale_to_range(out, self.y_range)


class CollabNN(nn.Module):
    """Concatenated user and item embeddings through a small MLP."""

    def __init__(self, n_users: int, n_items: int, n_factors: int = 50, hidden=(100,), dropout: float = 0.1,
                 y_range=(0.0, 5.5), global_mean: float = 3.5):
        super().__init__()
        self.y_range = tuple(y_range)
        self.user_factors = _embedding(n_users, n_factors)
        self.item_factors = _embedding(n_items, n_factors)
        layers, width = [], 2 * n_factors
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
            width = h
        out = nn.Linear(width, 1)
        with torch.no_grad():
            out.bias.fill_(logit_of(global_mean, y_range))
        self.mlp = nn.Sequential(*layers, out)

    penalty = DotProductBias.penalty
    item_vectors = DotProductBias.item_vectors

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        x = torch.cat([self.user_factors(users), self.item_factors(items)], dim=1)
        return scale_to_range(self.mlp(x).squeeze(1), self.y_range)
