"""PNG plots of results people look at. Matplotlib without a screen."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from harness.workspace import save_figure  # noqa: E402


def loss_figure(history: list[dict], batch_losses: list[float], title: str = "", epoch_batches=None):
    """The figure of ``plot_losses``. Epoch ``k`` of the history sits at x = k, counted from 1 as the
    table's ``epoch`` column; with several fits (stages) they follow one another, with a dashed line
    where each later stage starts. ``epoch_batches`` (batches per history row) places the batch
    losses under their epochs; without it they are spread evenly."""
    fig, ax = plt.subplots(figsize=(7, 4))
    n = len(history)
    if batch_losses and history:
        counts = list(epoch_batches) if epoch_batches is not None and len(epoch_batches) == n else None
        if counts is None or sum(counts) != len(batch_losses):
            per_epoch = len(batch_losses) / n
            xs = [(i + 1) / per_epoch for i in range(len(batch_losses))]
        else:
            # the batches of epoch k (1-based) lie in (k - 1, k]
            xs = [k + (i + 1) / c for k, c in enumerate(counts) for i in range(c)]
        ax.plot(xs, batch_losses, alpha=0.3, label="train (batch)")
    epochs = list(range(1, n + 1))
    ax.plot(epochs, [r["train_loss"] for r in history], "o-", label="train (epoch mean)")
    ax.plot(epochs, [r["valid_loss"] for r in history], "o-", label="validation")
    stages = [r.get("stage", 0) for r in history]
    for k in range(1, n):
        if stages[k] != stages[k - 1]:
            ax.axvline(k + 0.5, color="grey", ls="--", lw=0.8)
            ax.annotate(f"stage {stages[k]}", (k + 0.5, 1), xycoords=("data", "axes fraction"),
                        xytext=(2, -12), textcoords="offset points", fontsize=8, color="grey")
    multi = len(set(stages)) > 1
    ax.set_xlabel("epoch (stages one after another)" if multi else "epoch")
    if n <= 20:
        ax.set_xticks(epochs, [str(r.get("epoch", k)) for k, r in zip(epochs, history)] if multi else None)
    ax.set_ylabel("loss")
    ax.set_title(title or "loss")
    ax.legend()
    return fig


def plot_losses(history: list[dict], batch_losses: list[float], path, title: str = "", epoch_batches=None) -> None:
    """Training loss per batch (faint) and per epoch, validation loss per epoch, as a PNG."""
    save_figure(loss_figure(history, batch_losses, title, epoch_batches), path)


def plot_fold_scores(scores: list[float], metric: str, cv: float, path, title: str = "") -> None:
    """Each fold's validation score as a bar, and the CV score on all out-of-fold rows as a line."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.bar(range(1, len(scores) + 1), scores, color="tab:blue", alpha=0.7, label="fold")
    ax.axhline(cv, color="tab:red", linestyle="--", label=f"CV on all out-of-fold rows: {cv:.4f}")
    ax.set_xticks(range(1, len(scores) + 1))
    ax.set_xlabel("fold")
    ax.set_ylabel(metric)
    ax.set_title(title)
    ax.legend(loc="lower right")
    save_figure(fig, path)
