"""Trainer overhead: one epoch of u1.base with the Learner against a plain hand-written PyTorch loop.

Same dot-product model, same AdamW + one-cycle schedule, same shuffled batches. Times are CPU
seconds of this process (time.process_time), which other load on the machine disturbs far less
than wall time. Runs alternate
(hand, learner, hand, learner, ...) and the ratio of medians is reported, since the machine is
shared and noisy.

    .venv/bin/python bench/movielens_trainer_overhead.py --data-dir ../shared/data/movielens/ml-100k

Writes its section of bench/results/movielens.md (``--out`` for another file).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import pandas as pd
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_report import RESULTS, command_line, environment, write_section  # noqa: E402
from harness.data.files import read_table  # noqa: E402
from harness.data.loaders import TensorLoader  # noqa: E402
from harness.scoring.metrics import rmse  # noqa: E402
from harness.models.collab import DotProductBias  # noqa: E402
from harness.progress import echo  # noqa: E402
from harness.train import Learner  # noqa: E402
from harness.train.callbacks import ProgressBar, Recorder  # noqa: E402


def load(data_dir: Path):
    train = read_table(data_dir / "u1.base", sep="\t", header=None, names=["user", "item", "rating", "timestamp"],
                       integer=("user", "item"), numeric=("rating",))
    users, items = sorted(train["user"].unique()), sorted(train["item"].unique())
    # Embedding rows 1..n, as the plugin numbers them (0 is for ids never seen in training).
    u = torch.as_tensor(pd.Index(users).get_indexer(train["user"]) + 1, dtype=torch.long)
    i = torch.as_tensor(pd.Index(items).get_indexer(train["item"]) + 1, dtype=torch.long)
    r = torch.tensor(train["rating"].to_numpy(dtype="float32"))
    return u, i, r, len(users) + 1, len(items) + 1


def new_model(n_users, n_items):
    torch.manual_seed(0)
    return DotProductBias(n_users, n_items, 50, (0.0, 5.5), 3.5)


def hand_loop(data, bs, lr=5e-3, wd=0.1):
    u, i, r, n_users, n_items = data
    model = new_model(n_users, n_items)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd, betas=(0.9, 0.99))
    steps = (len(r) + bs - 1) // bs
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.25)
    loss_fn = nn.MSELoss()
    g = torch.Generator().manual_seed(0)
    start = time.process_time()
    model.train()
    perm = torch.randperm(len(r), generator=g)
    u, i, r = u[perm], i[perm], r[perm]
    for k in range(steps):
        sl = slice(k * bs, (k + 1) * bs)
        loss = loss_fn(model(u[sl], i[sl]), r[sl])
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        sched.step()
    return time.process_time() - start


def learner_loop(data, bs, lr=5e-3, wd=0.1, progress=False):
    u, i, r, n_users, n_items = data
    model = new_model(n_users, n_items)
    train_dl = TensorLoader((u, i), r, batch_size=bs, shuffle=True, seed=0)
    cbs = [Recorder(echo=False)] + ([ProgressBar(disable=False)] if progress else [])
    learn = Learner(model, train_dl, None, nn.MSELoss(), [rmse], wd=wd, device="cpu", callbacks=cbs)
    start = time.process_time()
    learn.fit_one_cycle(1, lr)
    return time.process_time() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=Path("../shared/data/movielens/ml-100k"))
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch-sizes", default="64,1024")
    ap.add_argument("--out", type=Path, default=RESULTS / "movielens.md")
    args = ap.parse_args()
    torch.set_num_threads(1)  # the small model gains nothing from threads; fewer threads, less noise
    data = load(args.data_dir)
    lines = ["## Trainer overhead (Learner vs a hand-written PyTorch loop)", "",
             f"Command: `{command_line()}`", "", *environment(), "",
             f"Same `DotProductBias` model (50 factors), AdamW + OneCycleLR, the same shuffled batches of u1.base "
             f"({len(data[2]):,} ratings), one epoch; 1 torch thread; CPU seconds of this process "
             f"(`time.process_time`), median of {args.repeats} interleaved repeats. The Learner runs with its "
             "Recorder callback (per-batch loss) and, in the last column, the progress bar callback as well "
             "(forced on, drawing to stderr).", "",
             "| batch size | hand loop (s, median) | Learner (s) | ratio | Learner + progress bar (s) | ratio |",
             "|---|---|---|---|---|---|"]
    for bs in map(int, args.batch_sizes.split(",")):
        hand, learn, bar = [], [], []
        hand_loop(data, bs)  # warm-up
        for _ in range(args.repeats):
            hand.append(hand_loop(data, bs))
            learn.append(learner_loop(data, bs))
            bar.append(learner_loop(data, bs, progress=True))
        h, l, b = (statistics.median(x) for x in (hand, learn, bar))
        lines.append(f"| {bs} | {h:.3f} | {l:.3f} | {l / h:.3f} | {b:.3f} | {b / h:.3f} |")
        echo(lines[-1])
    lines += ["", "Targets: at most 1.10 at batch size 64, at most 1.05 at 1024. The two Learner columns differ "
              "only by the progress bar; their difference shows the noise level of the measurement."]
    section = "\n".join(lines)
    print(section)
    write_section(args.out, "bench/movielens_trainer_overhead.py", section)
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
