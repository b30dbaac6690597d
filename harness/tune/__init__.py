"""Hyperparameter search with Optuna: studies, pruning, export of the best trial, blends of the best trials.

    study.py     storage (SQLite by default, PostgreSQL, journal file), sampler, pruner, the objective
    pruning.py   a trainer callback that reports the validation metric to the trial each epoch
    export.py    a trial -> a competition config that `harness train --config` reproduces
    blend.py     the K best trials' predictions averaged into a new run folder
    report.py    `--show`: best trial, trials table, importances, PNG plots
    ensemble.py  honest OOF blends of K-fold runs (mean, weights, Caruana, stacking), fitted inside the folds
    (the click commands `harness tune` and `harness blend` live in harness/cli/tune.py)
"""
from harness.errors import HarnessError

# Shared by the CLI options and the study; kept here so `harness --help` does not import Optuna.
SAMPLERS = ("tpe", "random")
PRUNERS = ("median", "hyperband", "none")
DEFAULT_HEARTBEAT = 30  # seconds between heartbeats; a trial silent for twice that is marked failed


def check_budget(n_trials: int | None, timeout: float | None) -> None:
    """How long to search: at least one trial and/or a positive number of seconds (checked before the
    command imports Optuna and torch, so a typo is answered at once)."""
    if n_trials is None and timeout is None:
        raise HarnessError("say how long to search: --trials N and/or --timeout SECONDS")
    if n_trials is not None and n_trials < 1:
        raise HarnessError(f"--trials {n_trials}: run at least one trial (or drop --trials and give --timeout)")
    if timeout is not None and not timeout > 0:
        raise HarnessError(f"--timeout {timeout:g}: give a number of seconds above 0")
