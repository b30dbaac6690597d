"""Hyperparameter search on the real MovieLens u1 split: tuned vs default config, and the tuning overhead.

In one process: train the default config; run an N-trial study (TPE, median pruner, SQLite storage in
a scratch workspace); retrain the exported best trial (it must reproduce the trial's score); blend the
top K trials. The overhead of the tuning machinery per trial (sampling, storage, heartbeat, pruning
reports, progress bar) is a trial's time outside `runner.train` over its time inside it, as wall
time and as this process's CPU time (steadier on a shared machine).

    .venv/bin/python bench/tune_movielens.py --data-dir ../shared/data/movielens/ml-100k --trials 16

bench/tune_rossmann.py runs the same on Rossmann.
"""
from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from harness.runs import runner
from harness.config.loading import apply_overrides, load_config
from harness.host.plugins import get_competition
from harness.tune import blend as blending, export
from harness.tune.pruning import recipe_epochs
from harness.tune.study import (Objective, check_search_space, direction_of, make_pruner, make_sampler,
                                make_storage, open_study, optimize)


def main(argv=None, default_overrides=("data.split=u1",), prepare_data=lambda path: path):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=Path("../shared/data/movielens/ml-100k"))
    ap.add_argument("--competition", default="movielens")
    ap.add_argument("--set", dest="overrides", action="append", default=None,
                    help=f"config overrides for every run (default: {' '.join(default_overrides)})")
    ap.add_argument("--trials", type=int, default=16)
    ap.add_argument("--top-k", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workspace", type=Path, default=None, help="scratch folder (default: a new temp dir)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = ap.parse_args(argv)
    if not args.data_dir.exists():
        raise SystemExit(f"no data at {args.data_dir}; pass --data-dir")
    if args.threads:
        torch.set_num_threads(args.threads)
    args.data_dir = prepare_data(args.data_dir)
    overrides = args.overrides if args.overrides is not None else list(default_overrides)
    ws = args.workspace or Path(tempfile.mkdtemp(prefix="tune-bench-"))
    comp = get_competition(args.competition)
    config = apply_overrides(comp.default_config(), overrides)

    t0 = time.perf_counter()
    default_run = runner.train(comp, config, args.data_dir, ws, echo=False, progress=True)
    default_s = time.perf_counter() - t0
    default = default_run.summary()

    # The same steps as `harness tune`, timed apart: opening the study once, then the trials.
    t0 = time.perf_counter()
    check_search_space(config)
    study = open_study(make_storage(None, ws), comp.name, direction_of(comp, config), make_sampler("tpe", args.seed),
                       make_pruner("median", recipe_epochs(comp, config)), config=config, competition=comp.name)
    objective = Objective(comp, config, args.data_dir, ws)
    setup_s = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    optimize(study, objective, args.trials, None)
    study_s, study_cpu = time.perf_counter() - t0, time.process_time() - c0
    states = [t.state.name for t in study.trials]
    train_s, train_cpu = sum(objective.train_seconds), sum(objective.train_cpu_seconds)

    best = study.best_trial
    exported = export.export_config(study, best, ws, comp, ws / "best.toml")
    rerun = runner.train(comp, load_config(exported), args.data_dir, ws, echo=False, progress=True).summary()
    blended = blending.blend(comp, study, ws, args.top_k)

    metric = default["primary_metric"]
    n = len(objective.train_seconds)
    print(f"date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}; machine: {platform.node()}, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}, load average {os.getloadavg()[0]:.1f} at the end")
    print(f"competition {comp.name}, overrides {overrides}, search space {list(config['search'])}\n")
    print(f"| what | validation {metric} | trials | wall time |")
    print("|---|---|---|---|")
    print(f"| default config | {default['primary_score']:.5f} | 1 | {default_s:.0f} s |")
    print(f"| tuned: best trial {best.number} | {best.value:.5f} | {len(states)} "
          f"({states.count('COMPLETE')} complete, {states.count('PRUNED')} pruned, {states.count('FAIL')} failed) "
          f"| {setup_s + study_s:.0f} s |")
    print(f"| best trial retrained from its exported config | {rerun['primary_score']:.5f} | 1 | "
          f"{rerun['train_seconds']:.0f} s |")
    print(f"| blend of the top {len(blended.trial_scores)} trials (validation preds) | {blended.score:.5f} | - | - |")
    print(f"\nbest trial's parameters: {best.params}")
    print(f"exported config reproduces the trial: {abs(rerun['primary_score'] - best.value) < 1e-6} "
          f"(difference {rerun['primary_score'] - best.value:+.2e})\n")
    print("| tuning overhead per trial | wall | CPU (this process) |")
    print("|---|---|---|")
    print(f"| inside runner.train, all {n} trials | {train_s:.1f} s | {train_cpu:.1f} s |")
    print(f"| all trials (study.optimize) | {study_s:.1f} s | {study_cpu:.1f} s |")
    print(f"| machinery per trial | {(study_s - train_s) / n * 1000:.0f} ms | {(study_cpu - train_cpu) / n * 1000:.0f} ms |")
    print(f"| machinery / training time | {(study_s - train_s) / train_s:.2%} | {(study_cpu - train_cpu) / train_cpu:.2%} |")
    print(f"\nopening the study (storage, tables, sampler), once per worker: {setup_s * 1000:.0f} ms")
    print(f"workspace: {ws}")


if __name__ == "__main__":
    main()
