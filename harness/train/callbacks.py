"""Callbacks: everything beyond the bare loop (progress, history, checkpoints, early stopping).

A callback overrides any of the event methods below; each receives the Learner, whose attributes
(``epoch``, ``xb``, ``yb``, ``pred``, ``loss``, ``valid_loss``, ``metrics``...) it may read, and in
``after_loss`` may replace ``learn.loss`` (regularisers do). Callbacks run in ascending ``order``.

A callback whose state must survive a resume (a best score, a patience count) defines
``state_dict()`` and ``load_state_dict(state)``: the state (numbers, strings, lists, dicts only, so
checkpoints load with ``weights_only=True``) is saved in every checkpoint under the class's name.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import torch

from harness.progress import echo, progress_bar

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


def improved(learn, score: float, best: float | None) -> bool:
    """Whether ``score`` beats ``best`` on the primary metric (the validation loss if there is none)."""
    if best is None:
        return True
    metric = learn.primary_metric
    return metric.better(score, best) if metric is not None else score < best


class Recorder(Callback):
    """Per-epoch history (train loss, valid loss, metrics, time), printed as a table as it grows.

    ``epoch`` counts from 1 within each fit (``stage``), as the progress bar and the loss plot do;
    ``learn.epoch`` and checkpoints count from 0.
    """

    order = 10

    def __init__(self, echo=True):
        self.echo = echo
        self.history: list[dict] = []
        self.batch_losses: list[float] = []
        self.epoch_batches: list[int] = []  # batches per history row, to place batch losses in the plot
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
        row = {"stage": learn.fit_index, "epoch": learn.epoch + 1,
               "train_loss": self._loss_sum / max(self._n, 1), "valid_loss": learn.valid_loss}
        row.update(learn.metrics)
        row["time_s"] = time.perf_counter() - self._start
        self.history.append(row)
        self.epoch_batches.append(self._n)
        if self.echo:
            self._print(row)

    def _print(self, row):
        cols = list(row)
        if not self._printed_header:
            echo("  ".join(f"{c:>12}" for c in cols))
            self._printed_header = True
        cells = []
        for c in cols:
            v = row[c]
            cells.append(f"{v:>12.5f}" if isinstance(v, float) else f"{v!s:>12}")
        echo("  ".join(cells))  # through the bar's own write, so no half-drawn bar is left in the table

    def state_dict(self) -> dict:
        # the history itself is saved beside (checkpoint["history"]); a tensor keeps long runs small
        return {"batch_losses": torch.tensor(self.batch_losses, dtype=torch.float32),
                "epoch_batches": list(self.epoch_batches)}

    def load_state_dict(self, state: dict) -> None:
        self.batch_losses = state["batch_losses"].tolist()
        self.epoch_batches = [int(n) for n in state["epoch_batches"]]


class ProgressBar(Callback):
    """A bar per epoch with a live, smoothed training loss; by default only on a terminal
    (``disable=None``), so a log gets no ``\\r`` frames. ``disable=True``/``False`` forces it."""

    order = 20

    def __init__(self, disable=None):
        self.disable = disable
        self.bar = None

    def before_epoch(self, learn):
        self.bar = progress_bar(total=len(learn.train_dl), desc=f"epoch {learn.epoch + 1}/{learn.n_epochs}",
                                unit="batch", disable=self.disable)
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
    """Stop a fit when the primary metric has not improved for ``patience`` of its epochs.

    The epoch's score is counted before the checkpoint is written (so a resumed run counts as an
    uninterrupted one) and the fit stops at the start of the next epoch, after the checkpoint.
    """

    order = 15  # after the Recorder's row, before the Checkpoint and the next epoch's bar

    def __init__(self, patience=3):
        self.patience = patience
        self.best, self.wait, self.stop = None, 0, False

    def after_epoch(self, learn):
        score = learn.primary_score
        if score is None or math.isnan(score):
            return
        if improved(learn, score, self.best):
            self.best, self.wait = float(score), 0
        else:
            self.wait += 1
            self.stop = self.wait >= self.patience

    def before_epoch(self, learn):
        if self.stop:
            echo(f"early stopping: no improvement for {self.patience} epochs", err=True)
            raise CancelFit()

    def after_fit(self, learn):
        # A stop ends this fit only; the next fit (a later stage) gets its full patience, and must
        # still beat the best score so far to count as an improvement.
        self.wait, self.stop = 0, False

    def state_dict(self) -> dict:
        return {"best": self.best, "wait": self.wait, "stop": self.stop}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.wait, self.stop = state["best"], int(state["wait"]), bool(state["stop"])


class Checkpoint(Callback):
    """Save the full training state after every epoch (atomically), and the best model weights."""

    order = 30

    def __init__(self, folder):
        self.folder = Path(folder)
        self.best = None

    def after_epoch(self, learn):
        # best first, so that last.pt holds the best score including this epoch's
        score = learn.primary_score
        if score is not None and not math.isnan(score):
            if improved(learn, score, self.best):
                self.best = float(score)
                learn.save_model(self.folder / "best.pt")
        learn.save_checkpoint(self.folder / "last.pt")

    def state_dict(self) -> dict:
        return {"best": self.best}

    def load_state_dict(self, state: dict) -> None:
        self.best = state["best"]
