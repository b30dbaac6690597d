"""Rossmann: training and model variants of the default network on the tuning window, to see whether
any of them earns a change of default.

`bench/tune_rossmann.py` searched the rates, dropouts and sizes (30 trials; none beat the default on the
tuning window). This script tries what that search space leaves out: more epochs, other batch sizes
(with epochs to match), batch norm and fastai's embedding-width rule. Each variant is the default config
with a few keys changed, trained on the days before the tuning window (the 48 days just before the
reported ones, as in bench/rossmann_quality.py) with each of ``--seeds``, and scored there; the reported
window is not read. Shown per variant: each seed's RMSPE, their mean, and the seed ensemble (the mean of
the seeds' log-sales outputs).

The rule, fixed before the run: a variant replaces the default only if its mean over the seeds is lower
than the default's by more than ``MARGIN`` (0.001, the size of seed noise: the default's three seeds spread
by 0.0018 in bench/rossmann_quality.py); otherwise the default stays.

    .venv/bin/python bench/rossmann_variants.py --data-dir ../shared/data/rossmann

Writes its own section of bench/results/rossmann_quality.md (``--out`` for another file).
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_report import command_line, environment, write_section  # noqa: E402
from bench.rossmann_blend import common_arguments, fit_seeds  # noqa: E402
from bench.rossmann_quality import TuningWindow, data_folder, describe, window_masks  # noqa: E402
from harness.config.loading import apply_overrides  # noqa: E402
from harness.progress import echo  # noqa: E402
from harness.scoring.metrics import exp_rmspe_fn  # noqa: E402
from harness_plugins.rossmann import Rossmann  # noqa: E402

MARGIN = 0.001
VARIANTS = {
    "default": {},
    "8 epochs": {"train.epochs": 8},
    "batch 128": {"train.batch_size": 128},
    "batch 512, 8 epochs": {"train.batch_size": 512, "train.epochs": 8},
    "batch 512, 12 epochs": {"train.batch_size": 512, "train.epochs": 12},
    "batch 1024, 10 epochs, lr 0.006": {"train.batch_size": 1024, "train.epochs": 10, "train.lr": 0.006},
    "batch norm": {"model.batchnorm": True},
    "fastai embedding widths": {"model.emb_rule": "fastai"},
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common_arguments(parser)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    comp = Rossmann()
    config = comp.default_config()
    raw = comp.load(data_folder(args.data_dir), config)
    frame = comp.features(raw, config)
    train, tuning = window_masks(comp, frame, config, tuning=True)
    window = frame[tuning]
    targets = np.log(window["Sales"].to_numpy(dtype=np.float64))
    rows = []
    for name, changes in VARIANTS.items():
        cfg = apply_overrides(config, changes)
        outputs, scores, fit_seconds = fit_seeds(name, TuningWindow(), raw, cfg, args.seeds, window, targets)
        ensemble = exp_rmspe_fn(np.mean(outputs, axis=0), targets)
        seconds = statistics.mean(fit_seconds)
        echo(f"{name}: mean {statistics.mean(scores):.4f}, seed ensemble {ensemble:.4f} ({seconds:.0f} s a seed)")
        rows.append((name, changes, scores, ensemble, seconds))
    default_mean = statistics.mean(rows[0][2])
    best = min(rows[1:], key=lambda r: statistics.mean(r[2]))
    wins = statistics.mean(best[2]) < default_mean - MARGIN
    lines = ["## Training and model variants of the network, on the tuning window", "",
             f"Command: `{command_line()}`", "", *environment(), "",
             f"- Tuning window: {describe(frame, tuning)}; models trained on {describe(frame, train)}; the reported "
             "window is not read",
             f"- Rule (fixed before the run): a variant replaces the default only if its mean over seeds "
             f"{', '.join(map(str, args.seeds))} is lower than the default's by more than {MARGIN}", "",
             "| variant | changed keys | RMSPE per seed | mean | seed ensemble | seconds a seed |",
             "|---|---|---|---|---|---|"]
    for name, changes, scores, ensemble, seconds in rows:
        keys = ", ".join(f"`{k} = {v}`" for k, v in changes.items()) or "(none)"
        lines.append(f"| {name} | {keys} | {', '.join(f'{s:.4f}' for s in scores)} | {statistics.mean(scores):.4f} | "
                     f"{ensemble:.4f} | {seconds:.0f} |")
    verdict = (f"`{best[0]}` wins ({statistics.mean(best[2]):.4f} against {default_mean:.4f})" if wins else
               f"no variant beats the default by more than {MARGIN} (the best, `{best[0]}`, "
               f"{statistics.mean(best[2]):.4f} against {default_mean:.4f}): the default stays")
    lines += ["", f"Result: {verdict}."]
    section = "\n".join(lines) + "\n"
    print(section)
    write_section(args.out, "bench/rossmann_variants.py", section)


if __name__ == "__main__":
    main()
