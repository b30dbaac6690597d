"""Learning-rate schedules, stepped once per batch: one-cycle (ours), SGDR (torch's)."""
from __future__ import annotations

import math

from torch.optim import lr_scheduler

SCHEDULES = ("constant", "one-cycle", "sgdr")
DEFAULT_MOMS = (0.95, 0.85, 0.95)  # fastai's: beta1 high while the rate is low, low at the peak rate


def sgdr_epochs(n_cycles: int, cycle_len: int, cycle_mult: int) -> int:
    """Epochs needed for ``n_cycles`` restarts whose length grows by ``cycle_mult``."""
    return sum(cycle_len * cycle_mult**i for i in range(n_cycles))


def cos_interp(start: float, end: float, pct: float) -> float:
    """Cosine from ``start`` (pct 0) to ``end`` (pct 1)."""
    return end + (start - end) / 2 * (1 + math.cos(math.pi * pct))


def one_cycle_peak(total_steps: int, pct_start: float) -> int:
    """The step at which one-cycle reaches its peak rate.

    As torch's OneCycleLR, ``pct_start * total_steps - 1``, but clamped so that any number of steps
    works: the anneal keeps at least one step after the peak (two steps: peak, then the lowest rate),
    and with three or more steps and ``pct_start > 0`` the warm-up keeps at least one step too.
    """
    last = total_steps - 1
    peak = math.floor(pct_start * total_steps + 0.5) - 1
    lowest = 1 if pct_start > 0 and total_steps >= 3 else 0
    return max(lowest, min(peak, last - 1)) if last >= 1 else 0


class OneCycle:
    """One-cycle policy: the rate warms up from ``max_lr / div_factor`` to ``max_lr`` over
    ``pct_start`` of the steps, then anneals to ``max_lr / (div_factor * final_div_factor)``, both
    halves cosine; Adam's beta1 goes ``moms[0] -> moms[1]`` (at the peak) ``-> moms[2]`` meanwhile.

    Written here rather than torch's OneCycleLR, which cycles momentum only max -> base -> max and
    divides by zero when ``pct_start * total_steps <= 1``. Its state is one integer.
    """

    def __init__(self, optimizer, max_lrs, total_steps: int, pct_start: float = 0.25, div_factor: float = 25.0,
                 final_div_factor: float = 1e4, moms=DEFAULT_MOMS):
        if len(moms) != 3:
            raise ValueError(f"moms must be three values (start, middle, end); got {moms!r}")
        self.optimizer = optimizer
        self.max_lrs = list(max_lrs)
        self.total_steps = max(int(total_steps), 1)
        self.peak = one_cycle_peak(self.total_steps, pct_start)
        self.div_factor, self.final_div_factor = div_factor, final_div_factor
        self.moms = tuple(float(m) for m in moms)
        self.step_count = 0
        self._apply()

    def lr_and_mom(self, step: int, max_lr: float) -> tuple[float, float]:
        """The rate and beta1 for batch ``step`` (0-based); past the end they stay at the last step's."""
        step = min(step, self.total_steps - 1)
        start, end = max_lr / self.div_factor, max_lr / (self.div_factor * self.final_div_factor)
        m0, m1, m2 = self.moms
        if step <= self.peak:
            pct = step / self.peak if self.peak else 1.0
            return cos_interp(start, max_lr, pct), cos_interp(m0, m1, pct)
        pct = (step - self.peak) / (self.total_steps - 1 - self.peak)
        return cos_interp(max_lr, end, pct), cos_interp(m1, m2, pct)

    def _apply(self) -> None:
        for group, max_lr in zip(self.optimizer.param_groups, self.max_lrs):
            lr, mom = self.lr_and_mom(self.step_count, max_lr)
            group["lr"] = lr
            if "betas" in group:
                group["betas"] = (mom, group["betas"][1])
            elif "momentum" in group:
                group["momentum"] = mom

    def step(self) -> None:
        self.step_count += 1
        self._apply()

    def state_dict(self) -> dict:
        return {"step_count": self.step_count}

    def load_state_dict(self, state: dict) -> None:
        # "last_epoch": the step count in checkpoints written with torch's OneCycleLR
        self.step_count = int(state["step_count"] if "step_count" in state else state["last_epoch"])
        self._apply()


def make_scheduler(name, optimizer, epochs, steps_per_epoch, max_lrs, pct_start=0.25, div_factor=25.0,
                   final_div_factor=1e4, cycle_len=1, cycle_mult=1, moms=DEFAULT_MOMS):
    """A per-batch scheduler, or None for a constant rate.

    one-cycle: warm-up then cosine anneal, with Adam's beta1 cycled through ``moms`` opposite the rate.
    sgdr: cosine annealing restarting every ``cycle_len`` epochs, each cycle ``cycle_mult`` times longer.
    """
    if name == "constant":
        return None
    if name == "one-cycle":
        return OneCycle(optimizer, max_lrs, epochs * steps_per_epoch, pct_start=pct_start, div_factor=div_factor,
                        final_div_factor=final_div_factor, moms=moms)
    if name == "sgdr":
        return lr_scheduler.CosineAnnealingWarmRestarts(
            optimizer, T_0=max(cycle_len * steps_per_epoch, 1), T_mult=cycle_mult, eta_min=0.0,
        )
    raise ValueError(f"unknown schedule {name!r}; choose one of {', '.join(SCHEDULES)}")
