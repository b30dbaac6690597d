"""`harness explain movielens`: what the embeddings learned (lesson 4's interpretation)."""
from __future__ import annotations

from pathlib import Path

import click
import numpy as np
import torch

from harness.workspace import save_figure, write_text


def explain(learn, run, out_dir: Path, top: int = 10, n_plot: int = 50) -> dict:
    state = run.state()
    model = learn.model
    titles = [state["titles"][str(i)] for i in state["items"]]
    counts = np.array(state["item_counts"])
    lines = []
    if hasattr(model, "item_bias"):
        bias = model.item_bias.weight[1:, 0].detach().numpy()
        order = np.argsort(bias)
        lines.append("Lowest item bias (liked less than their ratings' users would predict):")
        lines += [f"  {bias[j]:+.3f}  {titles[j]}" for j in order[:top]]
        lines.append("Highest item bias:")
        lines += [f"  {bias[j]:+.3f}  {titles[j]}" for j in order[::-1][:top]]
    with torch.no_grad():
        factors = model.item_vectors()[1:].detach()
    centred = factors - factors.mean(0)
    _, _, v = torch.linalg.svd(centred, full_matrices=False)
    components = (centred @ v[:2].T).numpy()
    popular = np.argsort(-counts)[: max(n_plot * 20, 1)]  # components are noisy for rarely rated items
    for c in range(2):
        ranked = popular[np.argsort(components[popular, c])]
        lines.append(f"Principal component {c + 1}, one end:")
        lines += [f"  {components[j, c]:+.3f}  {titles[j]}" for j in ranked[:top]]
        lines.append(f"Principal component {c + 1}, other end:")
        lines += [f"  {components[j, c]:+.3f}  {titles[j]}" for j in ranked[::-1][:top]]
    text = "\n".join(lines)
    click.echo(text)
    out_dir = Path(out_dir)
    write_text(out_dir / "explain.txt", text + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = np.argsort(-counts)[:n_plot]
    fig, ax = plt.subplots(figsize=(11, 9))
    ax.scatter(components[shown, 0], components[shown, 1], s=8)
    for j in shown:
        ax.annotate(titles[j], (components[j, 0], components[j, 1]), fontsize=7)
    ax.set_xlabel("principal component 1 of the item vectors")
    ax.set_ylabel("principal component 2")
    ax.set_title(f"{n_plot} most-rated movies, {run.competition} run {run.id}")
    plot_path = out_dir / "item_factors_pca.png"
    save_figure(fig, plot_path)
    click.echo(f"plot: {plot_path}")
    return {"text": text, "plot": plot_path}
