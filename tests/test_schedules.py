"""One-cycle: torch's curve where torch works, any number of steps where it does not."""
import numpy as np
import pytest
import torch
from torch import nn
from torch.optim import lr_scheduler

from harness.data.loaders import TensorLoader
from harness.train import Callback, Learner
from harness.train.schedules import OneCycle


def adamw(betas=(0.9, 0.99)):
    return torch.optim.AdamW([nn.Parameter(torch.zeros(1))], lr=1e-3, betas=betas)


def trace(scheduler, opt, steps):
    """(lr, beta1) in force for each of ``steps`` batches."""
    out = []
    for _ in range(steps):
        group = opt.param_groups[0]
        out.append((group["lr"], group["betas"][0]))
        opt.step()  # no gradients: nothing moves, but torch wants a step before the scheduler's
        scheduler.step()
    return np.array(out)


def test_one_cycle_matches_torch_one_cycle_for_100_steps():
    ours_opt, torch_opt = adamw(), adamw()
    ours = OneCycle(ours_opt, [1e-2], 100, pct_start=0.25, moms=(0.95, 0.85, 0.95))
    theirs = lr_scheduler.OneCycleLR(torch_opt, max_lr=[1e-2], total_steps=100, pct_start=0.25,
                                     anneal_strategy="cos", base_momentum=0.85, max_momentum=0.95)
    np.testing.assert_allclose(trace(ours, ours_opt, 100), trace(theirs, torch_opt, 100), rtol=1e-9)


@pytest.mark.parametrize("pct_start", [0.25, 0.3])
@pytest.mark.parametrize("total", [1, 2, 3])
def test_one_cycle_with_few_steps_reaches_the_peak_and_anneals(total, pct_start):
    opt = adamw()
    lrs = trace(OneCycle(opt, [1e-2], total, pct_start=pct_start), opt, total)[:, 0]
    assert len(lrs) == total and np.all(np.isfinite(lrs))
    assert lrs.max() == pytest.approx(1e-2)  # every fit sees the peak rate
    if total >= 2:
        assert lrs[-1] == pytest.approx(1e-2 / 25 / 1e4)  # and ends annealed
    if total >= 3:
        assert lrs[0] == pytest.approx(1e-2 / 25)  # with room for it, a warm-up step first


def test_one_cycle_state_dict_resumes_mid_cycle():
    opt_a, opt_b = adamw(), adamw()
    a = OneCycle(opt_a, [1e-2], 20, moms=(0.9, 0.8, 0.95))
    full = trace(a, opt_a, 20)
    b = OneCycle(opt_b, [1e-2], 20, moms=(0.9, 0.8, 0.95))
    trace(b, opt_b, 7)
    c = OneCycle(opt_b, [1e-2], 20, moms=(0.9, 0.8, 0.95))
    c.load_state_dict(b.state_dict())
    np.testing.assert_allclose(trace(c, opt_b, 13), full[7:])


def test_one_cycle_rejects_moms_that_are_not_three_values():
    with pytest.raises(ValueError, match="three values"):
        OneCycle(adamw(), [1e-2], 10, moms=(0.95, 0.85))


class Lrs(Callback):
    def __init__(self):
        self.lrs = []

    def before_batch(self, learn):
        self.lrs.append(learn.opt.param_groups[0]["lr"])


@pytest.mark.parametrize("rows", [4, 8, 12])  # batch size 4: one, two and three steps
def test_one_epoch_one_cycle_fit_with_few_batches_trains(rows):
    x = torch.randn(rows, 3)
    lrs = Lrs()
    learn = Learner(nn.Linear(3, 1), TensorLoader(x, x.sum(1, keepdim=True), batch_size=4, shuffle=True), None,
                    nn.MSELoss(), device="cpu", callbacks=[lrs])
    learn.fit_one_cycle(1, 1e-2, pct_start=0.25)
    assert len(lrs.lrs) == rows // 4 and max(lrs.lrs) == pytest.approx(1e-2)
