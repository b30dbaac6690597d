"""Pruning: report the primary validation metric to the Optuna trial after every epoch."""
from __future__ import annotations

import math

import optuna

from harness.train.callbacks import Callback


class OptunaPruning(Callback):
    """Reports ``learn.primary_score`` each epoch and raises ``optuna.TrialPruned`` when the pruner says so.

    Steps count epochs over the whole recipe (a recipe may call ``fit`` more than once), so trials
    are compared at the same amount of training. The trial records its run folder as soon as training
    starts, so a pruned, failed or killed trial still points at what it left behind.
    """

    order = 50  # after Checkpoint, so a pruned trial's last epoch is on disk

    def __init__(self, trial: optuna.Trial):
        self.trial = trial
        self.step = 0

    def before_fit(self, learn):
        run = getattr(learn, "run", None)
        if run is not None and "run" not in self.trial.user_attrs:
            self.trial.set_user_attr("run", run.id)

    def after_epoch(self, learn):
        score = learn.primary_score
        self.step += 1
        if score is None or math.isnan(score):
            return
        self.trial.report(float(score), self.step)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {self.step} with {score:.5f}")
