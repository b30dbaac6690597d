"""The peer on the same ml-100k folds: fastai's collab_learner with the fastai book's recipe, untuned.

The recipe is the book's chapter 8 one (n_factors 50, y_range (0, 5.5), fit_one_cycle(5, 5e-3,
wd=0.1), batch size 64), used as published: nothing is chosen on any test fold. fastai is not a
harness dependency; run this with a separate environment that has it, e.g.

    python -m venv /tmp/fastai-venv && /tmp/fastai-venv/bin/pip install fastai
    /tmp/fastai-venv/bin/python bench/movielens_fastai_peer.py --data-dir ../shared/data/movielens/ml-100k

Writes its section of bench/results/movielens.md (``--out`` for another file).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_report import RESULTS, command_line, environment, write_section  # noqa: E402

FOLDS = ("u1", "u2", "u3", "u4", "u5")


def read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", header=None, names=["user", "item", "rating", "timestamp"])


def fastai_rmse(base: pd.DataFrame, test: pd.DataFrame, seed: int) -> tuple[float, float]:
    import torch
    from fastai.collab import TabularCollab, collab_learner
    from fastai.tabular.all import Categorify, TransformBlock, set_seed

    set_seed(seed, reproducible=True)
    frame = pd.concat([base, test], ignore_index=True)[["user", "item", "rating"]]
    splits = (list(range(len(base))), list(range(len(base), len(frame))))
    # What CollabDataLoaders.from_df builds, with the predefined split instead of a random one.
    to = TabularCollab(frame, [Categorify], cat_names=["user", "item"], y_names=["rating"],
                       y_block=TransformBlock(), splits=splits)
    dls = to.dataloaders(path=".", bs=64)
    learn = collab_learner(dls, n_factors=50, y_range=(0, 5.5))
    started = time.perf_counter()
    with learn.no_bar(), learn.no_logging():
        learn.fit_one_cycle(5, 5e-3, wd=0.1)
    seconds = time.perf_counter() - started
    preds, targets = learn.get_preds(ds_idx=1)
    return float(torch.sqrt(((preds.view(-1) - targets.view(-1)) ** 2).mean())), seconds


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=Path("../shared/data/movielens/ml-100k"))
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--folds", default=",".join(FOLDS))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=RESULTS / "movielens.md")
    args = ap.parse_args()

    import fastai
    import torch

    torch.set_num_threads(args.threads)
    folds = args.folds.split(",")
    lines = ["## Peer: fastai collab_learner, the book's recipe, untuned", "", f"Command: `{command_line()}`", "",
             *environment({"fastai": fastai.__version__}), "",
             "Train on each fold's base, score its test; `collab_learner(n_factors=50, y_range=(0, 5.5))`, "
             f"`fit_one_cycle(5, 5e-3, wd=0.1)`, batch size 64, seed {args.seed}.", "",
             f"| model | {' | '.join(folds)} | mean ± sd | seconds per fit |", "|---|" + "---|" * (len(folds) + 2)]
    scores, seconds = [], []
    for fold in folds:
        score, secs = fastai_rmse(read(args.data_dir / f"{fold}.base"), read(args.data_dir / f"{fold}.test"), args.seed)
        scores.append(score)
        seconds.append(secs)
        print(f"fold {fold}: rmse {score:.4f} ({secs:.0f} s)", file=sys.stderr, flush=True)
    sd = statistics.stdev(scores) if len(scores) > 1 else 0.0
    lines.append(f"| fastai {fastai.__version__} collab_learner (dot product) | {' | '.join(f'{s:.4f}' for s in scores)} "
                 f"| {np.mean(scores):.4f} ± {sd:.4f} | {np.mean(seconds):.0f} |")
    section = "\n".join(lines)
    print(section)
    write_section(args.out, "bench/movielens_fastai_peer.py", section)
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
