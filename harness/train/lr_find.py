"""The learning-rate finder: an exponential sweep that leaves the learner exactly as it found it."""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np

from harness.errors import HarnessError
from harness.train.rates import lr_per_group
from harness.train.rng import rng_state, set_rng_state

MIN_POINTS = 5  # fewer smoothed losses than this give no suggestion


@dataclass
class LRFindResult:
    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)  # smoothed
    suggestion: float = float("nan")  # the steepest descent of the smoothed loss
    lr_min: float = float("nan")  # a tenth of the rate at the lowest loss

    def plot(self, path, title: str = "lr_find") -> None:
        """Loss against rate (PNG), titled ``title`` and the suggested rate."""
        from harness.train.plots import plt, save_figure

        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(self.lrs, self.losses)
        ax.set_xscale("log")
        ax.set_xlabel("learning rate (log scale)")
        ax.set_ylabel("smoothed training loss")
        if not math.isnan(self.suggestion):
            i = int(np.argmin(np.abs(np.array(self.lrs) - self.suggestion)))
            ax.plot([self.suggestion], [self.losses[i]], "ro", label=f"suggested {self.suggestion:.2e}")
            ax.legend()
        ax.set_title(f"{title}: suggested lr {self.suggestion:.2e}" if not math.isnan(self.suggestion)
                     else f"{title}: no suggestion (too few points)")
        save_figure(fig, path)


def check_sweep(start_lr: float, end_lr: float, num_it: int) -> None:
    """The sweep's options (`harness lr-find`): finite rates above 0, rising, with enough batches for a
    suggestion; anything else would sweep nothing, or nan, and plot it."""
    for option, lr in (("--start-lr", start_lr), ("--end-lr", end_lr)):
        if not (math.isfinite(lr) and lr > 0):
            raise HarnessError(f"{option} {lr:g}: give a finite learning rate above 0 (the defaults sweep 1e-7 to 10)")
    if not end_lr > start_lr:
        raise HarnessError(f"--end-lr {end_lr:g} is not above --start-lr {start_lr:g}: the sweep rises from "
                           "--start-lr to --end-lr; give a larger --end-lr")
    if num_it < MIN_POINTS:
        raise HarnessError(f"--num-it {num_it}: give at least {MIN_POINTS} batches, the fewest the suggestion "
                           "is computed from (100 is usual)")


def _suggest(lrs, losses) -> tuple[float, float]:
    lrs, losses = np.asarray(lrs), np.asarray(losses)
    if len(losses) < MIN_POINTS:
        return float("nan"), float("nan")
    best = int(np.argmin(losses))
    lr_min = float(lrs[best] / 10)
    # Steepest descent of loss against log(lr), up to the minimum; skip the noisy first points.
    lo = min(len(losses) // 10, max(best - 1, 0))
    span = slice(lo, max(best, lo + 2) + 1)
    grads = np.gradient(losses[span], np.log(lrs[span]))
    return float(lrs[span][int(np.argmin(grads))]), lr_min


def lr_find(learn, start_lr: float = 1e-7, end_lr: float = 10.0, num_it: int = 100,
            beta: float = 0.98, diverge: float = 4.0, plot_path=None, title: str = "lr_find") -> LRFindResult:
    """Sweep the rate exponentially from ``start_lr`` to ``end_lr`` over ``num_it`` batches.

    The loss is smoothed (exponential moving average with bias correction); the sweep stops once it
    exceeds ``diverge`` times the best seen. Model, optimizer (rates and betas included), loss
    scaler, train loader and RNG states are restored. Layer groups keep their relative rates if the
    optimizer has differential rates set. ``title`` heads the plot (e.g. competition and model).
    """
    check_sweep(start_lr, end_lr, num_it)  # before any state is touched or plot written
    saved = {
        "model": copy.deepcopy(learn.model.state_dict()),
        "opt": copy.deepcopy(learn.opt.state_dict()),
        "rng": rng_state(),
        "scaler": copy.deepcopy(learn.scaler.state_dict()) if learn.scaler is not None else None,
        "dl": learn.train_dl.state_dict() if hasattr(learn.train_dl, "state_dict") else None,
        "callbacks": learn.callbacks,
        "scheduler": learn.scheduler,
    }
    ratios = np.array([g["lr"] for g in learn.opt.param_groups], dtype=float)
    ratios = ratios / ratios.max() if ratios.max() > 0 else np.ones_like(ratios)
    learn.add_callbacks([])
    learn.callbacks = [cb for cb in learn.callbacks if cb.during_lr_find]
    learn.add_callbacks([])
    learn.scheduler = None
    result = LRFindResult()
    mult = (end_lr / start_lr) ** (1 / max(num_it - 1, 1))
    avg, best = 0.0, math.inf
    learn.model.train()
    try:
        it = 0
        while it < num_it:
            for xb, yb in learn.train_dl:
                lr = start_lr * mult**it
                for group, r in zip(learn.opt.param_groups, lr_per_group(list(ratios * lr), len(ratios))):
                    group["lr"] = r
                learn.train_step(xb, yb)
                loss = learn.loss_value
                it += 1
                if math.isnan(loss):
                    break
                avg = beta * avg + (1 - beta) * loss
                smooth = avg / (1 - beta**it)
                result.lrs.append(lr)
                result.losses.append(smooth)
                best = min(best, smooth)
                if smooth > diverge * best or it >= num_it:
                    it = num_it
                    break
            else:
                continue
            break
    finally:
        learn.model.load_state_dict(saved["model"])
        learn.opt.load_state_dict(saved["opt"])
        set_rng_state(saved["rng"])
        if saved["scaler"]:  # an empty state: a disabled scaler, nothing to put back
            learn.scaler.load_state_dict(saved["scaler"])
        if saved["dl"] is not None:
            learn.train_dl.load_state_dict(saved["dl"])
        learn.callbacks = []
        learn.add_callbacks(saved["callbacks"])
        learn.scheduler = saved["scheduler"]
        learn.opt.zero_grad(set_to_none=True)
    result.suggestion, result.lr_min = _suggest(result.lrs, result.losses)
    if plot_path is not None:
        result.plot(plot_path, title=title)
    return result
