"""Rossmann: the network, the harness's LightGBM (``model.kind = "gbm"``) and their plain mean, on the
held-out 48 days of the 100-store history.

The same window as bench/rossmann_quality.py and bench/rossmann_ensemble.py (the last ``data.valid_days``
of train, never used to train, validate or choose). The network is the default config over ``--seeds``
(their outputs averaged: the seed ensemble of rossmann_ensemble.py); LightGBM is the tabular kind's gbm on
the same features and rows, with its defaults (rounds by early stopping on an inner 10% of the rows before
the window, then refitted on all of them). The blend is the plain mean of the two on log(Sales), decided
before the run: no weight is fitted on the window.

The chosen entry: the same models trained on the days before the tuning window (the 48 days just before
the held-out ones, as in rossmann_quality.py) choose, on that tuning window only, the blend's weight and a
correction factor on sales. Predicting exp(mean log) gives the median, but RMSPE weighs over-prediction
less than under-prediction of the same size in log terms, so its optimum sits a little below: the
factor (a grid from 0.95 to 1.05) finds how much. Weight and factor are then applied unchanged to the
held-out window.

    .venv/bin/python bench/rossmann_blend.py --data-dir ../shared/data/rossmann

Writes its own section of bench/results/rossmann_quality.md (``--out`` for another file).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_report import RESULTS, command_line, environment, write_section  # noqa: E402
from bench.rossmann_quality import TuningWindow, data_folder, describe, spread, window_masks  # noqa: E402
from harness.config.loading import apply_overrides  # noqa: E402
from harness.data.tabular import transform_tabular  # noqa: E402
from harness.host.competition import TrainContext  # noqa: E402
from harness.progress import echo  # noqa: E402
from harness.runs import runner  # noqa: E402
from harness.scoring.metrics import exp_rmspe_fn  # noqa: E402
from harness.train import seed_everything  # noqa: E402
from harness_plugins.rossmann import Rossmann  # noqa: E402

TARGET = 0.110
WEIGHTS = np.linspace(0.0, 1.0, 21)  # the network's share of the blend, on log(Sales)
FACTORS = np.linspace(0.95, 1.05, 101)  # the correction factor on sales


def fit_seeds(name, comp, raw, config, seeds, window_frame, targets) -> tuple[list, list, list]:
    """``fit`` once per seed: (outputs, RMSPE on the window, seconds), one list each, in seed order."""
    outputs, scores, seconds = [], [], []
    for seed in seeds:
        out, took = fit(comp, raw, config, seed, window_frame)
        outputs.append(out)
        scores.append(exp_rmspe_fn(out, targets))
        seconds.append(took)
        echo(f"{name} seed {seed}: {scores[-1]:.4f} ({took:.0f} s)")
    return outputs, scores, seconds


def common_arguments(parser) -> None:
    """--data-dir, the network's --seeds, --threads and --out, as every Rossmann window script takes them."""
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="the network's seeds")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy 2-core VM)")
    parser.add_argument("--out", type=Path, default=RESULTS / "rossmann_quality.md")


def gbm_settings(pairs: list[str]) -> dict:
    """``--gbm-set gbm.KEY=VALUE`` pairs as config overrides (numbers parsed)."""
    out = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        if not key.startswith("gbm.") or not value:
            raise SystemExit(f"--gbm-set {pair!r}: give gbm.KEY=VALUE")
        out[key] = int(value) if value.lstrip("-").isdigit() else float(value)
    return out


def choose_blend(network, gbm, targets) -> tuple[float, float, float]:
    """(network weight, factor, RMSPE) with the lowest RMSPE of factor * exp(w * network + (1 - w) * gbm)."""
    best = (1.0, 1.0, float("inf"))
    for w in WEIGHTS:
        for factor in FACTORS:
            score = exp_rmspe_fn(w * network + (1 - w) * gbm + np.log(factor), targets)
            if score < best[2] - 1e-12:
                best = (float(w), float(factor), score)
    return best


def fit(comp, raw, config, seed, window_frame) -> tuple[np.ndarray, float]:
    """Train on the rows before the window (the config's split); log-sales outputs on the window."""
    cfg = apply_overrides(config, {"seed": seed})
    started = time.perf_counter()
    seed_everything(seed)
    prepared = comp.prepare(raw, cfg)
    learn = runner.make_learner(comp, prepared, cfg, device="cpu", echo=False, progress=None)
    comp.train(TrainContext(learn=learn, config=cfg, prepared=prepared, run=None, workspace=Path(".")))
    if cfg["model"]["kind"] == "gbm":
        outputs = comp.gbm_outputs(learn, transform_tabular(window_frame, prepared.state))
    else:
        outputs = learn.predict(comp.loader(window_frame, prepared.state, 8192)).numpy().astype(np.float64)
    return outputs, time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common_arguments(parser)
    parser.add_argument("--gbm-seeds", type=int, nargs="+", default=[0],
                        help="LightGBM's seeds (they matter with bagging or feature fractions below 1)")
    parser.add_argument("--gbm-set", action="append", default=[], metavar="KEY=VALUE",
                        help="a [gbm] setting for every LightGBM fit, e.g. gbm.feature_fraction=0.8 (repeatable)")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    comp = Rossmann()
    config = comp.default_config()
    days = int(config["data"]["valid_days"])
    raw = comp.load(data_folder(args.data_dir), config)
    frame = comp.features(raw, config)
    train, valid = window_masks(comp, frame, config, tuning=False)
    window_frame = frame[valid]
    targets = np.log(window_frame["Sales"].to_numpy(dtype=np.float64))

    nets, net_scores, net_seconds = fit_seeds("network", comp, raw, config, args.seeds, window_frame, targets)
    gbm_config = apply_overrides(config, {"model.kind": "gbm", **gbm_settings(args.gbm_set)})
    gbms, gbm_scores, gbm_seconds = fit_seeds("gbm", comp, raw, gbm_config, args.gbm_seeds, window_frame, targets)
    network, gbm = np.mean(nets, axis=0), np.mean(gbms, axis=0)

    # the choice: the same models on the days before the tuning window, scored on that window only
    _, tuning = window_masks(comp, frame, config, tuning=True)
    tuning_frame = frame[tuning]
    tuning_targets = np.log(tuning_frame["Sales"].to_numpy(dtype=np.float64))
    tuning_nets = [fit(TuningWindow(), raw, config, seed, tuning_frame)[0] for seed in args.seeds]
    tuning_gbm = np.mean([fit(TuningWindow(), raw, gbm_config, seed, tuning_frame)[0] for seed in args.gbm_seeds], axis=0)
    tuning_network = np.mean(tuning_nets, axis=0)
    weight, factor, tuning_score = choose_blend(tuning_network, tuning_gbm, tuning_targets)
    _, net_factor, net_tuning_score = choose_blend(tuning_network, tuning_network, tuning_targets)
    echo(f"chosen on the tuning window: network weight {weight:.2f}, factor {factor:.3f} ({tuning_score:.4f})")
    entry = exp_rmspe_fn(weight * network + (1 - weight) * gbm + np.log(factor), targets)
    gbm_text = ", ".join(f"{k.split('.', 1)[1]} {v}" for k, v in gbm_settings(args.gbm_set).items()) or "its defaults"
    rows = [
        ("the network, seeds " + ", ".join(map(str, args.seeds)) + " (each)", spread(net_scores).split(" | ")[0],
         f"{np.mean(net_seconds):.0f} each"),
        ("the network's seed ensemble (mean of outputs)", f"{exp_rmspe_fn(network, targets):.4f}", ""),
        (f"LightGBM, model.kind = gbm ({gbm_text}), seeds " + ", ".join(map(str, args.gbm_seeds)) + " (each)",
         spread(gbm_scores).split(" | ")[0], f"{np.mean(gbm_seconds):.0f} each"),
        *([("LightGBM's seed ensemble (mean of outputs)", f"{exp_rmspe_fn(gbm, targets):.4f}", "")]
          if len(gbms) > 1 else []),
        ("mean of the network (seed 0) and LightGBM (seed " + str(args.gbm_seeds[0]) + ")",
         f"{exp_rmspe_fn((nets[0] + gbms[0]) / 2, targets):.4f}", ""),
        ("mean of the seed ensemble and LightGBM" + ("'s" if len(gbms) > 1 else ""),
         f"{exp_rmspe_fn((network + gbm) / 2, targets):.4f}", ""),
        (f"the seed ensemble x {net_factor:.3f} (factor chosen on the tuning window)",
         f"{exp_rmspe_fn(network + np.log(net_factor), targets):.4f}", ""),
        (f"**the entry**: {weight:.2f} x seed ensemble + {1 - weight:.2f} x LightGBM, x {factor:.3f} "
         "(weight and factor chosen on the tuning window)", f"**{entry:.4f}**", ""),
    ]
    lines = [f"## The network and LightGBM on the held-out {days} days, and their mean", "",
             f"Command: `{command_line()}`", "", *environment(), "",
             f"- Held-out window: {describe(frame, valid)}; trained on {describe(frame, train)}",
             "- Blends are plain means on log(Sales), fixed before the run (no weight fitted on the window); "
             f"target {TARGET}", "", "| model | RMSPE on the window | seconds |", "|---|---|---|",
             *[f"| {name} | {score} | {seconds} |" for name, score, seconds in rows], "",
             f"- Tuning window: {describe(frame, tuning)}; its models trained on the days before it. There the "
             f"seed ensemble scores {exp_rmspe_fn(tuning_network, tuning_targets):.4f}, LightGBM "
             f"{exp_rmspe_fn(tuning_gbm, tuning_targets):.4f}, the seed ensemble with its factor "
             f"{net_tuning_score:.4f}, the chosen blend {tuning_score:.4f} (grids: weight "
             f"{WEIGHTS[0]:.2f} to {WEIGHTS[-1]:.2f} by {WEIGHTS[1] - WEIGHTS[0]:.2f}, factor {FACTORS[0]:.2f} to "
             f"{FACTORS[-1]:.2f} by {FACTORS[1] - FACTORS[0]:.3f})",
             f"- The entry on the held-out window: {entry:.4f}, target {TARGET} "
             + ("met" if entry <= TARGET else f"not met (by {entry - TARGET:.4f})")]
    section = "\n".join(lines) + "\n"
    print(section)
    write_section(args.out, "bench/rossmann_blend.py", section)


if __name__ == "__main__":
    main()
