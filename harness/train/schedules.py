"""Learning-rate schedules, all from torch, stepped once per batch."""
from __future__ import annotations

from torch.optim import lr_scheduler

SCHEDULES = ("constant", "one-cycle", "sgdr")


def sgdr_epochs(n_cycles: int, cycle_len: int, cycle_mult: int) -> int:
    """Epochs needed for ``n_cycles`` restarts whose length grows by ``cycle_mult``."""
    return sum(cycle_len * cycle_mult**i for i in range(n_cycles))


def make_scheduler(name, optimizer, epochs, steps_per_epoch, max_lrs, pct_start=0.25, div_factor=25.0,
                   final_div_factor=1e4, cycle_len=1, cycle_mult=1):
    """A per-batch scheduler, or None for a constant rate.

    one-cycle: warm-up then cosine anneal, with momentum (Adam's beta1) cycled opposite the rate.
    sgdr: cosine annealing restarting every ``cycle_len`` epochs, each cycle ``cycle_mult`` times longer.
    """
    if name == "constant":
        return None
    if name == "one-cycle":
        return lr_scheduler.OneCycleLR(
            optimizer, max_lr=max_lrs, total_steps=epochs * steps_per_epoch, pct_start=pct_start,
            div_factor=div_factor, final_div_factor=final_div_factor, anneal_strategy="cos",
            cycle_momentum=True, base_momentum=0.85, max_momentum=0.95,
        )
    if name == "sgdr":
        return lr_scheduler.CosineAnnealingWarmRestarts(
            optimizer, T_0=cycle_len * steps_per_epoch, T_mult=cycle_mult, eta_min=0.0,
        )
    raise ValueError(f"unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}")
