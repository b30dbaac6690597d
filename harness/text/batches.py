"""Batches for text: language-model streams, and length-bucketed classifier batches.

Both loaders keep their own torch.Generator, so a checkpoint restores the exact order. Under
data-parallel training the Learner calls ``split_over(rank, world)``: the language model's processes each
read their own ``bs`` streams of one layout of ``world x bs`` streams, and the classifier's each take a part
of every batch of ``world x bs`` documents (or, to evaluate, a block of the batches).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from harness.errors import HarnessError


class LMLoader:
    """The lesson's language-model batches.

    The documents (in a new random order each epoch when ``shuffle``) are concatenated into one stream,
    cut into ``bs`` equal rows, and read left to right ``bptt`` tokens at a time; each batch's targets
    are its inputs shifted by one token, and row r of a batch continues where row r of the previous
    batch stopped, so the hidden state can be carried over. With ``variable_bptt`` the length varies:
    ``bptt`` 95% of the time, ``bptt / 2`` otherwise, plus normal noise (sd 5), never under 5 before
    the draws are stretched (by a few percent) to cover the rows exactly.
    Every epoch has exactly ``len(loader)`` batches and reads every row to its end: only the
    stream's remainder (fewer than ``bs`` tokens, plus ``max_tokens`` cuts) is left out.
    """

    def __init__(self, docs: list[np.ndarray], bs: int = 64, bptt: int = 70, shuffle: bool = False,
                 variable_bptt: bool | None = None, seed: int = 0, max_tokens: int = 0):
        self.docs = [np.asarray(d, dtype=np.int64) for d in docs]
        self.bs, self.bptt, self.shuffle = bs, bptt, shuffle
        self.variable_bptt = shuffle if variable_bptt is None else variable_bptt
        self.generator = torch.Generator().manual_seed(seed)
        n_tokens = sum(len(d) for d in self.docs)
        self.total_tokens = min(n_tokens, max_tokens) if max_tokens else n_tokens
        self.rank, self.world = 0, 1
        if self.total_tokens // bs < 2:
            raise ValueError(f"{self.total_tokens} tokens are too few for {bs} language-model streams")
        self.layout()

    def layout(self) -> None:
        """Rows of the stream: ``bs`` of them per process, ``world x bs`` in all."""
        self.row_len = self.total_tokens // (self.bs * self.world)
        # Each row yields row_len - 1 input positions (its last token is only a target).
        self.n_steps = self.row_len - 1
        if self.variable_bptt:
            mean = self.bptt * (0.95 + 0.05 / 2)
            self._len = min(self.n_steps, max(1, round(self.n_steps / mean)))
        else:
            self._len = math.ceil(self.n_steps / self.bptt)

    def split_over(self, rank: int, world: int, whole_batches: bool = True) -> None:
        """Read streams ``rank x bs`` to ``(rank + 1) x bs`` of a layout of ``world x bs`` (training and
        evaluation alike: every process takes the same number of batches of the same lengths)."""
        if self.total_tokens // (self.bs * world) < 2:
            raise HarnessError(f"{self.total_tokens} tokens are too few for {self.bs} language-model streams in "
                               f"each of {world} processes; lower the language model's batch size or use fewer processes")
        self.rank, self.world = rank, world
        self.layout()

    def __len__(self) -> int:
        return self._len

    @property
    def n_tokens(self) -> int:
        return self.row_len * self.bs

    def stream(self) -> torch.Tensor:
        """This epoch's token streams, shape (bs, row_len)."""
        order = (torch.randperm(len(self.docs), generator=self.generator).tolist() if self.shuffle
                 else range(len(self.docs)))
        rows = self.bs * self.world
        flat = np.concatenate([self.docs[i] for i in order])[: self.row_len * rows]
        return torch.from_numpy(flat).view(rows, self.row_len)[self.rank * self.bs:(self.rank + 1) * self.bs]

    def seq_lens(self) -> list[int]:
        """This epoch's ``len(self)`` batch lengths; they add up to exactly ``row_len - 1``, so every
        epoch reads every row to its end and the scheduler's step count holds."""
        if not self.variable_bptt:
            return [self.bptt] * (len(self) - 1) + [self.n_steps - self.bptt * (len(self) - 1)]
        half = torch.rand(len(self), generator=self.generator) >= 0.95
        noise = torch.randn(len(self), generator=self.generator) * 5
        base = torch.where(half, torch.tensor(self.bptt / 2), torch.tensor(float(self.bptt)))
        draws = (base + noise).clamp(min=5)
        # Stretch or shrink the draws so they cover the rows exactly: rounded cumulative cut points,
        # each at least one token after the previous one.
        cuts = torch.round(torch.cumsum(draws, 0) / draws.sum() * self.n_steps).long().tolist()
        cuts[-1] = self.n_steps
        lens, prev = [], 0
        for i, cut in enumerate(cuts):
            cut = min(max(cut, prev + 1), self.n_steps - (len(cuts) - 1 - i))
            lens.append(cut - prev)
            prev = cut
        return lens

    def __iter__(self):
        data = self.stream()
        i = 0
        for seq_len in self.seq_lens():
            yield data[:, i:i + seq_len], data[:, i + 1:i + 1 + seq_len]
            i += seq_len

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])


class SortedBucketLoader:
    """Classifier batches of documents of similar length, padded at the start to the longest.

    For training (``shuffle``) the documents are shuffled, cut into chunks of ``bs * 50``, each chunk
    sorted by length and cut into batches, and the batches shuffled (the longest batch goes first, so
    memory problems show at once); without shuffle the documents are simply sorted, longest first,
    and ``order`` maps predictions back to the input order. Documents longer than ``max_len`` keep
    their first ``max_len`` tokens. The classifier lays each batch out again for reading (see
    ``PoolingClassifier``), so where the padding goes here does not change a prediction.
    With ``drop_single`` (default: when shuffling) a last batch of one document is left out: a
    BatchNorm head cannot train on one sample.
    """

    def __init__(self, docs: list[np.ndarray], labels=None, bs: int = 32, pad_idx: int = 1, shuffle: bool = False,
                 max_len: int = 0, seed: int = 0, drop_single: bool | None = None):
        if bs < 1:
            raise ValueError(f"batch size {bs} must be at least 1")
        self.docs = [np.asarray(d[:max_len] if max_len else d, dtype=np.int64) for d in docs]
        self.labels = None if labels is None else torch.tensor(np.asarray(labels, dtype=np.float32))
        self.bs, self.pad_idx, self.shuffle = bs, pad_idx, shuffle
        self.drop_single = shuffle if drop_single is None else drop_single
        self.lengths = np.array([len(d) for d in self.docs])
        self.generator = torch.Generator().manual_seed(seed)
        self.rank, self.world, self.whole_batches = 0, 1, True

    def split_over(self, rank: int, world: int, whole_batches: bool = True) -> None:
        """Yield process ``rank`` of ``world``'s part of every batch of ``world x bs`` documents
        (``whole_batches``, training), or its block of the batches (evaluation: in rank order, the order
        of one process)."""
        if world > 1 and whole_batches and self.bs * world > len(self.docs):
            raise HarnessError(f"train.batch_size = {self.bs} per process x {world} processes is larger than the "
                               f"{len(self.docs)} training documents; lower it or use fewer processes")
        self.rank, self.world, self.whole_batches = rank, world, whole_batches

    @property
    def global_bs(self) -> int:
        """Documents in a batch of all the processes together."""
        return self.bs * self.world if self.whole_batches else self.bs

    def _min_part(self) -> int:
        """The fewest documents a process's part of a batch may have (a BatchNorm head needs two)."""
        return 2 if self.drop_single and self.bs > 1 else 1

    def _drops_last(self) -> bool:
        n, bs = len(self.docs), self.global_bs
        if self.world == 1 or not self.whole_batches:
            return self.drop_single and n > 1 and n % bs == 1
        return 0 < n % bs < self.world * self._min_part()

    def __len__(self) -> int:
        count = math.ceil(len(self.docs) / self.global_bs) - int(self._drops_last())
        if self.world > 1 and not self.whole_batches:
            return len(np.array_split(np.arange(count), self.world)[self.rank])
        return count

    def batches(self) -> list[np.ndarray]:
        """This epoch's batches of document indices (this process's share of them when split)."""
        batches = self.whole_batches_of_epoch()
        if self.world == 1:
            return batches
        if not self.whole_batches:
            return [batches[i] for i in np.array_split(np.arange(len(batches)), self.world)[self.rank]]
        return [np.array_split(b, self.world)[self.rank] for b in batches]

    def whole_batches_of_epoch(self) -> list[np.ndarray]:
        bs = self.global_bs
        if not self.shuffle:
            order = np.argsort(-self.lengths, kind="stable")
            batches = [order[i:i + bs] for i in range(0, len(order), bs)]
            return batches[:-1] if self._drops_last() else batches
        perm = torch.randperm(len(self.docs), generator=self.generator).numpy()
        chunk = bs * 50
        batches = []
        for start in range(0, len(perm), chunk):
            part = perm[start:start + chunk]
            part = part[np.argsort(-self.lengths[part], kind="stable")]
            batches.extend(part[i:i + bs] for i in range(0, len(part), bs))
        if self._drops_last():
            # Chunks hold whole batches, so only the very last batch can be short.
            batches = [b for b in batches if len(b) == bs]
        longest = int(np.argmax([self.lengths[b].max() for b in batches]))
        rest = [b for i, b in enumerate(batches) if i != longest]
        shuffled = torch.randperm(len(rest), generator=self.generator).tolist()
        return [batches[longest]] + [rest[i] for i in shuffled]

    @property
    def order(self) -> np.ndarray:
        """Document indices in the order an unshuffled pass yields them."""
        return np.concatenate(self.batches())

    def pad(self, index: np.ndarray) -> torch.Tensor:
        width = max(1, int(self.lengths[index].max()))
        out = np.full((len(index), width), self.pad_idx, dtype=np.int64)
        for row, i in enumerate(index):
            doc = self.docs[i]
            if len(doc):
                out[row, width - len(doc):] = doc
        return torch.from_numpy(out)

    def __iter__(self):
        for index in self.batches():
            yield self.pad(index), (self.labels[index] if self.labels is not None else torch.zeros(len(index)))

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
