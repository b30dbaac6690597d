"""Hyperparameter search on the real Rossmann 100-store history: tuned vs default, chosen on the window before, reported once.

The same protocol as bench/tune_movielens.py (see there), on the shared 100-store subset of train
(linked as train.csv.gz beside the other Kaggle files, nothing copied). The reported window is the
config's own (the last ``data.valid_days`` = 48 days of train). Choosing happens on the 48 days just
before it, training on the days before those (bench/rossmann_quality.py's ``TuningWindow``, where
LightGBM's parameters are chosen): the default config's score there, the study's trials, the best
trial's rerun and the top-K mean. Then the default config, the best trial and the equal-weight mean
of the top K trials are each retrained on everything before the reported window and scored on it once.

    .venv/bin/python bench/tune_rossmann.py --data-dir ../shared/data/rossmann --trials 30 --top-k 5 --threads 1

Writes its section of bench/results/tune.md (``--out`` for another file).
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.tune_movielens import Protocol, main  # noqa: E402


def rossmann_protocol(args) -> Protocol:
    from bench.rossmann_quality import TuningWindow, data_folder
    from harness_plugins.rossmann import Rossmann

    folder = data_folder(args.data_dir)
    return Protocol(
        TuningWindow(), folder, Rossmann(), folder,
        tune_rows=("the `data.valid_days` days just before the reported window validate (the tuning window of "
                   "`bench/rossmann_quality.py`), the days before those train; the reported window is not read"),
        report_rows="train on every day before the last `data.valid_days` days, score those days, once per config",
        notes=[f"data folder (links): {folder}"])


if __name__ == "__main__":
    main(sys.argv[1:], competition="rossmann", default_overrides=(), protocol=rossmann_protocol,
         out_key="bench/tune_rossmann.py", title="Rossmann, 100-store history, last 48 days")
