"""Tokenized texts cached on disk, keyed by the texts and the tokenizer's settings.

A corpus is stored as one flat array of token ids (into the corpus's own token list, ``itos``) plus
document offsets, so a second run loads 50,000 reviews in well under a second instead of re-running
spaCy. The key is a SHA-256 over the settings and every text, so any change to either misses.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.workspace import atomic_path, cache_dir


def default_cache_dir() -> Path:
    return cache_dir("tokens")


@dataclass
class TokenizedTexts:
    """Documents as token ids into ``itos``: document i is ``ids[offsets[i]:offsets[i + 1]]``."""

    itos: list[str]
    ids: np.ndarray  # int32, all documents back to back
    offsets: np.ndarray  # int64, len(documents) + 1

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def doc(self, i: int) -> np.ndarray:
        return self.ids[self.offsets[i]:self.offsets[i + 1]]

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def tokens(self, i: int) -> list[str]:
        return [self.itos[j] for j in self.doc(i)]

    @classmethod
    def from_tokens(cls, docs: list[list[str]]) -> "TokenizedTexts":
        stoi: dict[str, int] = {}
        flat = []
        offsets = np.zeros(len(docs) + 1, dtype=np.int64)
        for i, doc in enumerate(docs):
            flat.extend(stoi.setdefault(t, len(stoi)) for t in doc)
            offsets[i + 1] = len(flat)
        return cls(list(stoi), np.asarray(flat, dtype=np.int32), offsets)

    def subset(self, index) -> "TokenizedTexts":
        """The documents at ``index`` (same token list)."""
        index = np.asarray(index, dtype=np.int64)
        parts = [self.doc(i) for i in index]
        offsets = np.zeros(len(index) + 1, dtype=np.int64)
        np.cumsum([len(p) for p in parts], out=offsets[1:])
        ids = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int32)
        return TokenizedTexts(self.itos, ids.astype(np.int32), offsets)


def cache_key(texts: list[str], settings: dict) -> str:
    h = hashlib.sha256(json.dumps(settings, sort_keys=True).encode())
    for text in texts:
        data = text.encode("utf-8", "surrogatepass")
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()[:24]


def save(path: Path, corpus: TokenizedTexts) -> None:
    itos = np.frombuffer(json.dumps(corpus.itos).encode("utf-8"), dtype=np.uint8)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, ids=corpus.ids, offsets=corpus.offsets, itos=itos)


def load(path: Path) -> TokenizedTexts:
    with np.load(path) as data:
        itos = json.loads(data["itos"].tobytes().decode("utf-8"))
        return TokenizedTexts(itos, data["ids"], data["offsets"])


def tokenize_cached(texts, tokenizer, cache_dir: str | Path | None = None, progress: bool | None = None,
                    desc: str = "tokenizing") -> TokenizedTexts:
    """Token ids for ``texts``, from the cache when the same texts were tokenized with the same settings.

    ``cache_dir``: a folder, None for the default (<workspace>/cache/tokens), or False to skip caching.
    """
    texts = list(texts)
    if cache_dir is False:
        return TokenizedTexts.from_tokens(tokenizer.tokenize(texts, progress=progress, desc=desc))
    folder = Path(cache_dir) if cache_dir else default_cache_dir()
    path = folder / f"{cache_key(texts, tokenizer.settings())}.npz"
    if path.exists():
        try:
            return load(path)
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache file is rebuilt below
    corpus = TokenizedTexts.from_tokens(tokenizer.tokenize(texts, progress=progress, desc=desc))
    folder.mkdir(parents=True, exist_ok=True)
    save(path, corpus)
    return corpus
