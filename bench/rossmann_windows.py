"""Rossmann: one change of the network's config scored on several 48-day windows before the reported one.

A choice made on the tuning window alone can be that window's: quantile scaling (``model.cont_scaling``) won
there by 0.0106 over six seeds (bench/rossmann_variants.py) and then gained nothing on the reported window.
This script scores the default config and the config with ``--set`` changes on each of the ``--windows``
windows before the reported one (1 is the tuning window; 2 the 48 days before it, and so on), each model
trained on every day before its window, with each of ``--seeds``; the reported window is not read. Shown
per window: each seed's RMSPE, their mean and the seed ensemble, for both configs, and the difference of
the means. A change that helps on one window and not the others shows here.

With ``--censored`` each window's features come from the rows up to its last day only, as the test's do: the
test is the last days of the data, so its last days' forward event features (``Before<e>``, ``<e>_fw``) see
nothing after them (``Closed``'s next Sunday, say), while a window inside the history sees the days after it.

    .venv/bin/python bench/rossmann_windows.py --data-dir ../shared/data/rossmann --set model.cont_scaling=standard
    .venv/bin/python bench/rossmann_windows.py --data-dir ../shared/data/rossmann --censored --windows 7 8 --set ...

Writes its own section of bench/results/rossmann_quality.md (``--out`` for another file).
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_report import command_line, environment, write_section  # noqa: E402
from bench.rossmann_blend import common_arguments, fit_seeds  # noqa: E402
from bench.rossmann_quality import data_folder, describe, window_before  # noqa: E402
from harness.config.loading import apply_overrides  # noqa: E402
from harness.progress import echo  # noqa: E402
from harness.scoring.metrics import exp_rmspe_fn  # noqa: E402
from harness_plugins.rossmann import Rossmann  # noqa: E402


def window_class(k: int) -> type:
    """Rossmann trained on the days before the k-th window before the reported one, validated on it."""
    class Window(Rossmann):
        def split_masks(self, frame, config):
            return window_before(Rossmann(), frame, config, k)
    return Window


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common_arguments(parser)
    parser.add_argument("--set", dest="changes", action="append", required=True, metavar="KEY=VALUE",
                        help="the change to compare with the default config (repeat for several keys)")
    parser.add_argument("--windows", type=int, nargs="+", default=[1, 2, 3],
                        help="which windows before the reported one (1: the tuning window)")
    parser.add_argument("--censored", action="store_true",
                        help="compute each window's features from the rows up to its last day only, as the test's "
                             "are: its last days' forward event features (Before<e>, <e>_fw) see no later day")
    args = parser.parse_args()
    if min(args.windows) < 1:
        raise SystemExit("--windows: 1 or more (0 would be the reported window)")
    torch.set_num_threads(args.threads)
    comp = Rossmann()
    default = comp.default_config()
    changed = apply_overrides(default, args.changes, comp.config_schema)
    raw = comp.load(data_folder(args.data_dir), default)
    frame = comp.features(raw, default)
    rows = []
    for k in args.windows:
        train, valid = window_before(comp, frame, default, k)
        targets = np.log(frame[valid]["Sales"].to_numpy(dtype=np.float64))
        window_raw, window_comp = raw, window_class(k)()
        if args.censored:
            # Nothing after the window exists: it is the last data.valid_days of a train.csv that ends there.
            last_day = frame["Date"][valid].max()
            window_raw = dataclasses.replace(raw, train=raw.train[raw.train["Date"] <= last_day], test=None, cache={})
            window_comp = Rossmann()
        results = []
        for name, config in (("default", default), ("changed", changed)):
            # Each config's own features: a change to data.* (events, recent levels) adds or alters columns.
            window_frame = comp.features(window_raw, config)
            window = window_frame[window_comp.split_masks(window_frame, config)[1]]
            if not np.array_equal(np.log(window["Sales"].to_numpy(dtype=np.float64)), targets):
                raise SystemExit(f"window {k}: the censored data's validation rows differ from the window's")
            outputs, scores, _ = fit_seeds(f"window {k} {name}", window_comp, window_raw, config, args.seeds, window,
                                           targets)
            results.append((scores, exp_rmspe_fn(np.mean(outputs, axis=0), targets)))
        rows.append((k, describe(frame, valid), describe(frame, train), results))
        echo(f"window {k}: default {statistics.mean(results[0][0]):.4f}, changed {statistics.mean(results[1][0]):.4f}")
    change = ", ".join(f"`{c}`" for c in args.changes)
    lines = [f"## One change on several windows before the reported one: {change}", "",
             f"Command: `{command_line()}`", "", *environment(), "",
             f"- Default: `competitions/rossmann.toml` as it is; changed: the same with {change}",
             f"- Seeds {', '.join(map(str, args.seeds))}; each window's models train on every day before it; the "
             "reported window is not read",
             "- Features: " + ("censored, from the rows up to each window's last day only, as the test's (its last "
                               "days' Before<e> and <e>_fw see no later day)" if args.censored else
                               "from every row of train.csv and test.csv, so a window's forward event features see "
                               "the days after it"), "",
             "| window | days (rows with sales) | trained on | default per seed | default mean | default ensemble "
             "| changed per seed | changed mean | changed ensemble | changed - default (means) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for k, days, trained, ((d_scores, d_ens), (c_scores, c_ens)) in rows:
        lines.append(f"| {k} | {days} | {trained} | {', '.join(f'{s:.4f}' for s in d_scores)} | "
                     f"{statistics.mean(d_scores):.4f} | {d_ens:.4f} | {', '.join(f'{s:.4f}' for s in c_scores)} | "
                     f"{statistics.mean(c_scores):.4f} | {c_ens:.4f} | "
                     f"{statistics.mean(c_scores) - statistics.mean(d_scores):+.4f} |")
    section = "\n".join(lines) + "\n"
    print(section)
    # One section per change and set of windows, so that each comparison stays on record.
    keys = ", ".join(c.split("=", 1)[0] for c in args.changes)
    censored = ", censored" if args.censored else ""
    write_section(args.out, f"bench/rossmann_windows.py {keys}, windows {' '.join(map(str, args.windows))}{censored}",
                  section)


if __name__ == "__main__":
    main()
