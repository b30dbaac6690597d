"""Batches cut straight from in-memory tensors: no per-row Dataset, no collate.

For tabular and collaborative data the whole training set fits in memory, so an epoch is one
shuffle (a single gather per tensor) followed by cheap slices. This keeps the loader far below
the cost of a small model's step.

Under data-parallel training (N processes) ``batch_size`` is each process's: the Learner calls
``split_over(rank, N)``, and the N processes together see the batches of one process with
``N x batch_size`` (``shard_slices``), each a disjoint part of the same shuffled order.
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


def part(size: int, rank: int, world: int) -> tuple[int, int]:
    """Start and stop of part ``rank`` of ``size`` rows cut into ``world`` consecutive parts whose
    sizes differ by at most one."""
    q, r = divmod(size, world)
    start = rank * q + min(rank, r)
    return start, start + q + (rank < r)


def shard_slices(n_rows: int, batch_size: int, rank: int = 0, world: int = 1, whole_batches: bool = True,
                 drop_last: bool = False, drop_last_single: bool = False) -> list[slice]:
    """One process's batches, as slices into an epoch's row order.

    In one process: batches of ``batch_size`` (``n_batches``' rules). Of ``world`` processes, with
    ``whole_batches`` (training): the batches of one process with ``world x batch_size``, each cut into
    ``world`` consecutive parts, part ``rank`` being this process's; so every process takes the same number
    of steps and together they take the same global batches. A last batch too small to give every
    process a row (two, with ``drop_last_single``: BatchNorm) is dropped. Without ``whole_batches``
    (evaluation): the rows cut into ``world`` consecutive blocks, block ``rank`` in batches of
    ``batch_size``; the blocks in rank order are the rows in order.
    """
    if world == 1:
        count = n_batches(n_rows, batch_size, drop_last, drop_last_single)
        return [slice(i * batch_size, min((i + 1) * batch_size, n_rows)) for i in range(count)]
    if not whole_batches:
        start, stop = part(n_rows, rank, world)
        return [slice(i, min(i + batch_size, stop)) for i in range(start, stop, batch_size)]
    size = batch_size * world
    full, rest = divmod(n_rows, size)
    keep_rest = rest and not drop_last and rest >= world * (2 if drop_last_single else 1)
    slices = []
    for i in range(full + int(bool(keep_rest))):
        start = i * size
        lo, hi = part(min(size, n_rows - start), rank, world)
        slices.append(slice(start + lo, start + hi))
    return slices


def check_split(n_rows: int, batch_size: int, world: int, key: str = "train.batch_size") -> None:
    """Training in ``world`` processes needs at least one global batch of ``world x batch_size`` rows."""
    if batch_size * world > n_rows:
        raise HarnessError(f"{key} = {batch_size} per process x {world} processes is larger than the {n_rows} "
                           "training rows; lower it or use fewer processes")


class TensorLoader:
    """Iterate ``(inputs, target)`` batches over aligned tensors.

    ``inputs`` is a tensor or a tuple of tensors (passed to the model as positional arguments);
    ``target`` is a tensor or None (for test-time prediction).

    A training loader (``drop_last_single``, by default when ``shuffle``) drops a last batch of one
    sample and refuses a batch size larger than its rows (HarnessError naming ``train.batch_size``).
    ``split_over(rank, world)`` makes it yield one process's share (``shard_slices``).
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
        self.rank, self.world, self.whole_batches = 0, 1, True

    def split_over(self, rank: int, world: int, whole_batches: bool = True) -> None:
        """Yield process ``rank`` of ``world``'s share of every batch (``whole_batches``, training) or of
        the rows (evaluation); ``split_over(0, 1)`` makes it whole again."""
        if world > 1 and whole_batches:
            check_split(self.n_rows, self.batch_size, world)
        self.rank, self.world, self.whole_batches = rank, world, whole_batches

    def slices(self) -> list[slice]:
        return shard_slices(self.n_rows, self.batch_size, self.rank, self.world, self.whole_batches,
                            self.drop_last, self.drop_last_single)

    def __len__(self):
        if self.world == 1:
            return n_batches(self.n_rows, self.batch_size, self.drop_last, self.drop_last_single)
        return len(self.slices())

    @property
    def n_rows(self) -> int:
        return len(self.inputs[0])

    def __iter__(self):
        inputs, target = self.inputs, self.target
        if self.shuffle:
            perm = torch.randperm(self.n_rows, generator=self.generator).to(inputs[0].device)
            inputs = tuple(t[perm] for t in inputs)
            target = target[perm] if target is not None else None
        for sl in self.slices():
            xb = inputs[0][sl] if self.single else tuple(t[sl] for t in inputs)
            yield xb, (target[sl] if target is not None else None)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
