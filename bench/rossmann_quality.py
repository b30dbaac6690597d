"""Rossmann quality: the default entity-embedding network against LightGBM, same features, same window.

Reads the real files from --data-dir (the 100-store subset of train as train_subset_100stores.csv.gz,
or a full train.csv / train.csv.gz). The reported window is the config's own: the last
``data.valid_days`` days of train (48 by default, read from competitions/rossmann.toml). Zero-sales
rows are in neither part. Anything chosen here is chosen on the window of the same length just
before it (the "tuning window"), training on the days before that, so the reported window is
only ever scored, never used to choose:

- LightGBM's 1000-round parameters (learning rate, leaves, feature/bagging fraction);
- with --network-variants, a few changes to the network's defaults (scored for information; the
  defaults are what the reported rows use).

    .venv/bin/python bench/rossmann_quality.py --data-dir ../shared/data/rossmann --seeds 0 1 2

Writes its section of bench/results/rossmann_quality.md (``--out`` for another file).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_report import RESULTS, command_line, environment, write_section  # noqa: E402
from harness.runs import runner  # noqa: E402
from harness.host.competition import TrainContext  # noqa: E402
from harness.config.loading import apply_overrides  # noqa: E402
from harness.data.tabular import fit_tabular, transform_tabular  # noqa: E402
from harness.scoring.metrics import exp_rmspe_fn  # noqa: E402
from harness.progress import echo  # noqa: E402
from harness.train import seed_everything  # noqa: E402
from harness_plugins.rossmann import Rossmann  # noqa: E402

KAGGLE_FILES = ("store.csv", "test.csv", "sample_submission.csv", "store_states.csv", "weather", "googletrend.csv")
LGB_DEFAULT = ({"objective": "regression"}, 100)  # LightGBM's own defaults: 100 rounds, 31 leaves, lr 0.1
LGB_ROUNDS = 1000
LGB_GRID = [
    {"objective": "regression", "learning_rate": lr, "num_leaves": leaves, "min_data_in_leaf": 20,
     **({"feature_fraction": 0.8, "bagging_fraction": 0.8, "bagging_freq": 1} if sample else {})}
    for lr in (0.05, 0.1) for leaves in (15, 31, 63, 127) for sample in (True, False)
]
NETWORK_VARIANTS = [  # earlier measurements' candidates, now scored on the tuning window
    {}, {"train.epochs": 8}, {"train.wd": 0.02}, {"model.batchnorm": True},
    {"train.batch_size": 128, "train.lr": 0.002},
]


def data_folder(source: Path) -> Path:
    """The Kaggle layout as symlinks (nothing copied): the subset stands in for train.csv."""
    source = source.resolve()  # links in a temporary folder need absolute targets
    if (source / "train.csv").exists() or (source / "train.csv.gz").exists():
        return source
    folder = Path(tempfile.mkdtemp(prefix="rossmann-bench-"))
    for name in KAGGLE_FILES:
        if (source / name).exists():
            os.symlink(source / name, folder / name)
    os.symlink(source / "train_subset_100stores.csv.gz", folder / "train.csv.gz")
    return folder


def window_masks(comp, frame, config, tuning: bool):
    """(train, valid) row masks: the config's reported window, or the tuning window of the same
    length just before it (training then on the days before the tuning window)."""
    return window_before(comp, frame, config, 1 if tuning else 0)


def window_before(comp, frame, config, k: int):
    """(train, valid) row masks of the k-th window of ``data.valid_days`` days before the reported one
    (k = 0: the reported window itself; 1: the tuning window), training on every day before it."""
    if k == 0:
        return comp.split_masks(frame, config)
    days = int(config["data"]["valid_days"])
    train, _ = comp.split_masks(frame, apply_overrides(config, {"data.valid_days": (k + 1) * days}))
    later, _ = comp.split_masks(frame, apply_overrides(config, {"data.valid_days": k * days}))
    return train, later & ~train


class TuningWindow(Rossmann):
    """Rossmann trained on the days before the tuning window and validated on it."""

    def split_masks(self, frame, config):
        return window_masks(Rossmann(), frame, config, tuning=True)


def describe(frame, mask) -> str:
    dates = frame["Date"][mask]
    return f"{dates.min().date()} to {dates.max().date()} ({int(mask.sum()):,} rows with sales)"


def network_score(comp, raw, config, seed: int) -> tuple[float, float]:
    cfg = apply_overrides(config, {"seed": seed})
    started = time.perf_counter()
    seed_everything(seed)
    prepared = comp.prepare(raw, cfg)
    learn = runner.make_learner(comp, prepared, cfg, device="cpu", echo=False, progress=None)
    # the competition's recipe without a run folder: nothing here writes files
    comp.train(TrainContext(learn=learn, config=cfg, prepared=prepared, run=None, workspace=Path(".")))
    return float(learn.metrics["rmspe"]), time.perf_counter() - started


def lightgbm_matrices(comp, raw, frame, config, train, valid):
    """Features for LightGBM: the network's columns, preprocessed by the same state fitted on ``train``
    (category codes as LightGBM categorical features)."""
    cat_cols, cont_cols = comp.columns(raw, config)
    state = fit_tabular(frame, cat_cols, cont_cols, rows=train)
    arrays = transform_tabular(frame, state)
    x = np.hstack([arrays.cats.astype(np.float32), arrays.conts])
    y = np.log(frame["Sales"].to_numpy(dtype=np.float64), where=train | valid, out=np.zeros(len(frame)))
    return (x[train], y[train]), (x[valid], y[valid]), len(cat_cols)


def lightgbm_score(train, valid, n_cat, params, rounds, seed) -> tuple[float, float]:
    import lightgbm as lgb

    started = time.perf_counter()
    data = lgb.Dataset(train[0], train[1], categorical_feature=list(range(n_cat)), free_raw_data=False)
    booster = lgb.train({**params, "seed": seed, "verbose": -1, "num_threads": 1}, data, num_boost_round=rounds)
    return exp_rmspe_fn(booster.predict(valid[0]), valid[1]), time.perf_counter() - started


def params_text(params: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in params.items() if k != "objective") or "LightGBM's defaults"


def spread(scores) -> str:
    return f"{', '.join(f'{s:.4f}' for s in scores)} | {statistics.mean(scores):.4f} | {max(scores) - min(scores):.4f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="config override for both")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy 2-core VM)")
    parser.add_argument("--network-variants", action="store_true",
                        help="also score a few changes to the network's defaults on the tuning window")
    parser.add_argument("--lgb-grid", choices=["full", "small"], default="full", help="small: a quick check only")
    parser.add_argument("--out", type=Path, default=RESULTS / "rossmann_quality.md")
    args = parser.parse_args()

    import lightgbm
    import torch

    torch.set_num_threads(args.threads)
    comp = Rossmann()
    config = apply_overrides(comp.default_config(), args.overrides)
    days = int(config["data"]["valid_days"])
    raw = comp.load(data_folder(args.data_dir), config)
    started = time.perf_counter()
    frame = comp.features(raw, config)
    train, valid = window_masks(comp, frame, config, tuning=False)
    tune_train, tune_valid = window_masks(comp, frame, config, tuning=True)
    lines = ["## Result", "", f"Command: `{command_line()}`", "",
             *environment({"LightGBM": lightgbm.__version__}), "",
             f"- Features: {len(frame):,} train and test rows in {time.perf_counter() - started:.1f} s",
             f"- Reported window (`data.valid_days = {days}`, the config's): {describe(frame, valid)}; "
             f"training: {describe(frame, train)}",
             f"- Tuning window, the {days} days before it: {describe(frame, tune_valid)}; training: "
             f"{describe(frame, tune_train)}", ""]

    grid = LGB_GRID if args.lgb_grid == "full" else LGB_GRID[:2]
    tune_fit, tune_score, n_cat = lightgbm_matrices(comp, raw, frame, config, tune_train, tune_valid)
    tried = []
    for params in grid:
        score, seconds = lightgbm_score(tune_fit, tune_score, n_cat, params, LGB_ROUNDS, args.seeds[0])
        tried.append((params, score))
        echo(f"tuning window, LightGBM {params_text(params)}: rmspe {score:.4f} ({seconds:.0f} s)")
    chosen = min(tried, key=lambda t: t[1])[0]
    lines += [f"LightGBM {LGB_ROUNDS} rounds, chosen on the tuning window (seed {args.seeds[0]}); the lowest "
              "RMSPE (bold) is used on the reported window:", "", "| parameters | tuning-window RMSPE |", "|---|---|"]
    for params, score in sorted(tried, key=lambda t: t[1]):
        mark = "**" if params is chosen else ""
        lines.append(f"| {mark}{params_text(params)}{mark} | {mark}{score:.4f}{mark} |")
    lines.append("")

    if args.network_variants:
        tuning_comp = TuningWindow()
        lines += ["The network's defaults and a few changes, on the tuning window (seed "
                  f"{args.seeds[0]}; for information, the reported rows use the defaults):", "",
                  "| change from the default | tuning-window RMSPE |", "|---|---|"]
        for variant in NETWORK_VARIANTS:
            score, seconds = network_score(tuning_comp, raw, apply_overrides(config, variant), args.seeds[0])
            text = ", ".join(f"`{k}={v}`" for k, v in variant.items()) or "none (default)"
            echo(f"tuning window, network {text}: rmspe {score:.4f} ({seconds:.0f} s)")
            lines.append(f"| {text} | {score:.4f} |")
        lines.append("")

    rows = []
    scores, seconds = zip(*(network_score(comp, raw, config, seed) for seed in args.seeds))
    echo(f"reported window, network: rmspe {' '.join(f'{s:.4f}' for s in scores)}")
    rows.append(("entity-embedding network, default config", scores, seconds))
    fit, score_on, n_cat = lightgbm_matrices(comp, raw, frame, config, train, valid)
    for name, (params, rounds) in {
        f"LightGBM, {LGB_ROUNDS} rounds, {params_text(chosen)} (chosen on the tuning window)": (chosen, LGB_ROUNDS),
        "LightGBM, default parameters (100 rounds, 31 leaves, lr 0.1)": LGB_DEFAULT,
    }.items():
        scores, seconds = zip(*(lightgbm_score(fit, score_on, n_cat, params, rounds, s) for s in args.seeds))
        echo(f"reported window, {name}: rmspe {' '.join(f'{s:.4f}' for s in scores)}")
        rows.append((name, scores, seconds))
    lines += [f"On the reported window ({days} days), seeds {', '.join(map(str, args.seeds))}:", "",
              "| model | RMSPE per seed | mean | spread (max-min) | seconds per fit |", "|---|---|---|---|---|"]
    for name, scores, seconds in rows:
        lines.append(f"| {name} | {spread(scores)} | {statistics.mean(seconds):.0f} |")
    net, best_lgb = statistics.mean(rows[0][1]), min(statistics.mean(r[1]) for r in rows[1:])
    widest = max(max(r[1]) - min(r[1]) for r in rows)
    verdict = "ahead of" if net < best_lgb else "behind"
    lines += ["", f"The network's mean is {verdict} the better LightGBM's by {abs(net - best_lgb):.4f} RMSPE"
              + (f", less than the widest seed-to-seed spread ({widest:.4f}): no clear winner." if abs(net - best_lgb)
                 < widest else ".")]

    # For information only: how much the choice on the tuning window costs LightGBM. Picking by this
    # column would be choosing on the reported window.
    hindsight = [(params, lightgbm_score(fit, score_on, n_cat, params, LGB_ROUNDS, args.seeds[0])[0])
                 for params in grid]
    params, score = min(hindsight, key=lambda t: t[1])
    echo(f"reported window, best of the LightGBM grid in hindsight: {params_text(params)}: rmspe {score:.4f}")
    lines += ["", f"For information (not a fair comparison: it is chosen by looking at the reported window), the "
              f"best of the same LightGBM grid scored on the reported window itself (seed {args.seeds[0]}): "
              f"{score:.4f} ({params_text(params)})."]
    section = "\n".join(lines)
    print(section)
    write_section(args.out, "bench/rossmann_quality.py", section)
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
