"""How Rossmann's `data.recent_days` and `data.recent_by` defaults were chosen, on the tuning window.

The tuning window is bench/rossmann_quality.py's: the 48 days just before the reported (held-out) window,
the models trained on the days before it; the reported window is not read. Candidates for `recent_days`:
no recent levels, 91 days, 365 days, both (each the store's mean log sales over those days ending
`data.recent_lag` = 48 days before the row). With `--split-by`, candidates for `recent_by` instead, the
config's `recent_days` kept: none, the store's same weekdays, its same promo state, both. The rule, fixed
before each run: the lowest mean RMSPE of the default network over the seeds; LightGBM (`model.kind =
"gbm"`, its defaults) is shown beside it.

    .venv/bin/python bench/rossmann_recent.py --data-dir ../shared/data/rossmann
    .venv/bin/python bench/rossmann_recent.py --data-dir ../shared/data/rossmann --split-by

Each writes its own section of bench/results/rossmann_quality.md (``--out`` for another file).
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

CANDIDATES = {"recent_days": [[], [91], [365], [91, 365]],
              "recent_by": [[], ["DayOfWeek"], ["Promo"], ["DayOfWeek", "Promo"]]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common_arguments(parser)
    parser.add_argument("--split-by", action="store_true", help="choose data.recent_by (default: data.recent_days)")
    args = parser.parse_args()
    key = "recent_by" if args.split_by else "recent_days"
    import torch

    torch.set_num_threads(args.threads)
    comp = Rossmann()
    config = comp.default_config()
    raw = comp.load(data_folder(args.data_dir), config)
    rows = []
    for value in CANDIDATES[key]:
        cfg = apply_overrides(config, {f"data.{key}": value})
        frame = comp.features(raw, cfg)
        train, tuning = window_masks(comp, frame, cfg, tuning=True)
        window = frame[tuning]
        targets = np.log(window["Sales"].to_numpy(dtype=np.float64))
        nets = [exp_rmspe_fn(fit(TuningWindow(), raw, cfg, seed, window)[0], targets) for seed in args.seeds]
        gbm = exp_rmspe_fn(fit(TuningWindow(), raw, apply_overrides(cfg, {"model.kind": "gbm"}), 0, window)[0], targets)
        echo(f"{key} {value}: network {statistics.mean(nets):.4f}, gbm {gbm:.4f}")
        rows.append((value, nets, gbm))
    chosen = min(rows, key=lambda r: statistics.mean(r[1]))[0]
    title = ("## How `data.recent_by` was chosen: each store's recent level on its same weekdays or promo state, "
             "on the tuning window" if args.split_by else
             "## How `data.recent_days` was chosen: each store's recent sales level, on the tuning window")
    fixed = f"; `data.recent_days` = {config['data']['recent_days']}" if args.split_by else ""
    lines = [title, "",
             f"Command: `{command_line()}`", "", *environment(), "",
             f"- Tuning window: {describe(frame, tuning)}; models trained on {describe(frame, train)}; the reported "
             "window is not read",
             f"- Rule (fixed before the run): the lowest mean RMSPE of the default network over seeds "
             f"{', '.join(map(str, args.seeds))}; `data.recent_lag` = {config['data']['recent_lag']}{fixed}", "",
             f"| data.{key} | network RMSPE per seed | network mean | LightGBM (gbm, seed 0) |", "|---|---|---|---|"]
    for value, nets, gbm in rows:
        mark = "**" if value == chosen else ""
        lines.append(f"| {mark}{value or '[] (none)'}{mark} | {', '.join(f'{s:.4f}' for s in nets)} | "
                     f"{mark}{statistics.mean(nets):.4f}{mark} | {gbm:.4f} |")
    lines += ["", f"Chosen: `data.{key} = {chosen}`" + (" (the config's default)" if chosen == config["data"][key]
                                                        else f"; the config says {config['data'][key]}")]
    section = "\n".join(lines) + "\n"
    print(section)
    write_section(args.out, "bench/rossmann_recent.py" + (" --split-by" if args.split_by else ""), section)


if __name__ == "__main__":
    main()
