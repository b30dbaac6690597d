"""Batches cut straight from in-memory tensors: no per-row Dataset, no collate.

For tabular and collaborative data the whole training set fits in memory, so an epoch is one
shuffle (a single gather per tensor) followed by cheap slices. This keeps the loader far below
the cost of a small model's step.
"""
from __future__ import annotations

import math

import torch

from harness.errors import HarnessError


def check_batch_size(n_rows: int, batch_size: int, key: str = "train.batch_size") -> None:
    """A training batch size must fit the training data (any training loader calls this)."""
    if batch_size > n_rows:
        raise HarnessError(f"{key} = {batch_size} is larger than the {n_rows} training rows; lower it")


def n_batches(n_rows: int, batch_size: int, drop_last: bool = False, drop_last_single: bool = False) -> int:
    """Batches per epoch. ``drop_last_single`` drops a last batch of one sample only: BatchNorm
    cannot train on a single sample, and one sample less per epoch costs nothing."""
    if drop_last:
        return n_rows // batch_size
    n = math.ceil(n_rows / batch_size)
    if drop_last_single and batch_size > 1 and n > 1 and n_rows % batch_size == 1:
        n -= 1
    return n


class TensorLoader:
    """Iterate ``(inputs, target)`` batches over aligned tensors.

    ``inputs`` is a tensor or a tuple of tensors (passed to the model as positional arguments);
    ``target`` is a tensor or None (for test-time prediction).

    A training loader (``drop_last_single``, by default when ``shuffle``) drops a last batch of one
    sample and refuses a batch size larger than its rows (HarnessError naming ``train.batch_size``).
    """

    def __init__(self, inputs, target=None, batch_size=64, shuffle=False, drop_last=False, seed=0, device=None,
                 drop_last_single: bool | None = None):
        self.single = isinstance(inputs, torch.Tensor)
        inputs = (inputs,) if self.single else tuple(inputs)
        n = len(inputs[0])
        for t in inputs + ((target,) if target is not None else ()):
            if len(t) != n:
                raise ValueError(f"all tensors must have {n} rows; got one with {len(t)}")
        self.drop_last_single = shuffle if drop_last_single is None else drop_last_single
        if self.drop_last_single:
            check_batch_size(n, batch_size)
        if device is not None:
            inputs = tuple(t.to(device) for t in inputs)
            target = target.to(device) if target is not None else None
        self.inputs, self.target = inputs, target
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        # Each loader owns its generator so a checkpoint can restore the exact shuffle order.
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self):
        return n_batches(self.n_rows, self.batch_size, self.drop_last, self.drop_last_single)

    @property
    def n_rows(self) -> int:
        return len(self.inputs[0])

    def __iter__(self):
        inputs, target = self.inputs, self.target
        if self.shuffle:
            perm = torch.randperm(self.n_rows, generator=self.generator).to(inputs[0].device)
            inputs = tuple(t[perm] for t in inputs)
            target = target[perm] if target is not None else None
        bs = self.batch_size
        for i in range(len(self)):
            sl = slice(i * bs, (i + 1) * bs)
            xb = inputs[0][sl] if self.single else tuple(t[sl] for t in inputs)
            yield xb, (target[sl] if target is not None else None)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
