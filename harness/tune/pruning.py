"""Pruning: report the primary validation metric to the Optuna trial after every epoch."""
from __future__ import annotations

import math

import optuna

from harness.train.callbacks import Callback
from harness.train.schedules import sgdr_epochs


def recipe_epochs(competition, config: dict) -> int:
    """Epochs a training run of ``config`` lasts over its whole recipe: what the pruning steps count.

    A competition with its own recipe may say it (a ``recipe_epochs(config)`` method). Otherwise the
    [train] keys of the bundled recipes are read: under SGDR ``epochs`` counts cycles of
    ``cycle_len * cycle_mult**i`` epochs; ``stages`` (gradual unfreezing) fit once per stage, for the
    stage's ``epochs`` or ``train.epochs``; ``frozen_epochs`` and ``unfreeze_cycles`` (SGDR cycles of
    ``cycle_len``, ``cycle_mult``) follow a first fit (a frozen head, then the unfrozen network).
    """
    own = getattr(competition, "recipe_epochs", None)
    if own is not None:
        return int(own(config))
    t = config.get("train", {})
    epochs, schedule = int(t.get("epochs", 1)), t.get("schedule", "one-cycle")
    cycle_len, cycle_mult = int(t.get("cycle_len", 1)), int(t.get("cycle_mult", 1))
    stages = t.get("stages")
    if isinstance(stages, list) and stages:
        # Each stage is one fit under train.schedule without cycle lengths: one epoch per SGDR cycle.
        return sum(int(stage.get("epochs", epochs)) for stage in stages if isinstance(stage, dict))
    if "unfreeze_cycles" in t or "frozen_epochs" in t:
        # The first fit (the head alone) passes no cycle lengths either.
        return epochs + int(t.get("frozen_epochs", 0)) + sgdr_epochs(int(t.get("unfreeze_cycles", 0)), cycle_len,
                                                                     cycle_mult)
    return sgdr_epochs(epochs, cycle_len, cycle_mult) if schedule == "sgdr" else epochs


class OptunaPruning(Callback):
    """Reports ``learn.primary_score`` each epoch and raises ``optuna.TrialPruned`` when the pruner says so.

    Steps count epochs over the whole recipe (a recipe may call ``fit`` more than once), so trials
    are compared at the same amount of training.
    """

    order = 50  # after Checkpoint, so a pruned trial's last epoch is on disk

    def __init__(self, trial: optuna.Trial):
        self.trial = trial
        self.step = 0

    def after_epoch(self, learn):
        score = learn.primary_score
        self.step += 1
        if score is None or math.isnan(score):
            return
        self.trial.report(float(score), self.step)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {self.step} with {score:.5f}")
