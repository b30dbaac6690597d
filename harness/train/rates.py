"""Learning rates per layer group: one rate, a list, or the lesson's slice of differential rates."""
from __future__ import annotations

import numpy as np


def lr_per_group(lr, n_groups: int) -> list[float]:
    """A float gives every group that rate; a slice(lo, hi) spreads rates geometrically from the
    first group to the last (the lesson's differential learning rates); a list is taken as is."""
    if isinstance(lr, slice):
        lo, hi = lr.start, lr.stop
        if lo is None:
            return [hi / 10] * (n_groups - 1) + [hi] if n_groups > 1 else [hi]
        return [float(x) for x in np.geomspace(lo, hi, n_groups)] if n_groups > 1 else [hi]
    if isinstance(lr, (list, tuple)):
        if len(lr) != n_groups:
            raise ValueError(f"{len(lr)} learning rates given for {n_groups} layer groups")
        return [float(x) for x in lr]
    return [float(lr)] * n_groups
