"""Rossmann ensembles on a held-out window: the network's time-fold models against a seed ensemble.

On the 100-store history (read as bench/rossmann_quality.py reads it), the last ``data.valid_days``
(48) days of train are held out exactly as that script's reported window, and only ever scored:

1. Fold-model ensemble: the rows before the window are cut into the config's ``[validation]`` time
   folds (expanding windows, ``valid_size`` 48 days, ``--folds`` 3, through ``assign_folds`` as
   ``harness train --folds`` does); the default network is trained on each fold's training rows
   (validating on its fold), each fold model predicts the held-out window, and the predictions are
   averaged on log(Sales), the model's output scale.
2. Seed ensemble: the default network trained on every row before the window with each of
   ``--seeds`` (as rossmann_quality.py does), its outputs averaged on the same scale.

Nothing is chosen on the held-out window: no weights, no selection, plain means.

    .venv/bin/python bench/rossmann_ensemble.py --data-dir ../shared/data/rossmann

Writes its own section of bench/results/rossmann_quality.md (``--out`` for another file).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_report import RESULTS, command_line, environment, write_section  # noqa: E402
from bench.rossmann_quality import data_folder, describe, spread, window_masks  # noqa: E402
from harness.config.loading import apply_overrides  # noqa: E402
from harness.host.competition import TrainContext  # noqa: E402
from harness.progress import echo  # noqa: E402
from harness.runs import runner  # noqa: E402
from harness.runs.kfold import fold_plan  # noqa: E402
from harness.scoring.metrics import exp_rmspe_fn  # noqa: E402
from harness.train import seed_everything  # noqa: E402
from harness_plugins.rossmann import Rossmann  # noqa: E402

TARGET = 0.110


def fit_and_predict(comp, raw, config, seed, window_frame, rows=None):
    """Train the default network (the competition's recipe, no run folder) and return its log-sales
    outputs on ``window_frame``, its own validation RMSPE and the seconds it took. ``rows``: (train,
    valid) positions into ``fold_rows``; None is the config's split (train before the window)."""
    cfg = apply_overrides(config, {"seed": seed})
    started = time.perf_counter()
    seed_everything(seed)
    prepared = comp.prepare(raw, cfg, rows=rows)
    learn = runner.make_learner(comp, prepared, cfg, device="cpu", echo=False, progress=None)
    comp.train(TrainContext(learn=learn, config=cfg, prepared=prepared, run=None, workspace=Path(".")))
    outputs = learn.predict(comp.loader(window_frame, prepared.state, 8192)).numpy().astype(np.float64)
    return outputs, float(learn.metrics["rmspe"]), time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--folds", type=int, default=3, help="time folds cut in the rows before the window")
    parser.add_argument("--fold-seed", type=int, default=0, help="the training seed of every fold model")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="the seed ensemble's seeds")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="config override")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy 2-core VM)")
    parser.add_argument("--out", type=Path, default=RESULTS / "rossmann_quality.md")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    wall = time.perf_counter()
    comp = Rossmann()
    config = apply_overrides(comp.default_config(), args.overrides)
    days = int(config["data"]["valid_days"])
    validation = config["validation"]
    raw = comp.load(data_folder(args.data_dir), config)
    frame = comp.features(raw, config)
    train, valid = window_masks(comp, frame, config, tuning=False)  # rossmann_quality.py's reported window
    window_frame = frame[valid]
    window_targets = np.log(window_frame["Sales"].to_numpy(dtype=np.float64))

    # Positions into fold_rows (the rows with sales, in train.csv's order), which prepare(rows=...) takes.
    rows = comp.fold_rows(raw, config)
    with_sales = np.flatnonzero(comp.sales_mask(frame))
    before = np.flatnonzero(train[with_sales])
    if not np.array_equal(np.flatnonzero(valid[with_sales]), np.setdiff1d(np.arange(len(rows)), before)):
        raise SystemExit("the window and the rows before it do not cover the rows with sales")
    plan = fold_plan(rows.iloc[before].reset_index(drop=True), config, args.folds)
    echo(plan.describe())

    lines = [f"## Ensembles on the held-out {days} days: time-fold models and seeds", "",
             f"Command: `{command_line()}`", "", *environment(), "",
             f"- Held-out window (`data.valid_days = {days}`, as `bench/rossmann_quality.py`'s reported window): "
             f"{describe(frame, valid)}; never used to train, validate or choose",
             f"- Rows before it: {describe(frame, train)}",
             f"- Time folds of those rows (`[validation]` of `competitions/rossmann.toml`: scheme "
             f"{validation['scheme']} on {validation['time']}, valid_size {validation['valid_size']}, gap "
             f"{validation['gap']}; {plan.n_folds} folds, via `assign_folds`), the default network trained "
             f"with seed {args.fold_seed} on each:", ""]
    fold_table = ["| fold model | trains on | validates on (its fold) | its fold's RMSPE | RMSPE on the held-out "
                  "window | seconds |", "|---|---|---|---|---|---|"]
    fold_outputs, fold_scores = [], []
    for i in range(plan.n_folds):
        fit_rows, fold_valid = before[plan.train_index(i)], before[plan.valid_index(i)]
        fit_mask, fold_mask = np.zeros(len(frame), bool), np.zeros(len(frame), bool)
        fit_mask[with_sales[fit_rows]], fold_mask[with_sales[fold_valid]] = True, True
        outputs, own, seconds = fit_and_predict(comp, raw, config, args.fold_seed, window_frame,
                                                rows=(fit_rows, fold_valid))
        score = exp_rmspe_fn(outputs, window_targets)
        fold_outputs.append(outputs)
        fold_scores.append(score)
        echo(f"fold {i}: own fold rmspe {own:.4f}, held-out window rmspe {score:.4f} ({seconds:.0f} s)")
        fold_table.append(f"| fold {i} | {describe(frame, fit_mask)} | {describe(frame, fold_mask)} | {own:.4f} | "
                          f"{score:.4f} | {seconds:.0f} |")
    fold_ensemble = exp_rmspe_fn(np.mean(fold_outputs, axis=0), window_targets)
    echo(f"fold ensemble: held-out window rmspe {fold_ensemble:.4f}")
    lines += [*fold_table, ""]

    seed_outputs, seed_scores, seed_seconds = [], [], []
    for seed in args.seeds:
        outputs, own, seconds = fit_and_predict(comp, raw, config, seed, window_frame)
        score = exp_rmspe_fn(outputs, window_targets)
        if abs(score - own) > 1e-4:  # the learner scored the same rows itself
            raise SystemExit(f"seed {seed}: held-out rmspe {score:.5f} differs from the learner's {own:.5f}")
        seed_outputs.append(outputs)
        seed_scores.append(score)
        seed_seconds.append(seconds)
        echo(f"seed {seed}: held-out window rmspe {score:.4f} ({seconds:.0f} s)")
    seed_ensemble = exp_rmspe_fn(np.mean(seed_outputs, axis=0), window_targets)
    echo(f"seed ensemble: held-out window rmspe {seed_ensemble:.4f}")

    seeds_text = ", ".join(map(str, args.seeds))
    lines += [f"On the held-out {days} days (plain means of log(Sales) outputs; no weights, no selection):", "",
              "| model | members' RMSPE | members' mean | spread (max-min) | ensemble RMSPE |", "|---|---|---|---|---|",
              f"| {plan.n_folds} time-fold models (seed {args.fold_seed}), mean of outputs | {spread(fold_scores)} | "
              f"**{fold_ensemble:.4f}** |",
              f"| default network on all rows before the window, seeds {seeds_text}, mean of outputs | "
              f"{spread(seed_scores)} | **{seed_ensemble:.4f}** |", "",
              f"- Seconds per seed fit: {statistics.mean(seed_seconds):.0f}; whole script: "
              f"{time.perf_counter() - wall:.0f} s", ""]

    single = statistics.mean(seed_scores)
    best = min(fold_ensemble, seed_ensemble)
    met = "is met" if best <= TARGET else "is not met"
    order = "better" if fold_ensemble < seed_ensemble else "worse"
    lines.append(
        f"The issue's target of ≤ {TARGET:.3f} on these {days} days {met}: the fold-model ensemble scores "
        f"{fold_ensemble:.4f} and the seed ensemble {seed_ensemble:.4f}. The fold ensemble is {order} than the "
        f"seed ensemble by {abs(fold_ensemble - seed_ensemble):.4f} (its members train on {days} to "
        f"{plan.n_folds * days} fewer days and predict further ahead; their own mean is "
        f"{statistics.mean(fold_scores):.4f}); against the mean of this run's single seeds, "
        f"{single:.4f}, the fold ensemble is {fold_ensemble - single:+.4f} and the seed ensemble "
        f"{seed_ensemble - single:+.4f}.")
    section = "\n".join(lines)
    print(section)
    write_section(args.out, "bench/rossmann_ensemble.py", section)
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
