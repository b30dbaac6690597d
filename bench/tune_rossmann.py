"""Hyperparameter search on the real Rossmann 100-store history: tuned vs default config, and the tuning overhead.

The same measurement as bench/tune_movielens.py (see there), on the shared 100-store subset of train
(linked as train.csv.gz beside the other Kaggle files, nothing copied), validating on the last 42 days
as bench/rossmann_quality.py does.

    .venv/bin/python bench/tune_rossmann.py --data-dir ../shared/data/rossmann --trials 8 --threads 1
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rossmann_quality import data_folder  # noqa: E402
from tune_movielens import main  # noqa: E402

if __name__ == "__main__":
    argv = sys.argv[1:]
    if "--competition" not in argv:
        argv = ["--competition", "rossmann", *argv]
    if "--data-dir" not in argv:
        argv = [*argv, "--data-dir", "../shared/data/rossmann"]
    main(argv, default_overrides=("data.valid_days=42",), prepare_data=data_folder)
