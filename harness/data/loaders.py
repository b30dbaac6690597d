"""Batches cut straight from in-memory tensors: no per-row Dataset, no collate.

For tabular and collaborative data the whole training set fits in memory, so an epoch is one
shuffle (a single gather per tensor) followed by cheap slices. This keeps the loader far below
the cost of a small model's step.
"""
from __future__ import annotations

import math

import torch


class TensorLoader:
    """Iterate ``(inputs, target)`` batches over aligned tensors.

    ``inputs`` is a tensor or a tuple of tensors (passed to the model as positional arguments);
    ``target`` is a tensor or None (for test-time prediction).
    """

    def __init__(self, inputs, target=None, batch_size=64, shuffle=False, drop_last=False, seed=0, device=None):
        self.single = isinstance(inputs, torch.Tensor)
        inputs = (inputs,) if self.single else tuple(inputs)
        n = len(inputs[0])
        for t in inputs + ((target,) if target is not None else ()):
            if len(t) != n:
                raise ValueError(f"all tensors must have {n} rows; got one with {len(t)}")
        if device is not None:
            inputs = tuple(t.to(device) for t in inputs)
            target = target.to(device) if target is not None else None
        self.inputs, self.target = inputs, target
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        # Each loader owns its generator so a checkpoint can restore the exact shuffle order.
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self):
        n = len(self.inputs[0])
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

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
