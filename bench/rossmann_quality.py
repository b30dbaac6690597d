"""Rossmann quality: the default entity-embedding network against LightGBM, same features, same split.

Reads the real files from --data-dir (the 100-store subset of train as train_subset_100stores.csv.gz,
or a full train.csv / train.csv.gz), validates on the last 42 days of train (2015-06-20 to
2015-07-31), leaves zero-sales rows out, and reports RMSPE over several seeds for both models.

    .venv/bin/python bench/rossmann_quality.py --data-dir ../shared/data/rossmann --seeds 0 1 2
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

from harness import runner  # noqa: E402
from harness.config import apply_overrides  # noqa: E402
from harness.data.tabular import transform_tabular  # noqa: E402
from harness.metrics import exp_rmspe_fn  # noqa: E402
from harness.train import seed_everything  # noqa: E402
from plugins.rossmann import Rossmann  # noqa: E402

KAGGLE_FILES = ("store.csv", "test.csv", "sample_submission.csv", "store_states.csv", "weather")


def data_folder(source: Path) -> Path:
    """The Kaggle layout as symlinks (nothing copied): the subset stands in for train.csv."""
    if (source / "train.csv").exists() or (source / "train.csv.gz").exists():
        return source
    folder = Path(tempfile.mkdtemp(prefix="rossmann-bench-"))
    for name in KAGGLE_FILES:
        if (source / name).exists():
            os.symlink(source / name, folder / name)
    os.symlink(source / "train_subset_100stores.csv.gz", folder / "train.csv.gz")
    return folder


def lightgbm_scores(train, valid, state, seeds, params, rounds):
    import lightgbm as lgb

    def matrix(frame):
        arrays = transform_tabular(frame, state)
        return np.hstack([arrays.cats.astype(np.float32), arrays.conts])

    x_train, x_valid = matrix(train), matrix(valid)
    y_train, y_valid = np.log(train["Sales"].to_numpy()), np.log(valid["Sales"].to_numpy())
    n_cat = len(state["cat_cols"])
    scores, seconds = [], []
    for seed in seeds:
        started = time.perf_counter()
        data = lgb.Dataset(x_train, y_train, categorical_feature=list(range(n_cat)), free_raw_data=False)
        booster = lgb.train({**params, "seed": seed, "verbose": -1, "num_threads": 1}, data, num_boost_round=rounds)
        scores.append(exp_rmspe_fn(booster.predict(x_valid), y_valid))
        seconds.append(time.perf_counter() - started)
    return scores, seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="config override for the network")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy 2-core VM)")
    parser.add_argument("--skip-lgbm", action="store_true")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    comp = Rossmann()
    config = apply_overrides(comp.default_config(), ["data.valid_days=42", *args.overrides])
    raw = comp.load(data_folder(args.data_dir), config)
    started = time.perf_counter()
    frame = comp.features(raw, config)
    train, valid = comp.split(frame, config)
    print(f"features: {len(frame)} rows in {time.perf_counter() - started:.1f} s; train {len(train)} rows, "
          f"valid {len(valid)} rows, {valid['Date'].min().date()} to {valid['Date'].max().date()}")

    net_scores, net_seconds = [], []
    for seed in args.seeds:
        cfg = apply_overrides(config, {"seed": seed})
        seed_everything(seed)
        started = time.perf_counter()
        prepared = comp.prepare(raw, cfg)
        learn = runner.make_learner(comp, prepared, cfg, device="cpu", echo=True, progress=True)
        comp.train(learn, cfg)
        net_scores.append(learn.metrics["rmspe"])
        net_seconds.append(time.perf_counter() - started)
        print(f"network seed {seed}: rmspe {net_scores[-1]:.4f} in {net_seconds[-1]:.0f} s", flush=True)
    state = prepared.state

    rows = [("entity-embedding network (default config)", net_scores, net_seconds)]
    if not args.skip_lgbm:
        configs = {
            "LightGBM, default parameters (100 rounds, 31 leaves)": ({"objective": "regression"}, 100),
            "LightGBM, 1000 rounds, lr 0.05, 63 leaves, bagging": (
                {"objective": "regression", "learning_rate": 0.05, "num_leaves": 63, "feature_fraction": 0.8,
                 "bagging_fraction": 0.8, "bagging_freq": 1, "min_data_in_leaf": 20}, 1000),
        }
        for name, (params, rounds) in configs.items():
            scores, seconds = lightgbm_scores(train, valid, state, args.seeds, params, rounds)
            rows.append((name, scores, seconds))
            print(f"{name}: rmspe {' '.join(f'{s:.4f}' for s in scores)}", flush=True)

    print("\n| model | RMSPE per seed | mean | spread (max-min) | seconds per fit |")
    print("|---|---|---|---|---|")
    for name, scores, seconds in rows:
        print(f"| {name} | {', '.join(f'{s:.4f}' for s in scores)} | {statistics.mean(scores):.4f} | "
              f"{max(scores) - min(scores):.4f} | {statistics.mean(seconds):.0f} |")


if __name__ == "__main__":
    main()
