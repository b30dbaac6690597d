"""LightGBM with default parameters on issue 13's three Kaggle competitions: the peer the harness must beat.

Each competition is scored out of fold on 5 shuffled folds of its train.csv (KFold for the regression,
StratifiedKFold for the classifications, random_state 0, on the raw target in file order). The folds go to
`--out/NAME/folds.csv` (`row,fold`, row = 0-based position in train.csv) so that the harness can be trained on
exactly these folds (`harness train NAME --folds-file FILE`), and the OOF predictions to
`--out/NAME/lightgbm_oof.npy` (bike: counts; Amazon: P(ACTION=1); Otto: an (n, 9) array of Class_1..9).

Amazon is run twice: its nine ids as plain integers (what a numeric-by-default reader does), and as pandas
categories (LightGBM's native categorical splits, `lightgbm_cat_oof.npy`): the issue's 0.855 is the latter.

The loading, folds and scoring below are shared with bench/autogluon_peer.py, which runs in another
virtualenv: this module imports only numpy, pandas and scikit-learn at import time (lightgbm inside a function).

Usage: .venv/bin/python bench/tabular_peers.py [--data-dir ../shared/data] [--only NAME] [--out /tmp/tabular-peers]
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.model_selection import KFold, StratifiedKFold

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO.parent / "shared" / "data"
DEFAULT_OUT = Path("/tmp/tabular-peers")
FOLDS, SPLIT_SEED = 5, 0

# name -> (task, metric, train file, test file, test id column, target column)
COMPETITIONS = {
    "bike-sharing-demand": ("regression", "rmsle", "train.csv", "test.csv", None, "count"),
    "amazon-employee-access-challenge": ("binary", "roc_auc", "train.csv", "test.csv", "id", "ACTION"),
    "otto-group-product-classification-challenge": (
        "multiclass", "log_loss", "train.csv.zip", "test.csv.zip", "id", "target"),
}
# Whether a lower score is better, per metric (for the tables).
LOWER_IS_BETTER = {"rmsle": True, "roc_auc": False, "log_loss": True}
OTTO_CLASSES = [f"Class_{k}" for k in range(1, 10)]
DATE_PARTS = ["year", "month", "day", "hour", "dayofweek"]
DATE_ATTRIBUTE = {"dayofweek": "day_of_week"}  # pandas 3 deprecates .dt.dayofweek


def load(name: str, data_dir: Path) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """(features, raw target for the folds, target the models learn) of one competition's train.csv.

    Features are the test's columns (so nothing train-only, such as bike's casual/registered, leaks in) minus
    its id; bike's datetime is expanded into year, month, day, hour, dayofweek. The learnt target is bike's
    log1p(count), Amazon's ACTION (0/1) and Otto's class index 0..8 (Class_1..9).
    """
    task, _, train_file, test_file, test_id, target = COMPETITIONS[name]
    folder = data_dir / name
    train = pd.read_csv(folder / train_file)  # pandas reads a zip holding one CSV directly
    test_columns = list(pd.read_csv(folder / test_file, nrows=1).columns)
    features = [c for c in test_columns if c != test_id]
    X = train[features].copy()
    raw = train[target].to_numpy()
    if name == "bike-sharing-demand":
        stamp = pd.to_datetime(X.pop("datetime"))
        for part in DATE_PARTS:
            X[part] = getattr(stamp.dt, DATE_ATTRIBUTE.get(part, part)).astype("int64")
        learnt = np.log1p(raw.astype("float64"))
    elif task == "multiclass":
        learnt = pd.Categorical(raw, categories=OTTO_CLASSES).codes.astype("int64")
        if (learnt < 0).any():
            raise SystemExit(f"{name}: a target value outside {OTTO_CLASSES[0]}..{OTTO_CLASSES[-1]}")
    else:
        learnt = raw.astype("int64")
    return X, raw, learnt


def fold_ids(name: str, raw_target: np.ndarray) -> np.ndarray:
    """Fold 0..4 of each train row: the splitter's k-th test part is fold k."""
    task = COMPETITIONS[name][0]
    if task == "regression":
        splits = KFold(FOLDS, shuffle=True, random_state=SPLIT_SEED).split(raw_target)
    else:
        splits = StratifiedKFold(FOLDS, shuffle=True, random_state=SPLIT_SEED).split(raw_target, raw_target)
    fold = np.full(len(raw_target), -1, dtype="int64")
    for k, (_, test_rows) in enumerate(splits):
        fold[test_rows] = k
    return fold


def write_folds(path: Path, fold: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    pd.DataFrame({"row": np.arange(len(fold)), "fold": fold}).to_csv(tmp, index=False)
    tmp.replace(path)


def save_npy(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.save(f, array)
    tmp.replace(path)


def save_json(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(obj, indent=2) + "\n")
    tmp.replace(path)


def score(name: str, y_raw: np.ndarray, pred: np.ndarray) -> float:
    """The competition's metric on predictions in the submission's scale (counts, P(1), class probabilities)."""
    metric = COMPETITIONS[name][1]
    if metric == "rmsle":
        return float(np.sqrt(np.mean((np.log1p(pred) - np.log1p(y_raw.astype("float64"))) ** 2)))
    if metric == "roc_auc":
        return float(roc_auc_score(y_raw, pred))
    codes = pd.Categorical(y_raw, categories=OTTO_CLASSES).codes
    return float(log_loss(codes, pred, labels=list(range(len(OTTO_CLASSES)))))


def to_submission_scale(name: str, model_output: np.ndarray) -> np.ndarray:
    """Bike's model predicts log1p(count): back to counts, never negative."""
    if name == "bike-sharing-demand":
        return np.clip(np.expm1(model_output), 0, None)
    return model_output


def summarize(name: str, peer: str, y_raw: np.ndarray, fold: np.ndarray, oof: np.ndarray,
              fold_seconds: list[float], wall: float, extra: dict | None = None) -> dict:
    """OOF score on all rows, per-fold scores (mean ± sample sd) and times, as a JSON-able dict."""
    per_fold = [score(name, y_raw[fold == k], oof[fold == k]) for k in range(FOLDS)]
    return {
        "competition": name, "peer": peer, "metric": COMPETITIONS[name][1], "rows": int(len(y_raw)),
        "oof": score(name, y_raw, oof), "fold_scores": per_fold,
        "fold_mean": float(np.mean(per_fold)), "fold_sd": float(np.std(per_fold, ddof=1)),
        "fold_seconds": fold_seconds, "wall_seconds": wall, **(extra or {}),
    }


def markdown_table(rows: list[dict]) -> str:
    lines = ["| competition | peer | metric | rows | OOF | per-fold mean ± sd | wall s (fit+predict, 5 folds) |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        arrow = "↓" if LOWER_IS_BETTER[r["metric"]] else "↑"
        lines.append(f"| {r['competition']} | {r['peer']} | {r['metric']} {arrow} | {r['rows']:,} | {r['oof']:.4f} | "
                     f"{r['fold_mean']:.4f} ± {r['fold_sd']:.4f} | {r['wall_seconds']:.1f} |")
    return "\n".join(lines)


def lightgbm_peer(name: str, data_dir: Path, out: Path, categorical: bool = False) -> dict:
    """LightGBM's defaults on each fold; `categorical` makes every feature a pandas category (Amazon's ids)."""
    import lightgbm as lgb  # only this peer needs it

    task = COMPETITIONS[name][0]
    X, y_raw, y = load(name, data_dir)
    if categorical:
        # Categories from all of train, so a fold's codes mean the same values in fit and held-out rows.
        X = X.astype("category")
    fold = fold_ids(name, y_raw)
    write_folds(out / name / "folds.csv", fold)
    oof = np.zeros((len(y), len(OTTO_CLASSES))) if task == "multiclass" else np.zeros(len(y))
    fold_seconds = []
    start = time.perf_counter()
    for k in range(FOLDS):
        t0 = time.perf_counter()
        fit, held = fold != k, fold == k
        if task == "regression":
            model = lgb.LGBMRegressor(random_state=0, verbose=-1).fit(X[fit], y[fit])
            oof[held] = model.predict(X[held])
        else:
            model = lgb.LGBMClassifier(random_state=0, verbose=-1).fit(X[fit], y[fit])
            proba = model.predict_proba(X[held])
            oof[held] = proba[:, 1] if task == "binary" else proba
        fold_seconds.append(time.perf_counter() - t0)
    wall = time.perf_counter() - start
    oof = to_submission_scale(name, oof)
    stem = "lightgbm_cat" if categorical else "lightgbm"
    save_npy(out / name / f"{stem}_oof.npy", oof)
    peer = "LightGBM defaults" + (", ids as category" if categorical else "")
    result = summarize(name, peer, y_raw, fold, oof, fold_seconds, wall,
                       {"features": list(X.columns), "categorical": categorical, "lightgbm": lgb.__version__})
    save_json(out / name / f"{stem}.json", result)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--only", choices=sorted(COMPETITIONS), help="one competition (default: all three)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folds CSVs, OOF .npy and JSON go here")
    args = parser.parse_args(argv)
    names = [args.only] if args.only else list(COMPETITIONS)
    rows = []
    for name in names:
        for categorical in ([False, True] if name == "amazon-employee-access-challenge" else [False]):
            rows.append(lightgbm_peer(name, args.data_dir, args.out, categorical))
            print(f"{rows[-1]['peer']} on {name}: OOF {rows[-1]['metric']} {rows[-1]['oof']:.4f} "
                  f"in {rows[-1]['wall_seconds']:.1f} s", file=sys.stderr)
    print(markdown_table(rows))
    print(f"\nFolds, OOF predictions and JSON in {args.out}/NAME/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
