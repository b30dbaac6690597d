"""How Rossmann's `data.recent_days` default was chosen: each store's recent sales level, on the tuning window.

The tuning window is bench/rossmann_quality.py's: the 48 days just before the reported (held-out) window,
the models trained on the days before it; the reported window is not read. Candidates: no recent levels,
91 days, 365 days, both (each the store's mean log sales over those days ending `data.recent_lag` = 48 days
before the row). The rule, fixed before the run: the lowest mean RMSPE of the default network over the
seeds; LightGBM (`model.kind = "gbm"`, its defaults) is shown beside it.

    .venv/bin/python bench/rossmann_recent.py --data-dir ../shared/data/rossmann

Writes its section of bench/results/rossmann_quality.md (``--out`` for another file).
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_report import command_line, environment, write_section  # noqa: E402
from bench.rossmann_blend import common_arguments, fit  # noqa: E402
from bench.rossmann_quality import TuningWindow, data_folder, describe, window_masks  # noqa: E402
from harness.config.loading import apply_overrides  # noqa: E402
from harness.progress import echo  # noqa: E402
from harness.scoring.metrics import exp_rmspe_fn  # noqa: E402
from harness_plugins.rossmann import Rossmann  # noqa: E402

CANDIDATES = [[], [91], [365], [91, 365]]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common_arguments(parser)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    comp = Rossmann()
    config = comp.default_config()
    raw = comp.load(data_folder(args.data_dir), config)
    rows = []
    for days in CANDIDATES:
        cfg = apply_overrides(config, {"data.recent_days": days})
        frame = comp.features(raw, cfg)
        train, tuning = window_masks(comp, frame, cfg, tuning=True)
        window = frame[tuning]
        targets = np.log(window["Sales"].to_numpy(dtype=np.float64))
        nets = [exp_rmspe_fn(fit(TuningWindow(), raw, cfg, seed, window)[0], targets) for seed in args.seeds]
        gbm = exp_rmspe_fn(fit(TuningWindow(), raw, apply_overrides(cfg, {"model.kind": "gbm"}), 0, window)[0], targets)
        echo(f"recent_days {days}: network {statistics.mean(nets):.4f}, gbm {gbm:.4f}")
        rows.append((days, nets, gbm))
    chosen = min(rows, key=lambda r: statistics.mean(r[1]))[0]
    lines = ["## How `data.recent_days` was chosen: each store's recent sales level, on the tuning window", "",
             f"Command: `{command_line()}`", "", *environment(), "",
             f"- Tuning window: {describe(frame, tuning)}; models trained on {describe(frame, train)}; the reported "
             "window is not read",
             f"- Rule (fixed before the run): the lowest mean RMSPE of the default network over seeds "
             f"{', '.join(map(str, args.seeds))}; `data.recent_lag` = {config['data']['recent_lag']}", "",
             "| data.recent_days | network RMSPE per seed | network mean | LightGBM (gbm, seed 0) |", "|---|---|---|---|"]
    for days, nets, gbm in rows:
        mark = "**" if days == chosen else ""
        lines.append(f"| {mark}{days or '[] (none)'}{mark} | {', '.join(f'{s:.4f}' for s in nets)} | "
                     f"{mark}{statistics.mean(nets):.4f}{mark} | {gbm:.4f} |")
    lines += ["", f"Chosen: `data.recent_days = {chosen}`" + (" (the config's default)"
                                                              if chosen == config["data"]["recent_days"] else
                                                              f"; the config says {config['data']['recent_days']}")]
    section = "\n".join(lines) + "\n"
    print(section)
    write_section(args.out, "bench/rossmann_recent.py", section)


if __name__ == "__main__":
    main()
