"""Callbacks: everything beyond the bare loop (progress, history, checkpoints, early stopping).

A callback overrides any of the event methods below; each receives the Learner, whose attributes
(``epoch``, ``xb``, ``yb``, ``pred``, ``loss``, ``valid_loss``, ``metrics``...) it may read, and in
``after_loss`` may replace ``learn.loss`` (regularisers do). Callbacks run in ascending ``order``.
"""
from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import click

EVENTS = (
    "before_fit", "before_epoch", "before_batch", "after_loss", "after_step", "after_batch",
    "before_validate", "after_validate", "after_epoch", "after_fit",
)


class CancelFit(Exception):
    """Raised by a callback to stop training cleanly (early stopping, pruning)."""


class Callback:
    order = 0
    # Callbacks that shape the loss (regularisers, hidden-state resets) also run during lr_find.
    during_lr_find = False

    def before_fit(self, learn): pass
    def before_epoch(self, learn): pass
    def before_batch(self, learn): pass
    def after_loss(self, learn): pass
    def after_step(self, learn): pass
    def after_batch(self, learn): pass
    def before_validate(self, learn): pass
    def after_validate(self, learn): pass
    def after_epoch(self, learn): pass
    def after_fit(self, learn): pass


class Recorder(Callback):
    """Per-epoch history (train loss, valid loss, metrics, time), printed as a table as it grows."""

    order = 10

    def __init__(self, echo=True):
        self.echo = echo
        self.history: list[dict] = []
        self.batch_losses: list[float] = []
        self._printed_header = False

    def before_epoch(self, learn):
        self._start = time.perf_counter()
        self._loss_sum, self._n = 0.0, 0

    def after_batch(self, learn):
        loss = learn.loss_value
        self._loss_sum += loss
        self._n += 1
        self.batch_losses.append(loss)

    def after_epoch(self, learn):
        row = {"stage": learn.fit_index, "epoch": learn.epoch,
               "train_loss": self._loss_sum / max(self._n, 1), "valid_loss": learn.valid_loss}
        row.update(learn.metrics)
        row["time_s"] = time.perf_counter() - self._start
        self.history.append(row)
        if self.echo:
            self._print(row)

    def _print(self, row):
        cols = list(row)
        if not self._printed_header:
            click.echo("  ".join(f"{c:>12}" for c in cols))
            self._printed_header = True
        cells = []
        for c in cols:
            v = row[c]
            cells.append(f"{v:>12.5f}" if isinstance(v, float) else f"{v!s:>12}")
        click.echo("  ".join(cells))


class ProgressBar(Callback):
    """A tqdm bar per epoch with a live, smoothed training loss."""

    order = 20

    def __init__(self, disable=None):
        self.disable = disable
        self.bar = None

    def before_epoch(self, learn):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=len(learn.train_dl), desc=f"epoch {learn.epoch + 1}/{learn.n_epochs}",
                        leave=False, disable=self.disable, file=sys.stderr, mininterval=0.5)
        self._smooth, self._last = None, 0.0

    def after_batch(self, learn):
        if self.bar is None or self.bar.disable:
            return
        loss = learn.loss_value
        self._smooth = loss if self._smooth is None else 0.98 * self._smooth + 0.02 * loss
        self.bar.update()
        now = time.monotonic()
        if now - self._last > 0.5:
            self._last = now
            self.bar.set_postfix_str(f"loss {self._smooth:.4f}", refresh=False)

    def after_epoch(self, learn):
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    after_fit = after_epoch


class Penalty(Callback):
    """Add ``weight * model.penalty(*inputs)`` to the loss: a regulariser that depends on the batch,
    such as L2 on the embeddings a batch uses (SGD matrix factorisation's regularisation)."""

    during_lr_find = True

    def __init__(self, weight: float):
        self.weight = weight

    def after_loss(self, learn):
        xb = learn.xb if isinstance(learn.xb, tuple) else (learn.xb,)
        learn.loss = learn.loss + self.weight * learn.model.penalty(*xb)


class EarlyStopping(Callback):
    """Stop when the primary metric has not improved for ``patience`` epochs."""

    order = 40  # after the checkpoint of the epoch is written

    def __init__(self, patience=3):
        self.patience = patience
        self.best, self.wait = None, 0

    def after_epoch(self, learn):
        score = learn.primary_score
        if score is None or math.isnan(score):
            return
        if self.best is None or learn.primary_metric.better(score, self.best):
            self.best, self.wait = score, 0
        else:
            self.wait += 1
            if self.wait >= self.patience:
                click.echo(f"early stopping: no improvement for {self.patience} epochs", err=True)
                raise CancelFit()


class Checkpoint(Callback):
    """Save the full training state after every epoch (atomically), and the best model weights."""

    order = 30

    def __init__(self, folder):
        self.folder = Path(folder)
        self.best = None

    def after_epoch(self, learn):
        learn.save_checkpoint(self.folder / "last.pt")
        score = learn.primary_score
        if score is not None and not math.isnan(score):
            if self.best is None or learn.primary_metric.better(score, self.best):
                self.best = score
                learn.save_model(self.folder / "best.pt")
