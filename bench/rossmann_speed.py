"""Rossmann speed at full competition scale (1,017,209 train rows).

Builds a train.csv of that size by replicating the 100-store subset's stores under new ids (with
their store.csv and store_states.csv rows), then times (1) reading, feature engineering and
preprocessing, (2) one training epoch of the shared Learner against a hand-written PyTorch loop over
the same model, tensors, optimizer and one-cycle schedule, alternating the two.

    .venv/bin/python bench/rossmann_speed.py --data-dir ../shared/data/rossmann

Writes its section of bench/results/rossmann_speed.md (``--out`` for another file).
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_report import RESULTS, command_line, environment, write_section  # noqa: E402
from harness.runs import runner  # noqa: E402
from harness.config.loading import apply_overrides  # noqa: E402
from harness.progress import echo, stderr_is_terminal  # noqa: E402
from harness.train import seed_everything  # noqa: E402
from harness_plugins.rossmann import Rossmann  # noqa: E402

FULL_ROWS = 1_017_209


def build_full_scale(source: Path, folder: Path, rows: int) -> None:
    """Kaggle-sized files: copy k of every subset store gets id ``store + 1115 * k``."""
    source = source.resolve()  # the links below need absolute targets
    train = pd.read_csv(source / "train_subset_100stores.csv.gz", dtype={"StateHoliday": str})
    store = pd.read_csv(source / "store.csv")
    states = pd.read_csv(source / "store_states.csv")
    copies = -(-rows // len(train))
    subset = store[store["Store"].isin(train["Store"].unique())]
    sub_states = states[states["Store"].isin(train["Store"].unique())]
    trains, stores, state_rows = [], [store], [states]
    for k in range(copies):
        trains.append(train.assign(Store=train["Store"] + 1115 * k))
        if k:
            stores.append(subset.assign(Store=subset["Store"] + 1115 * k))
            state_rows.append(sub_states.assign(Store=sub_states["Store"] + 1115 * k))
    # Kaggle's order: newest day first; cut to exactly the competition's row count.
    full = pd.concat(trains, ignore_index=True).sort_values(["Date", "Store"], ascending=[False, True]).iloc[:rows]
    full.to_csv(folder / "train.csv", index=False)
    pd.concat(stores).to_csv(folder / "store.csv", index=False)
    pd.concat(state_rows).to_csv(folder / "store_states.csv", index=False)
    for name in ("test.csv", "sample_submission.csv", "weather"):
        os.symlink(source / name, folder / name)


class FirstBatches:
    """The first ``n`` batches of a loader (the same ones for both loops), or all with n = 0."""

    def __init__(self, loader, n):
        self.loader, self.n = loader, n

    def __len__(self):
        return min(self.n, len(self.loader)) if self.n else len(self.loader)

    def __iter__(self):
        for i, batch in enumerate(self.loader):
            if i == len(self):
                return
            yield batch


def hand_loop(model, loader, groups, lrs, wd, betas):
    """The plain PyTorch loop the Learner is measured against."""
    import torch

    opt = torch.optim.AdamW([{"params": g} for g in groups], lr=1e-3, weight_decay=wd, betas=betas)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lrs, total_steps=len(loader), pct_start=0.25,
                                                base_momentum=0.85, max_momentum=0.95)
    loss_fn = torch.nn.MSELoss()
    model.train()
    for (cats, conts), y in loader:
        loss = loss_fn(model(cats, conts), y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        sched.step()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="the folder with train_subset_100stores.csv.gz")
    parser.add_argument("--rows", type=int, default=FULL_ROWS)
    parser.add_argument("--batches", type=int, default=0, help="time only the first N batches of the epoch (0: all)")
    parser.add_argument("--repeats", type=int, default=2, help="epochs per loop, alternating Learner and hand loop")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--out", type=Path, default=RESULTS / "rossmann_speed.md")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    comp = Rossmann()
    config = apply_overrides(comp.default_config(), args.overrides)
    folder = Path(tempfile.mkdtemp(prefix="rossmann-speed-"))
    lines = ["## Result", "", f"Command: `{command_line()}`", "", *environment(), ""]
    started = time.perf_counter()
    build_full_scale(args.data_dir, folder, args.rows)
    echo(f"built {args.rows} rows in {folder} in {time.perf_counter() - started:.1f} s")

    t0 = time.perf_counter()
    raw = comp.load(folder, config)
    t1 = time.perf_counter()
    frame = comp.features(raw, config)
    t2 = time.perf_counter()
    prepared = comp.prepare(raw, config)  # split, fit the preprocessor, transform, tensors
    t3 = time.perf_counter()
    lines += [f"train rows {len(raw.train):,}, train and test rows with features {len(frame):,}, training rows "
              f"{prepared.train_dl.n_rows:,}", "",
              "| read and check the files | feature engineering | preprocessing (split, fit, transform, tensors) "
              "| features + preprocessing (target < 20 s) |", "|---|---|---|---|",
              f"| {t1 - t0:.1f} s | {t2 - t1:.1f} s | {t3 - t2:.1f} s | **{t3 - t1:.1f} s** |", ""]
    echo(lines[-2])

    t = config["train"]
    loader = FirstBatches(prepared.train_dl, args.batches)
    learner_times, hand_times = [], []
    def time_learner(repeat):
        seed_everything(repeat)
        learn = runner.make_learner(comp, prepared, config, device="cpu", echo=False, progress=None)
        learn.train_dl, learn.valid_dl = loader, None
        started = time.perf_counter()
        learn.fit(1, t["lr"], schedule="one-cycle", pct_start=0.25)
        learner_times.append(time.perf_counter() - started)

    def time_hand_loop(repeat):
        seed_everything(repeat)
        model = comp.build_model(prepared.state, config)
        groups = comp.layer_groups(model)
        started = time.perf_counter()
        hand_loop(model, loader, groups, [t["lr"]] * len(groups), t["wd"], tuple(t.get("betas", (0.9, 0.99))))
        hand_times.append(time.perf_counter() - started)

    for repeat in range(args.repeats):
        # Alternate which loop goes first, so a neighbour's load drifting up or down hits both alike.
        order = (time_learner, time_hand_loop) if repeat % 2 == 0 else (time_hand_loop, time_learner)
        for timed in order:
            timed(repeat)
        echo(f"repeat {repeat}: Learner {learner_times[-1]:.1f} s, hand loop {hand_times[-1]:.1f} s, "
             f"ratio {learner_times[-1] / hand_times[-1]:.3f}")
    n_batches = len(loader)
    bar_state = "bar drawn: stderr is a terminal" if stderr_is_terminal() else "bar not drawn: stderr is not a terminal"
    lines += [f"One training epoch: {n_batches} of {len(prepared.train_dl)} batches (batch size {t['batch_size']}), "
              f"{args.repeats} repeats, alternating which loop goes first; torch threads: {args.threads}.", "",
              "| loop | seconds per repeat | median |", "|---|---|---|",
              f"| Learner (recorder and progress bar callbacks; {bar_state}) | {', '.join(f'{x:.1f}' for x in learner_times)} | "
              f"{statistics.median(learner_times):.1f} |",
              f"| hand-written loop | {', '.join(f'{x:.1f}' for x in hand_times)} | {statistics.median(hand_times):.1f} |",
              "",
              f"- ratio of medians: **{statistics.median(learner_times) / statistics.median(hand_times):.3f}** "
              "(target <= 1.05)",
              f"- ratio of best repeats: {min(learner_times) / min(hand_times):.3f}",
              f"- per-repeat ratios: {', '.join(f'{a / b:.3f}' for a, b in zip(learner_times, hand_times))}"]
    shutil.rmtree(folder, ignore_errors=True)  # the built train.csv is large
    section = "\n".join(lines)
    print(section)
    write_section(args.out, "bench/rossmann_speed.py", section)
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
