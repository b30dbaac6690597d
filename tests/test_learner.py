"""The shared trainer: schedules, lr_find, freezing, differential rates, exact resume."""
import math

import numpy as np
import pytest
import torch
from torch import nn

from harness.data.loaders import TensorLoader
from harness.metrics import rmse
from harness.train import Callback, Learner, seed_everything
from harness.train.callbacks import Checkpoint, Recorder


class LrTrace(Callback):
    def __init__(self):
        self.lrs, self.moms = [], []

    def before_batch(self, learn):
        group = learn.opt.param_groups[0]
        self.lrs.append(group["lr"])
        self.moms.append(group["betas"][0])


def make_learner(n=512, bs=32, groups=False, callbacks=(), seed=0, dropout=0.0):
    data = torch.Generator().manual_seed(0)  # the same data whatever the seed
    x = torch.randn(n, 8, generator=data)
    y = x @ torch.randn(8, generator=data) + 0.1 * torch.randn(n, generator=data)
    seed_everything(seed)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, 1), nn.Flatten(0))
    layer_groups = [list(model[0].parameters()), list(model[3].parameters())] if groups else None
    train = TensorLoader(x[:400], y[:400], batch_size=bs, shuffle=True, seed=0)
    valid = TensorLoader(x[400:], y[400:], batch_size=64)
    return Learner(model, train, valid, nn.MSELoss(), [rmse], layer_groups=layer_groups, device="cpu",
                   callbacks=[Recorder(echo=False), *callbacks])


def test_tensor_loader_covers_every_row_once_and_reshuffles():
    x = torch.arange(10)
    dl = TensorLoader(x, x * 2, batch_size=3, shuffle=True, seed=1)
    first = torch.cat([xb for xb, _ in dl])
    second = torch.cat([xb for xb, _ in dl])
    assert sorted(first.tolist()) == list(range(10))
    assert not torch.equal(first, second)
    for xb, yb in dl:
        assert torch.equal(yb, xb * 2)
    assert len(dl) == 4 and len(TensorLoader(x, batch_size=3, drop_last=True)) == 3


def test_one_cycle_trace_warms_up_then_anneals_with_momentum_opposite():
    trace = LrTrace()
    learn = make_learner(callbacks=[trace])
    learn.fit_one_cycle(4, 1e-2, pct_start=0.25)
    lrs, moms = np.array(trace.lrs), np.array(trace.moms)
    peak = int(lrs.argmax())
    assert len(lrs) == 4 * len(learn.train_dl)
    assert abs(peak / len(lrs) - 0.25) < 0.05
    assert lrs.max() == pytest.approx(1e-2, rel=1e-3)
    assert lrs[0] == pytest.approx(1e-2 / 25, rel=1e-3)
    assert lrs[-1] < 1e-5
    assert np.all(np.diff(lrs[: peak + 1]) >= 0) and np.all(np.diff(lrs[peak:]) <= 0)
    # momentum (Adam's beta1) moves opposite to the rate
    assert moms[peak] == pytest.approx(0.85) and moms[0] == pytest.approx(0.95)


def test_sgdr_restarts_with_growing_cycles():
    trace = LrTrace()
    learn = make_learner(callbacks=[trace])
    n = len(learn.train_dl)
    history = learn.fit_sgdr(3, 1e-2, cycle_len=1, cycle_mult=2)
    assert len(history) == 1 + 2 + 4
    lrs = np.array(trace.lrs)
    restarts = [i for i in range(1, len(lrs)) if lrs[i] > lrs[i - 1]]
    assert restarts == [n, 3 * n]
    assert lrs[0] == pytest.approx(1e-2) and lrs[n] == pytest.approx(1e-2)
    assert lrs[n - 1] < 1e-2 * 0.05


def test_lr_find_leaves_model_and_optimizer_unchanged(tmp_path):
    learn = make_learner()
    learn.fit(1, 1e-3)
    before = {k: v.clone() for k, v in learn.model.state_dict().items()}
    opt_before = [s["exp_avg"].clone() for s in learn.opt.state.values()]
    result = learn.lr_find(num_it=30, plot_path=tmp_path / "lr.png")
    for k, v in learn.model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(torch.equal(s["exp_avg"], b) for s, b in zip(learn.opt.state.values(), opt_before))
    assert len(result.lrs) >= 5 and result.lrs[0] == pytest.approx(1e-7)
    assert 1e-7 < result.suggestion < 10
    assert (tmp_path / "lr.png").stat().st_size > 1000


def test_lr_find_stops_when_loss_diverges():
    learn = make_learner()
    result = learn.lr_find(start_lr=1e-4, end_lr=1e4, num_it=200)
    assert len(result.lrs) < 200
    assert max(result.losses) > 4 * min(result.losses) or math.isnan(max(result.losses))


def test_frozen_group_does_not_move():
    learn = make_learner(groups=True)
    learn.fit(1, 1e-2)
    learn.freeze()
    frozen = [p.clone() for p in learn.layer_groups[0]]
    head = [p.clone() for p in learn.layer_groups[1]]
    learn.fit(1, 1e-2)
    assert all(torch.equal(a, b) for a, b in zip(frozen, learn.layer_groups[0]))
    assert not all(torch.equal(a, b) for a, b in zip(head, learn.layer_groups[1]))
    learn.unfreeze()
    learn.fit(1, 1e-2)
    assert not all(torch.equal(a, b) for a, b in zip(frozen, learn.layer_groups[0]))


def test_each_layer_group_trains_at_its_own_rate():
    learn = make_learner(groups=True)
    learn.opt.param_groups[0]["weight_decay"] = learn.opt.param_groups[1]["weight_decay"] = 0.0
    before = [[p.clone() for p in g] for g in learn.layer_groups]
    xb, yb = next(iter(learn.train_dl))
    learn.opt.param_groups[0]["lr"], learn.opt.param_groups[1]["lr"] = 1e-4, 1e-2
    learn.train_step(xb, yb)
    # Adam's first step moves every parameter by about lr (the sign of its gradient).
    steps = [torch.cat([(p - b).abs().flatten() for p, b in zip(g, bg)]).max().item()
             for g, bg in zip(learn.layer_groups, before)]
    assert steps[0] == pytest.approx(1e-4, rel=0.05)
    assert steps[1] == pytest.approx(1e-2, rel=0.05)


def test_slice_lr_spreads_geometrically():
    from harness.train.learner import lr_per_group

    assert lr_per_group(slice(1e-4, 1e-2), 3) == pytest.approx([1e-4, 1e-3, 1e-2])
    assert lr_per_group(0.1, 2) == [0.1, 0.1]
    with pytest.raises(ValueError):
        lr_per_group([0.1], 2)


class Kill(Callback):
    order = 99  # after the checkpoint is written

    def __init__(self, after_epoch):
        self.after = after_epoch

    def after_epoch(self, learn):
        if learn.epoch == self.after:
            raise KeyboardInterrupt


def test_killed_and_resumed_run_matches_uninterrupted(tmp_path):
    def run(callbacks):
        learn = make_learner(dropout=0.2, callbacks=[Checkpoint(tmp_path / "ckpt"), *callbacks])
        learn.fit_one_cycle(3, 1e-2)
        return learn

    full = run([])
    with pytest.raises(KeyboardInterrupt):
        run([Kill(after_epoch=0)])
    # A fresh process would start from scratch: different RNG state, then resume.
    torch.manual_seed(1234)
    resumed = make_learner(dropout=0.2, seed=99, callbacks=[Checkpoint(tmp_path / "ckpt2")])
    resumed.model.load_state_dict(full.model.state_dict())  # anything: resume must overwrite it
    resumed.resume_from(tmp_path / "ckpt" / "last.pt")
    history = resumed.fit_one_cycle(3, 1e-2)
    assert [row["epoch"] for row in history] == [1, 2]
    for (name, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name


def test_early_stopping_and_checkpoint_best(tmp_path):
    from harness.train.callbacks import EarlyStopping

    learn = make_learner(callbacks=[EarlyStopping(patience=1), Checkpoint(tmp_path)])
    history = learn.fit(30, 1.0)  # a rate far too high: validation stops improving quickly
    assert len(history) < 30
    assert (tmp_path / "best.pt").exists() and (tmp_path / "last.pt").exists()
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    assert state["epoch"] == history[-1]["epoch"]
