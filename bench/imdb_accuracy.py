"""IMDB accuracy on the test reviews: the NB-SVM baseline on all of them, and the AWD-LSTM (ULMFiT)
route as far as a CPU budget allows.

    python bench/imdb_accuracy.py --data-dir ../shared/data/imdb nbsvm
    python bench/imdb_accuracy.py --data-dir ../shared/data/imdb lm --train 2000 --test 2000 --lm-tokens 500000

nbsvm: fit on the 25,000 training reviews, score the 25,000 test reviews (accuracy, ROC AUC) with the
plugin's own featurizer, fit and model; times each step. Target: accuracy >= 0.91.

lm: the whole `harness train imdb` flow (runner + plugin, the default CPU config) on a random,
balanced subset written as CSV parts to a temporary folder (never into the repo): ``--train``
labelled reviews (10% of them for validation), ``--test`` test reviews; the language model reads
``--lm-tokens`` tokens of the train+test text; the classifier runs the config's gradual unfreezing.
"""
from __future__ import annotations

import argparse
import gzip
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def load_split(data_dir: Path, split: str) -> pd.DataFrame:
    parts = sorted(data_dir.glob(f"{split}-*.csv.gz"))
    if not parts:
        raise SystemExit(f"no {split}-*.csv.gz parts in {data_dir}")
    return pd.concat((pd.read_csv(p, keep_default_na=False) for p in parts), ignore_index=True)


def bench_nbsvm(data_dir: Path, args) -> None:
    import torch

    from harness.scoring.metrics import roc_auc_fn
    from harness.models.nbsvm import NBSVM, BagLoader, fit_nbsvm, make_featurizer

    train, test = load_split(data_dir, "train"), load_split(data_dir, "test")
    y_train = (train["label"] == "pos").to_numpy().astype(int)
    y_test = (test["label"] == "pos").to_numpy().astype(int)
    featurizer = make_featurizer(args.n_features, 2)
    t0 = time.perf_counter()
    x_train = featurizer.transform(train["text"])
    x_test = featurizer.transform(test["text"])
    t1 = time.perf_counter()
    weight, bias = fit_nbsvm(x_train, y_train, C=args.C)
    t2 = time.perf_counter()
    model = NBSVM(args.n_features)
    model.set_weights(weight, bias)
    with torch.no_grad():
        logits = torch.cat([model(*xb) for xb, _ in BagLoader(x_test)]).numpy()
    t3 = time.perf_counter()
    acc = float(((logits > 0) == y_test).mean())
    print(f"NB-SVM, binary hashed word uni+bigrams (2^{int(np.log2(args.n_features))} buckets), C={args.C}")
    print("| train reviews | test reviews | test accuracy | test ROC AUC | features s | fit s | predict s | total s |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {len(train):,} | {len(test):,} | {acc:.4f} | {roc_auc_fn(logits, y_test):.4f} | {t1 - t0:.1f} | "
          f"{t2 - t1:.1f} | {t3 - t2:.1f} | {t3 - t0:.1f} |")


def bench_lm(data_dir: Path, args) -> None:
    from harness.runs import runner
    from harness.config.loading import apply_overrides
    from harness_plugins.imdb import Imdb

    rng = np.random.default_rng(0)
    comp = Imdb()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = tmp / "data"
        data.mkdir()
        for split, n in (("train", args.train), ("test", args.test)):
            frame = load_split(data_dir, split)
            pick = np.concatenate([rng.choice(np.flatnonzero(frame["label"] == lab), n // 2, replace=False)
                                   for lab in ("pos", "neg")])
            with gzip.open(data / f"{split}-00-of-01.csv.gz", "wt", encoding="utf-8") as f:
                frame.iloc[np.sort(pick)].to_csv(f, index=False)
        overrides = [f"lm.max_tokens={args.lm_tokens}", f"lm.epochs={args.lm_epochs}", *args.set]
        config = apply_overrides(comp.default_config(), overrides)
        started = time.perf_counter()
        run = runner.train(comp, config, data, tmp / "ws")
        seconds = time.perf_counter() - started
        summary = run.summary()
        test = json.loads(run.path("test_metrics.json").read_text())
        lm = json.loads(run.path("lm_summary.json").read_text()) if run.path("lm_summary.json").exists() else {}
        history = pd.read_csv(run.path("history.csv"))
        print()
        print(f"overrides: {' '.join(overrides)}")
        print(history.to_string(index=False))
        print()
        print("| train reviews | test reviews | LM tokens/epoch | LM perplexity | LM s | valid accuracy | test accuracy | total s |")
        print("|---|---|---|---|---|---|---|---|")
        print(f"| {args.train:,} | {args.test:,} | {lm.get('tokens_per_epoch', 0):,} | {lm.get('perplexity', float('nan')):.1f} | "
              f"{lm.get('seconds', float('nan')):.0f} | {summary['metrics'].get('accuracy', float('nan')):.4f} | "
              f"{test['test_accuracy']:.4f} | {seconds:.0f} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", required=True)
    sub = ap.add_subparsers(dest="what", required=True)
    nb = sub.add_parser("nbsvm")
    nb.add_argument("--n-features", type=int, default=2**22)
    nb.add_argument("--C", type=float, default=0.1)
    lm = sub.add_parser("lm")
    lm.add_argument("--train", type=int, default=2000)
    lm.add_argument("--test", type=int, default=2000)
    lm.add_argument("--lm-tokens", type=int, default=500_000)
    lm.add_argument("--lm-epochs", type=int, default=1)
    lm.add_argument("--set", action="append", default=[], help="extra config overrides, key=value")
    args = ap.parse_args()
    (bench_nbsvm if args.what == "nbsvm" else bench_lm)(Path(args.data_dir), args)


if __name__ == "__main__":
    main()
