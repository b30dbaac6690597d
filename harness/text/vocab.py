"""The vocabulary: token strings <-> ids, built from training tokens, saved with the run."""
from __future__ import annotations

from collections import Counter
from typing import Iterable

import numpy as np

from harness.text.tokenizer import PAD, SPECIAL_TOKENS, UNK


class Vocab:
    """``itos`` lists the tokens by id: the special tokens first (xxunk = 0, xxpad = 1, xxbos = 2 ...),
    then the most frequent tokens seen at least ``min_freq`` times, up to ``max_vocab`` in all.
    Unknown tokens map to xxunk."""

    def __init__(self, itos: list[str]):
        self.itos = list(itos)
        self.stoi = {tok: i for i, tok in enumerate(self.itos)}
        self.unk, self.pad = self.stoi[UNK], self.stoi[PAD]

    @classmethod
    def build(cls, counts: Counter | Iterable[list[str]], max_vocab: int = 60000, min_freq: int = 2) -> "Vocab":
        if not isinstance(counts, Counter):
            counter = Counter()
            for doc in counts:
                counter.update(doc)
            counts = counter
        itos = list(SPECIAL_TOKENS)
        # Most frequent first; ties broken alphabetically so the vocabulary is deterministic.
        ranked = sorted((tok for tok, n in counts.items() if n >= min_freq and tok not in SPECIAL_TOKENS),
                        key=lambda tok: (-counts[tok], tok))
        itos.extend(ranked[: max(max_vocab - len(itos), 0)])
        return cls(itos)

    def __len__(self) -> int:
        return len(self.itos)

    def numericalize(self, tokens: list[str]) -> np.ndarray:
        get, unk = self.stoi.get, self.unk
        return np.array([get(t, unk) for t in tokens], dtype=np.int64)

    def lookup_from(self, other_itos: list[str]) -> np.ndarray:
        """An array mapping ids of another token list onto this vocabulary (unknown -> xxunk)."""
        get, unk = self.stoi.get, self.unk
        return np.array([get(t, unk) for t in other_itos], dtype=np.int64)

    def state(self) -> list[str]:
        return list(self.itos)
