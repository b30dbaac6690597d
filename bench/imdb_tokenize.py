"""IMDB tokenization speed: our tokenizer (spaCy + the fastai rules) against bare spaCy, and the cache.

    python bench/imdb_tokenize.py --data-dir ../shared/data/imdb

Reads all 50,000 labelled reviews (any layout the plugin reads). The two tokenizers alternate over
chunks of 5,000 reviews, so load changes on the shared machine hit both alike; each chunk is timed
on the same texts, both in CPU seconds of this process (``time.process_time``: what the work costs,
whatever else the shared machine runs) and in wall-clock seconds. "bare" is ``spacy.blank("en").tokenizer`` making a Doc per review and reading
its token strings (what any use of the tokens needs); "bare (Doc only)" skips the strings.
Then the cached path: a first ``tokenize_cached`` call into an empty temporary cache (tokenizes and
writes), and a second call with the same texts (hash + load).

Targets: ours >= 0.8 x bare's reviews/s; the cached second run under 5 s.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import spacy


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--chunk", type=int, default=5000)
    ap.add_argument("--limit", type=int, default=0, help="use only the first N reviews (0: all)")
    args = ap.parse_args()

    from harness.text.cache import tokenize_cached
    from harness.text.tokenizer import Tokenizer
    from harness_plugins.imdb import data as imdb_data

    started = time.perf_counter()
    data = imdb_data.load(Path(args.data_dir))
    texts = data.train["text"].tolist() + (data.test["text"].tolist() if data.test is not None else [])
    if args.limit:
        texts = texts[: args.limit]
    load_s = time.perf_counter() - started
    n_chars = sum(map(len, texts))
    print(f"{len(texts):,} reviews, {n_chars:,} characters, read in {load_s:.1f} s")

    bare = spacy.blank("en").tokenizer
    ours = Tokenizer()
    warm = texts[:2000]  # fill spaCy's internal caches for both before timing
    for t in warm:
        bare(t)
    ours.tokenize(warm, progress=False)

    times = {"bare": 0.0, "bare (Doc only)": 0.0, "ours": 0.0}
    walls = dict.fromkeys(times, 0.0)
    n_tokens = 0

    def timed(name, fn):
        c0, w0 = time.process_time(), time.perf_counter()
        out = fn()
        times[name] += time.process_time() - c0
        walls[name] += time.perf_counter() - w0
        return out

    for start in range(0, len(texts), args.chunk):
        chunk = texts[start:start + args.chunk]
        timed("bare", lambda: [[t.text for t in doc] for doc in bare.pipe(chunk, batch_size=1000)])
        out = timed("ours", lambda: ours.tokenize(chunk, progress=False))
        timed("bare (Doc only)", lambda: [None for _ in bare.pipe(chunk, batch_size=1000)])
        n_tokens += sum(map(len, out))
        print(f"  {start + len(chunk):>6,} reviews: CPU s bare {times['bare']:.1f}, ours {times['ours']:.1f}", flush=True)

    with tempfile.TemporaryDirectory() as cache:
        t0 = time.perf_counter()
        tokenize_cached(texts, ours, cache, progress=False)
        first = time.perf_counter() - t0
        t0, c0 = time.perf_counter(), time.process_time()
        corpus = tokenize_cached(texts, ours, cache, progress=False)
        second, second_cpu = time.perf_counter() - t0, time.process_time() - c0
        size = sum(p.stat().st_size for p in Path(cache).glob("*.npz"))

    n = len(texts)
    print()
    print("| tokenizer | CPU s | reviews/CPU s | speed vs bare (CPU) | wall s | speed vs bare (wall) |")
    print("|---|---|---|---|---|---|")
    for name in ("bare (Doc only)", "bare", "ours"):
        print(f"| {name} | {times[name]:.1f} | {n / times[name]:,.0f} | {times['bare'] / times[name]:.2f} | "
              f"{walls[name]:.1f} | {walls['bare'] / walls[name]:.2f} |")
    print()
    print(f"ours: {n_tokens:,} tokens ({n_tokens / n:.0f} per review, markers included)")
    print(f"ours vs bare (Doc only): {times['bare (Doc only)'] / times['ours']:.2f} (CPU)")
    print(f"cache: first tokenize_cached {first:.1f} s (tokenize + write {size / 2**20:.0f} MiB); "
          f"second {second:.2f} s wall, {second_cpu:.2f} s CPU ({len(corpus):,} reviews, {len(corpus.itos):,} distinct tokens)")


if __name__ == "__main__":
    main()
