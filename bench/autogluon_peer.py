"""AutoGluon (TabularPredictor, presets="medium_quality") as the second peer, on the same folds and features.

Runs in its own virtualenv (bench/setup_autogluon.sh makes bench/.venv-autogluon; AutoGluon is never a project
dependency). The data, folds and scoring are bench/tabular_peers.py's, so the folds are the ones in
`--out/NAME/folds.csv` (checked against that file when it is there). AutoGluon receives the same feature
frame as the LightGBM peer: the test's columns minus the id (Amazon's nine ids as plain integers, Otto's 93
counts), bike's datetime expanded into year, month, day, hour, dayofweek; `--raw-datetime` gives bike the raw
datetime column instead, left to AutoGluon's own date handling. Bike learns log1p(count) under RMSE (which is
RMSLE on the counts), Amazon ACTION under ROC AUC, Otto the class index under log loss.
Results of a non-default run get a suffix (`autogluon_t150.json`, `autogluon_rawdt.json`). Each fold's
models are written to a scratch folder that is deleted after the fold.

Usage: bench/.venv-autogluon/bin/python bench/autogluon_peer.py [--only NAME] [--time-limit 60] [--raw-datetime]
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
import tabular_peers as tp  # noqa: E402  (the shared loading, folds and scoring)

EVAL_METRIC = {"regression": "root_mean_squared_error", "binary": "roc_auc", "multiclass": "log_loss"}
LABEL = "__target__"


def features(name: str, data_dir: Path, raw_datetime: bool) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    X, y_raw, y = tp.load(name, data_dir)
    if raw_datetime and name == "bike-sharing-demand":
        X = X.drop(columns=tp.DATE_PARTS)
        X.insert(0, "datetime", pd.to_datetime(pd.read_csv(data_dir / name / "train.csv")["datetime"]))
    return X, y_raw, y


def check_folds(path: Path, fold: np.ndarray) -> None:
    if not path.exists():
        tp.write_folds(path, fold)
        return
    saved = pd.read_csv(path)
    if len(saved) != len(fold) or not np.array_equal(saved["fold"].to_numpy(), fold):
        raise SystemExit(f"{path}: its folds differ from KFold/StratifiedKFold(5, shuffle, random_state=0); "
                         "delete it or rerun bench/tabular_peers.py")


def autogluon_peer(name: str, data_dir: Path, out: Path, time_limit: float, raw_datetime: bool) -> dict:
    import autogluon.tabular
    from autogluon.tabular import TabularPredictor

    task = tp.COMPETITIONS[name][0]
    X, y_raw, y = features(name, data_dir, raw_datetime)
    fold = tp.fold_ids(name, y_raw)
    check_folds(out / name / "folds.csv", fold)
    table = X.assign(**{LABEL: y})
    n_classes = len(tp.OTTO_CLASSES)
    oof = np.zeros((len(y), n_classes)) if task == "multiclass" else np.zeros(len(y))
    fold_seconds, fold_models = [], []
    start = time.perf_counter()
    for k in range(tp.FOLDS):
        t0 = time.perf_counter()
        scratch = tempfile.mkdtemp(prefix=f"autogluon-{name}-{k}-")
        try:
            predictor = TabularPredictor(label=LABEL, problem_type=task, eval_metric=EVAL_METRIC[task],
                                         path=str(Path(scratch) / "models"), verbosity=1)
            predictor.fit(table[fold != k], presets="medium_quality", time_limit=time_limit)
            held = table[fold == k].drop(columns=[LABEL])
            if task == "regression":
                oof[fold == k] = predictor.predict(held).to_numpy()
            else:
                proba = predictor.predict_proba(held, as_multiclass=True)
                if task == "binary":
                    oof[fold == k] = proba[1].to_numpy()
                else:
                    proba = proba.reindex(columns=range(n_classes), fill_value=0.0).to_numpy("float64")
                    oof[fold == k] = proba / proba.sum(axis=1, keepdims=True)  # float32 sums drift by 1e-7
            board = predictor.leaderboard(silent=True)
            fold_models.append({"best": predictor.model_best, "models": list(board["model"])})
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        fold_seconds.append(time.perf_counter() - t0)
        print(f"{name} fold {k}: {fold_seconds[-1]:.0f} s, best {fold_models[-1]['best']}", file=sys.stderr)
    wall = time.perf_counter() - start
    oof = tp.to_submission_scale(name, oof)
    # Runs other than the default (60 s, parts of the datetime) are kept beside it, not over it.
    raw = raw_datetime and name == "bike-sharing-demand"
    suffix = ("_rawdt" if raw else "") + ("" if time_limit == 60 else f"_t{time_limit:g}")
    tp.save_npy(out / name / f"autogluon{suffix}_oof.npy", oof)
    peer = f"AutoGluon medium_quality, {time_limit:g} s/fold" + (", raw datetime" if raw else "")
    result = tp.summarize(name, peer, y_raw, fold, oof, fold_seconds, wall, {
        "time_limit_per_fold": time_limit, "features": list(X.columns), "fold_models": fold_models,
        "autogluon": autogluon.tabular.__version__})
    tp.save_json(out / name / f"autogluon{suffix}.json", result)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=tp.DEFAULT_DATA)
    parser.add_argument("--only", choices=sorted(tp.COMPETITIONS), help="one competition (default: all three)")
    parser.add_argument("--out", type=Path, default=tp.DEFAULT_OUT, help="OOF .npy and JSON go here")
    parser.add_argument("--time-limit", type=float, default=60.0, help="seconds of AutoGluon fitting per fold")
    parser.add_argument("--raw-datetime", action="store_true",
                        help="bike: the raw datetime column instead of its parts (AutoGluon's own date features)")
    args = parser.parse_args(argv)
    names = [args.only] if args.only else list(tp.COMPETITIONS)
    rows = [autogluon_peer(name, args.data_dir, args.out, args.time_limit, args.raw_datetime) for name in names]
    print(tp.markdown_table(rows))
    print(f"\nOOF predictions and JSON in {args.out}/NAME/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
