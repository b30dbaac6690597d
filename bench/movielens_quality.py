"""Quality on the canonical ml-100k u1 split: train on u1.base, score RMSE on u1.test, default config.

    .venv/bin/python bench/movielens_quality.py --data-dir ../shared/data/movielens/ml-100k --seeds 42,1,2

Published on this split: GC-MC 0.905 to 0.910, GLocal-K 0.889. Measured on this machine by the
issue's author: fastai 2.8 collab_learner 0.934, Surprise SVD 0.956, SVD++ 0.934. Target: <= 0.92
in under two minutes on this CPU.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from harness import runner
from harness.config import apply_overrides
from harness.plugins import get_competition


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=Path("../shared/data/movielens/ml-100k"))
    ap.add_argument("--seeds", default="42", help="comma-separated; 42 is the default config's seed")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="extra config overrides")
    args = ap.parse_args()
    comp = get_competition("movielens")
    print(f"# {time.strftime('%Y-%m-%d %H:%M')} {platform.node()} {platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; overrides: {args.overrides or 'none'}")
    print("| seed | u1.test RMSE | wall time (s) |")
    print("|---|---|---|")
    scores = []
    with tempfile.TemporaryDirectory() as ws:
        for seed in map(int, args.seeds.split(",")):
            config = apply_overrides(comp.default_config(), ["data.split=u1", f"seed={seed}", *args.overrides])
            start = time.perf_counter()
            run = runner.train(comp, config, args.data_dir, Path(ws), device="cpu", echo=False, progress=True)
            seconds = time.perf_counter() - start
            score = run.summary()["primary_score"]
            scores.append(score)
            print(f"| {seed} | {score:.4f} | {seconds:.1f} |", flush=True)
    if len(scores) > 1:
        print(f"| mean ± sd | {statistics.mean(scores):.4f} ± {statistics.stdev(scores):.4f} | |")


if __name__ == "__main__":
    main()
