"""Hyperparameter search on the real MovieLens u1 split: tuned vs default config, chosen on validation, reported on test once.

In one process:

1. Choose, never reading u1.test: the rows of u1.base are cut into a fit part and a validation part
   with the same seeded 10% split bench/movielens_quality.py chose the config's defaults on
   (``validation_split``); they are written to a scratch folder as u1.base / u1.test (and their
   union as u.data), so every run there is a plain ``data.split = "u1"`` run that trains on the fit
   part and validates on the validation part. On it: the default config (for reference), an N-trial
   study (TPE, median pruner, SQLite storage in a scratch workspace), the exported best trial
   retrained (it must reproduce the trial's score) and the mean of the top K trials' validation
   predictions (the top K are picked on these rows, so that score is optimistic).
2. Report once, on the real data with ``data.split = "u1"`` (train on all of u1.base, score u1.test):
   the default config, the best trial's exported config, and the mean of the top K trials'
   predictions (the same K configs, retrained on u1.base; equal weights, so nothing is fitted on
   u1.test). Nothing of step 2 feeds back into a choice.

The overhead of the tuning machinery per trial (sampling, storage, heartbeat, pruning reports,
progress bar) is a trial's time outside `runner.train` over its time inside it, as wall time and as
this process's CPU time (steadier on a shared machine).

    .venv/bin/python bench/tune_movielens.py --data-dir ../shared/data/movielens/ml-100k --trials 12 --threads 1

Writes its section of bench/results/tune.md (``--out`` for another file) with the command, date,
machine and code it ran on. bench/tune_rossmann.py runs the same protocol on Rossmann.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_report import RESULTS, command_line, environment, write_section  # noqa: E402


@dataclass
class Protocol:
    """Where trials are chosen and where the chosen configs are reported (once)."""
    tune_comp: object  # competition whose validation part is the choosing split
    tune_dir: Path
    report_comp: object  # competition whose validation part is the reported split
    report_dir: Path
    tune_rows: str  # one line each, for the results file
    report_rows: str
    notes: list = field(default_factory=list)


def movielens_protocol(args) -> Protocol:
    """The choosing split: a seeded 10% of u1.base (bench/movielens_quality.py's) validates, the rest trains."""
    import pandas as pd

    from bench.movielens_quality import validation_split
    from harness_plugins.movielens import MovieLens

    source = args.data_dir.resolve()
    base = pd.read_csv(source / "u1.base", sep="\t", header=None, names=["user", "item", "rating", "timestamp"])
    fit, valid = validation_split(base, args.valid_pct, args.split_seed)
    folder = Path(tempfile.mkdtemp(prefix="tune-bench-ml-valid-"))  # derived rows only, outside the repo
    for name, frame in (("u1.base", fit), ("u1.test", valid), ("u.data", pd.concat([fit, valid]))):
        frame.to_csv(folder / name, sep="\t", header=False, index=False)
    if (source / "u.item").exists():
        os.symlink(source / "u.item", folder / "u.item")
    comp = MovieLens()
    return Protocol(
        comp, folder, comp, source,
        tune_rows=(f"a random {args.valid_pct:.0%} of u1.base (numpy seed {args.split_seed}, "
                   f"`bench/movielens_quality.py`'s `validation_split`: {len(valid):,} ratings) validates, the other "
                   f"{len(fit):,} train; written to a scratch folder as u1.base/u1.test, so these are "
                   "`data.split = \"u1\"` runs there; u1.test is not read"),
        report_rows=f"train on all of u1.base ({len(base):,} ratings), score u1.test, once per config",
        notes=[f"scratch data folder for choosing: {folder}"])


def main(argv=None, competition="movielens", default_overrides=("data.split=u1",), protocol=movielens_protocol,
         out_key="bench/tune_movielens.py", title="MovieLens 100k, u1"):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=Path(f"../shared/data/{competition}"
                                                          + ("/ml-100k" if competition == "movielens" else "")))
    ap.add_argument("--set", dest="overrides", action="append", default=None,
                    help=f"config overrides for every run (default: {' '.join(default_overrides) or 'none'})")
    ap.add_argument("--trials", type=int, default=12)
    ap.add_argument("--top-k", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0, help="the TPE sampler's seed")
    ap.add_argument("--valid-pct", type=float, default=0.1, help="MovieLens: share of u1.base that validates")
    ap.add_argument("--split-seed", type=int, default=0, help="MovieLens: numpy seed of that split")
    ap.add_argument("--workspace", type=Path, default=None, help="scratch folder (default: a new temp dir)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--out", type=Path, default=RESULTS / "tune.md")
    args = ap.parse_args(argv)
    if not args.data_dir.exists():
        raise SystemExit(f"no data at {args.data_dir}; pass --data-dir")

    import optuna
    import torch

    from harness.config.loading import apply_overrides, load_config
    from harness.host.plugins import get_competition
    from harness.runs import runner
    from harness.tune import blend as blending, export
    from harness.tune.pruning import recipe_epochs
    from harness.tune.study import (Objective, check_search_space, direction_of, make_pruner, make_sampler,
                                    make_storage, open_study, optimize)

    if args.threads:
        torch.set_num_threads(args.threads)
    header = environment({"optuna": optuna.__version__})  # date, machine, code at the start
    proto = protocol(args)
    overrides = args.overrides if args.overrides is not None else list(default_overrides)
    ws = args.workspace or Path(tempfile.mkdtemp(prefix="tune-bench-"))
    comp = get_competition(competition)
    config = apply_overrides(comp.default_config(), overrides)
    metric = comp.metrics(config)[0]

    def train(cfg, where: str):
        c, d = (proto.tune_comp, proto.tune_dir) if where == "tune" else (proto.report_comp, proto.report_dir)
        started = time.perf_counter()
        run = runner.train(c, cfg, d, ws, echo=False, progress=False)
        return run, time.perf_counter() - started

    # 1. Choosing, on the validation part of the training data only.
    default_valid, default_valid_s = train(config, "tune")
    default_valid = default_valid.summary()
    # The same steps as `harness tune`, timed apart: opening the study once, then the trials.
    t0 = time.perf_counter()
    check_search_space(config)
    study = open_study(make_storage(None, ws), comp.name, direction_of(comp, config), make_sampler("tpe", args.seed),
                       make_pruner("median", recipe_epochs(comp, config)), config=config, competition=comp.name)
    objective = Objective(proto.tune_comp, config, proto.tune_dir, ws)
    setup_s = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    optimize(study, objective, args.trials, None)
    study_s, study_cpu = time.perf_counter() - t0, time.process_time() - c0
    states = [t.state.name for t in study.trials]
    train_s, train_cpu = sum(objective.train_seconds), sum(objective.train_cpu_seconds)

    best = study.best_trial
    exported = export.export_config(study, best, ws, comp, ws / "best.toml")
    best_config = load_config(exported)
    rerun = train(best_config, "tune")[0].summary()
    blended = blending.blend(proto.tune_comp, study, ws, args.top_k)  # mean of the top K's validation preds
    top = blending.top_trials(study, args.top_k)

    # 2. Reporting, once per config, on the held-out split.
    default_run, default_s = train(config, "report")
    default_test = default_run.summary()["primary_score"]
    test_runs, test_seconds = {}, {}
    for trial in top:
        cfg = best_config if trial.number == best.number else export.trial_config(study, trial, ws, comp)
        test_runs[trial.number], test_seconds[trial.number] = train(cfg, "report")
    best_test = test_runs[best.number].summary()["primary_score"]
    targets = test_runs[best.number].array("valid_targets.npy")
    preds = []
    for number, run in test_runs.items():
        if not np.array_equal(run.array("valid_targets.npy"), targets):
            raise SystemExit(f"trial {number}'s report run scored other rows than trial {best.number}'s")
        preds.append(run.array("valid_preds.npy").astype(np.float64))
    blend_test = metric(np.mean(preds, axis=0), targets)
    test_scores = {n: r.summary()["primary_score"] for n, r in test_runs.items()}

    m = metric.name
    n = len(objective.train_seconds)
    lines = [f"## {title}: tuned vs default, chosen on validation, reported once", "",
             f"Command: `{command_line()}`", "", *header,
             f"- Load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}", "",
             f"Competition `{comp.name}`, overrides `{overrides}`, search space `{list(config['search'])}`; "
             f"TPE sampler (seed {args.seed}), median pruner; {args.trials} trials.", "",
             f"- Choosing (validation): {proto.tune_rows}.",
             f"- Reporting (test): {proto.report_rows}.",
             f"- The default config is `competitions/{comp.name}.toml` plus the overrides; the best trial is the "
             f"study's best by validation {m}; the blend is the equal-weight mean of the top {len(top)} trials by "
             f"validation {m} (trials {', '.join(str(t.number) for t in top)}), each retrained on the reporting "
             "split's training part. Nothing scored on the test rows chose anything.", "",
             f"| what | validation {m} (choosing) | test {m} (reported once) | trials | wall time |",
             "|---|---|---|---|---|",
             f"| default config | {default_valid['primary_score']:.5f} | {default_test:.5f} | 1 | "
             f"{default_valid_s:.0f} s + {default_s:.0f} s |",
             f"| tuned: best trial {best.number} | {best.value:.5f} | {best_test:.5f} | {len(states)} "
             f"({states.count('COMPLETE')} complete, {states.count('PRUNED')} pruned, {states.count('FAIL')} failed) "
             f"| {setup_s + study_s:.0f} s + {test_seconds[best.number]:.0f} s |",
             f"| blend: mean of the top {len(top)} trials | {blended.score:.5f} (optimistic: the top {len(top)} "
             f"were picked on these rows) | {blend_test:.5f} | - | {sum(test_seconds.values()):.0f} s (retraining "
             "them) |", "",
             f"Best trial's parameters: `{best.params}`", "",
             f"Exported best config retrained on the choosing split reproduces the trial: "
             f"{abs(rerun['primary_score'] - best.value) < 1e-6} (difference {rerun['primary_score'] - best.value:+.2e})",
             "", f"| top-{len(top)} trial | validation {m} | test {m} |", "|---|---|---|",
             *(f"| {t.number} | {t.value:.5f} | {test_scores[t.number]:.5f} |" for t in top), "",
             "| tuning overhead per trial | wall | CPU (this process) |", "|---|---|---|",
             f"| inside runner.train, all {n} trials | {train_s:.1f} s | {train_cpu:.1f} s |",
             f"| all trials (study.optimize) | {study_s:.1f} s | {study_cpu:.1f} s |",
             f"| machinery per trial | {(study_s - train_s) / n * 1000:.0f} ms | "
             f"{(study_cpu - train_cpu) / n * 1000:.0f} ms |",
             f"| machinery / training time | {(study_s - train_s) / train_s:.2%} | "
             f"{(study_cpu - train_cpu) / train_cpu:.2%} |", "",
             f"Opening the study (storage, tables, sampler), once per worker: {setup_s * 1000:.0f} ms.", ""]
    section = "\n".join(lines).rstrip()
    print(section)
    print(f"\nworkspace: {ws}")
    for note in proto.notes:
        print(note)
    write_section(args.out, out_key, section)
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
