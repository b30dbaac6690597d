"""A short content fingerprint of a data folder, so a score can be tied to the exact data behind it.

Hashing every byte of a large folder takes a while, so with a ``cache_dir`` (the workspace's) the result
is cached there under a signature of the files' names, sizes and modification times: a second call on
unchanged data only lists the files. Nothing is ever written into the data folder itself, which may be
shared and read-only.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tqdm import tqdm

from harness.workspace import write_json

CHUNK = 1 << 20


def data_files(folder: Path) -> list[Path]:
    """Every file under ``folder`` except hidden ones (our own markers and caches among them)."""
    folder = Path(folder)
    return sorted(p for p in folder.rglob("*")
                  if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts))


def data_fingerprint(folder, cache_dir=None) -> str:
    """16 hex digits of SHA-256 over every file's relative path and content."""
    folder = Path(folder)
    files = data_files(folder)
    stats = [(p.relative_to(folder).as_posix(), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    signature = hashlib.sha256(json.dumps([str(folder.resolve()), stats]).encode()).hexdigest()
    cache = None
    if cache_dir is not None:
        cache = Path(cache_dir) / f"{hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:20]}.json"
        try:
            cached = json.loads(cache.read_text())
            if cached.get("signature") == signature:
                return cached["fingerprint"]
        except (OSError, ValueError, KeyError, AttributeError):
            pass
    digest = hashlib.sha256()
    total = sum(size for _, size, _ in stats)
    with tqdm(total=total, unit="B", unit_scale=True, desc=f"fingerprint {folder.name}", leave=False,
              disable=total < 200 * CHUNK) as bar:
        for path, (rel, size, _) in zip(files, stats):
            digest.update(f"{rel}\0{size}\0".encode())
            with open(path, "rb") as f:
                while block := f.read(CHUNK):
                    digest.update(block)
                    bar.update(len(block))
    fingerprint = digest.hexdigest()[:16]
    if cache is not None:
        try:
            write_json(cache, {"folder": str(folder.resolve()), "signature": signature, "fingerprint": fingerprint})
        except OSError:  # no cache, no harm
            pass
    return fingerprint


def workspace_cache(workspace) -> Path:
    return Path(workspace) / "cache" / "fingerprints"
