"""PNG plots of results people look at. Matplotlib without a screen."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from harness.workspace import save_figure  # noqa: E402


def plot_losses(history: list[dict], batch_losses: list[float], path, title: str = "") -> None:
    """Training loss per batch (faint) and per epoch, validation loss per epoch."""
    fig, ax = plt.subplots(figsize=(7, 4))
    if batch_losses and history:
        per_epoch = len(batch_losses) / max(len(history), 1)
        ax.plot([i / per_epoch for i in range(len(batch_losses))], batch_losses, alpha=0.3, label="train (batch)")
    epochs = [i + 1 for i in range(len(history))]
    ax.plot(epochs, [r["train_loss"] for r in history], "o-", label="train (epoch mean)")
    ax.plot(epochs, [r["valid_loss"] for r in history], "o-", label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title(title or "loss")
    ax.legend()
    save_figure(fig, path)
