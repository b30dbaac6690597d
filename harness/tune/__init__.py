"""Hyperparameter search with Optuna: studies, pruning, export of the best trial, blends of the best trials.

    study.py     storage (SQLite by default, PostgreSQL, journal file), sampler, pruner, the objective
    pruning.py   a trainer callback that reports the validation metric to the trial each epoch
    export.py    a trial -> a competition config that `harness train --config` reproduces
    blend.py     the K best trials' predictions averaged into a new run folder
    report.py    `--show`: best trial, trials table, importances, PNG plots
    commands.py  the click commands `harness tune` and `harness blend`
"""

# Shared by the CLI options and the study; kept here so `harness --help` does not import Optuna.
SAMPLERS = ("tpe", "random")
PRUNERS = ("median", "hyperband", "none")
DEFAULT_HEARTBEAT = 30  # seconds between heartbeats; a trial silent for twice that is marked failed
