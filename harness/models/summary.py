"""A printed model summary: each layer with its parameter shapes and counts, as the lesson shows."""
from __future__ import annotations

from torch import nn


def summarize(model: nn.Module, layer_groups=None) -> str:
    """The model's repr, then one line per module with parameters. A model may name its modules
    better (e.g. an embedding by its column) with ``module_labels() -> {module name: label}``."""
    labels = model.module_labels() if hasattr(model, "module_labels") else {}
    group_of = {}
    for g, params in enumerate(layer_groups or []):
        for p in params:
            group_of[id(p)] = g
    lines = [repr(model), "", f"{'layer':<40} {'type':<18} {'parameter shapes':<28} {'params':>10} {'group':>5}"]
    total = trainable = 0
    for name, module in model.named_modules():
        params = list(module.parameters(recurse=False))
        if not params:
            continue
        count = sum(p.numel() for p in params)
        total += count
        trainable += sum(p.numel() for p in params if p.requires_grad)
        shapes = ", ".join("x".join(map(str, p.shape)) or "scalar" for p in params)
        groups = sorted({group_of.get(id(p), "-") for p in params}, key=str)
        lines.append(f"{labels.get(name, name) or '(model)':<40} {type(module).__name__:<18} {shapes:<28} {count:>10,} "
                     f"{','.join(map(str, groups)):>5}")
    lines.append(f"total parameters: {total:,} (trainable: {trainable:,}); layer groups: {len(layer_groups or [])}")
    return "\n".join(lines)
