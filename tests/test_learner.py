"""The shared trainer: schedules, lr_find, freezing, differential rates, exact resume."""
import io
import math
import random
import sys

import numpy as np
import pytest
import torch
from torch import nn

from harness.data.loaders import TensorLoader
from harness.errors import HarnessError
from harness.scoring.metrics import rmse
from harness.train import Callback, CancelFit, Learner, seed_everything
from harness.train.callbacks import Checkpoint, Recorder


class LrTrace(Callback):
    def __init__(self):
        self.lrs, self.moms = [], []

    def before_batch(self, learn):
        group = learn.opt.param_groups[0]
        self.lrs.append(group["lr"])
        self.moms.append(group["betas"][0])


def make_learner(n=512, bs=32, groups=False, callbacks=(), seed=0, dropout=0.0, betas=(0.9, 0.99), echo=False):
    data = torch.Generator().manual_seed(0)  # the same data whatever the seed
    x = torch.randn(n, 8, generator=data)
    y = x @ torch.randn(8, generator=data) + 0.1 * torch.randn(n, generator=data)
    seed_everything(seed)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(dropout), nn.Linear(16, 1), nn.Flatten(0))
    layer_groups = [list(model[0].parameters()), list(model[3].parameters())] if groups else None
    train = TensorLoader(x[:400], y[:400], batch_size=bs, shuffle=True, seed=0)
    valid = TensorLoader(x[400:], y[400:], batch_size=64)
    return Learner(model, train, valid, nn.MSELoss(), [rmse], layer_groups=layer_groups, device="cpu",
                   betas=betas, callbacks=[Recorder(echo=echo), *callbacks])


def test_tensor_loader_covers_every_row_once_and_reshuffles():
    x = torch.arange(10)
    dl = TensorLoader(x, x * 2, batch_size=4, shuffle=True, seed=1)
    first = torch.cat([xb for xb, _ in dl])
    second = torch.cat([xb for xb, _ in dl])
    assert sorted(first.tolist()) == list(range(10))
    assert not torch.equal(first, second)
    for xb, yb in dl:
        assert torch.equal(yb, xb * 2)
    assert len(dl) == 3 and len(TensorLoader(x, batch_size=3, drop_last=True)) == 3


def test_one_cycle_trace_warms_up_then_anneals():
    trace = LrTrace()
    learn = make_learner(callbacks=[trace])
    learn.fit_one_cycle(4, 1e-2, pct_start=0.25)
    lrs = np.array(trace.lrs)
    peak = int(lrs.argmax())
    assert len(lrs) == 4 * len(learn.train_dl)
    assert abs(peak / len(lrs) - 0.25) < 0.05
    assert lrs.max() == pytest.approx(1e-2, rel=1e-3)
    assert lrs[0] == pytest.approx(1e-2 / 25, rel=1e-3)
    assert lrs[-1] < 1e-5
    assert np.all(np.diff(lrs[: peak + 1]) >= 0) and np.all(np.diff(lrs[peak:]) <= 0)


def test_one_cycle_beta1_goes_from_moms_start_to_middle_at_peak_to_end():
    trace = LrTrace()
    learn = make_learner(callbacks=[trace], betas=(0.7, 0.99))
    learn.fit_one_cycle(4, 1e-2, pct_start=0.25, moms=(0.9, 0.8, 0.95))  # start != end on purpose
    lrs, moms = np.array(trace.lrs), np.array(trace.moms)
    peak = int(lrs.argmax())
    assert moms[0] == pytest.approx(0.9) and moms[peak] == pytest.approx(0.8) and moms[-1] == pytest.approx(0.95)
    # opposite the rate: falling while it warms up, rising while it anneals
    assert np.all(np.diff(moms[: peak + 1]) < 0) and np.all(np.diff(moms[peak:]) > 0)


def test_configured_betas_are_back_after_one_cycle_and_used_by_later_fits():
    trace = LrTrace()
    learn = make_learner(callbacks=[trace], betas=(0.7, 0.99))
    learn.fit_one_cycle(1, 1e-2)  # default moms: 0.95 -> 0.85 -> 0.95
    assert min(trace.moms) == pytest.approx(0.85) and max(trace.moms) == pytest.approx(0.95)
    assert [g["betas"] for g in learn.opt.param_groups] == [(0.7, 0.99)]
    for schedule in ("constant", "sgdr"):
        trace.moms.clear()
        learn.fit(1, 1e-3, schedule=schedule)
        assert trace.moms and set(trace.moms) == {0.7}, schedule


class Raise(Callback):
    """Raise ``exc`` after ``n`` training batches (a crash or a stop in the middle of a fit)."""

    def __init__(self, exc, n=3):
        self.exc, self.n, self.seen = exc, n, 0

    def after_batch(self, learn):
        self.seen += 1
        if self.seen == self.n:
            raise self.exc


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), CancelFit()], ids=["crash", "cancel"])
def test_configured_betas_are_back_after_a_one_cycle_fit_stopped_midway(exc):
    learn = make_learner(callbacks=[Raise(exc)], betas=(0.7, 0.99))
    try:
        learn.fit_one_cycle(2, 1e-2)
    except KeyboardInterrupt:
        pass
    assert learn.get_callback(Raise).seen == 3  # it did stop mid-cycle, with beta1 moved
    assert [g["betas"] for g in learn.opt.param_groups] == [(0.7, 0.99)]


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


def test_lr_find_restores_weights_optimizer_loader_rng_and_scaler(tmp_path):
    learn = make_learner(groups=True)
    learn.fit(1, [1e-3, 2e-3])
    learn.opt.param_groups[0]["betas"] = (0.8, 0.98)  # distinct per group, to see each put back
    # A real GradScaler on the CPU tensors, growing its scale every step, so the sweep changes it.
    learn.scaler = torch.amp.GradScaler("cpu", init_scale=8.0, growth_interval=1)
    scaler_before = learn.scaler.state_dict()
    before = {k: v.clone() for k, v in learn.model.state_dict().items()}
    opt_before = [{k: v.clone() for k, v in s.items() if torch.is_tensor(v)} for s in learn.opt.state.values()]
    groups_before = [(g["lr"], g["betas"]) for g in learn.opt.param_groups]
    loader_before = learn.train_dl.generator.get_state().clone()
    rng_before = (torch.get_rng_state().clone(), np.random.get_state()[1].copy(), random.getstate())
    result = learn.lr_find(num_it=30, plot_path=tmp_path / "lr.png", title="toy linear")
    assert learn.scaler.get_scale() == 8.0 and learn.scaler.state_dict() == scaler_before
    for k, v in learn.model.state_dict().items():
        assert torch.equal(v, before[k]), k
    for state, saved in zip(learn.opt.state.values(), opt_before):
        assert set(saved) >= {"exp_avg", "exp_avg_sq"}
        assert all(torch.equal(state[k], v) for k, v in saved.items())
    assert [(g["lr"], g["betas"]) for g in learn.opt.param_groups] == groups_before
    assert torch.equal(learn.train_dl.generator.get_state(), loader_before)
    assert torch.equal(torch.get_rng_state(), rng_before[0])
    assert np.array_equal(np.random.get_state()[1], rng_before[1]) and random.getstate() == rng_before[2]
    assert len(result.lrs) >= 5 and result.lrs[0] == pytest.approx(1e-7)
    assert 1e-7 < result.suggestion < 10
    assert (tmp_path / "lr.png").stat().st_size > 1000


def test_lr_find_sweep_changed_what_it_restores():
    """The restore test above would pass for a sweep that did nothing: check the sweep does move them."""
    learn = make_learner()
    learn.scaler = torch.amp.GradScaler("cpu", init_scale=8.0, growth_interval=1)
    seen = {}

    class Spy(Callback):
        during_lr_find = True

        def after_step(self, learn):
            seen["weight"] = learn.model[0].weight.detach().clone()
            seen["scale"] = learn.scaler.get_scale()
            seen["generator"] = learn.train_dl.generator.get_state().clone()

    before = learn.model[0].weight.detach().clone()
    generator = learn.train_dl.generator.get_state().clone()
    learn.add_callbacks([Spy()])
    learn.lr_find(num_it=20)
    assert not torch.equal(seen["weight"], before) and seen["scale"] > 8.0
    assert not torch.equal(seen["generator"], generator)


def test_lr_find_plot_title_names_the_model_and_the_suggestion(tmp_path, monkeypatch):
    titles = []

    def save_figure(fig, path):
        titles.append(fig.axes[0].get_title())
        plt.close(fig)

    import matplotlib.pyplot as plt

    monkeypatch.setattr("harness.train.plots.save_figure", save_figure)
    result = make_learner().lr_find(num_it=30, plot_path=tmp_path / "lr.png", title="movielens dot")
    assert titles == [f"movielens dot: suggested lr {result.suggestion:.2e}"]


@pytest.mark.parametrize("sweep", [dict(start_lr=0.0), dict(start_lr=math.nan), dict(end_lr=math.inf),
                                   dict(start_lr=1.0, end_lr=1e-5), dict(num_it=4)])
def test_lr_find_refuses_a_sweep_that_cannot_suggest_before_touching_anything(tmp_path, sweep):
    learn = make_learner()
    before = {k: v.clone() for k, v in learn.model.state_dict().items()}
    with pytest.raises(HarnessError, match="--start-lr|--end-lr|--num-it"):
        learn.lr_find(**{"num_it": 30, **sweep}, plot_path=tmp_path / "lr.png")
    assert not (tmp_path / "lr.png").exists()
    assert all(torch.equal(v, before[k]) for k, v in learn.model.state_dict().items())


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
    from harness.train.rates import lr_per_group

    assert lr_per_group(slice(1e-4, 1e-2), 3) == pytest.approx([1e-4, 1e-3, 1e-2])
    assert lr_per_group(0.1, 2) == [0.1, 0.1]
    assert lr_per_group(slice(None, 1e-2), 3) == pytest.approx([1e-3, 1e-3, 1e-2])  # the head at the top rate
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
    assert [row["epoch"] for row in history] == [2, 3]  # the table's numbering, from 1
    for (name, a), b in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(a, b), name


def test_early_stopping_stops_patience_epochs_after_the_best_which_best_pt_holds(tmp_path):
    from harness.train.callbacks import EarlyStopping

    learn = make_learner(callbacks=[EarlyStopping(patience=2), Checkpoint(tmp_path)])
    history = learn.fit(30, 0.3)  # a rate far too high: validation stops improving quickly
    scores = [row["rmse"] for row in history]
    best = int(np.argmin(scores))
    assert len(history) < 30
    assert len(history) - 1 - best == 2  # two epochs without improvement after the best, then stop
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    assert state["epoch"] + 1 == history[-1]["epoch"]  # checkpoints count from 0, the table from 1
    learn.load_model(tmp_path / "best.pt")
    assert learn.validate()[1]["rmse"] == pytest.approx(scores[best], rel=1e-6)


# ----------------------------------------------------------------- training loaders
def test_training_loader_drops_a_last_batch_of_one_and_len_agrees():
    x = torch.arange(9)
    train = TensorLoader(x, x, batch_size=4, shuffle=True)
    sizes = [len(xb) for xb, _ in train]
    assert sizes == [4, 4] and len(train) == len(sizes)
    # a last batch of two stays; so do batches of one when the batch size is one
    assert [len(xb) for xb, _ in TensorLoader(torch.arange(10), batch_size=4, shuffle=True)] == [4, 4, 2]
    assert len(TensorLoader(torch.arange(3), batch_size=1, shuffle=True)) == 3
    # a validation loader (no shuffle) keeps every row
    valid = TensorLoader(x, x, batch_size=4)
    assert [len(xb) for xb, _ in valid] == [4, 4, 1] and len(valid) == 3


def test_training_batch_size_larger_than_the_rows_names_the_key_and_the_count():
    from harness.data.loaders import check_batch_size

    x = torch.arange(5)
    with pytest.raises(HarnessError) as err:
        TensorLoader(x, x, batch_size=8, shuffle=True)
    assert str(err.value) == "train.batch_size = 8 is larger than the 5 training rows; lower it"
    assert len(TensorLoader(x, x, batch_size=5, shuffle=True)) == 1
    assert len(TensorLoader(x, x, batch_size=8)) == 1  # validation and prediction may be smaller than a batch
    with pytest.raises(HarnessError, match=r"^lm.batch_size = 3 is larger than the 2 training rows"):
        check_batch_size(2, 3, key="lm.batch_size")


# ----------------------------------------------------------------- what the user sees
class FakeTerminal(io.StringIO):
    def isatty(self):
        return True


def on_screen(stream: str) -> list[str]:
    """The lines a terminal shows for ``stream``: a carriage return goes back to column 0 and overwrites."""
    lines = []
    for raw in stream.split("\n"):
        screen = []
        for part in raw.split("\r"):
            screen[: len(part)] = part
        lines.append("".join(screen).rstrip())
    return lines


def test_table_rows_stay_whole_lines_under_a_live_bar_on_a_terminal(monkeypatch):
    from harness.train.callbacks import ProgressBar

    terminal = FakeTerminal()  # stdout and stderr on one screen, as in a terminal
    monkeypatch.setattr(sys, "stdout", terminal)
    monkeypatch.setattr(sys, "stderr", terminal)
    learn = make_learner(callbacks=[ProgressBar()], echo=True)
    learn.fit(2, 1e-3)
    assert "epoch 1/2" in terminal.getvalue()  # the bar was drawn (stderr is a terminal)
    shown = [line for line in on_screen(terminal.getvalue()) if line]
    header = "  ".join(f"{c:>12}" for c in learn.history[0])
    assert shown[0] == header
    assert len(shown) == 3  # the header and one row per epoch, and no bar left behind
    for line, row in zip(shown[1:], learn.history):
        assert line.split()[:2] == [str(row["stage"]), str(row["epoch"])]
        assert "epoch" not in line and "%" not in line


def test_bar_writes_nothing_when_stderr_is_not_a_terminal(monkeypatch, capsys):
    from harness.train.callbacks import ProgressBar

    log = io.StringIO()
    monkeypatch.setattr(sys, "stderr", log)
    learn = make_learner(callbacks=[ProgressBar()], echo=True)
    learn.fit(2, 1e-3)
    assert log.getvalue() == ""
    rows = capsys.readouterr().out.splitlines()
    assert "\r" not in "".join(rows) and [r.split()[1] for r in rows[1:]] == ["1", "2"]  # epochs from 1


def test_loss_plot_epochs_are_the_table_epochs():
    from harness.train.plots import loss_figure

    recorder = Recorder(echo=False)
    learn = make_learner(callbacks=[])
    learn.remove_callback(learn.get_callback(Recorder))
    learn.add_callbacks([recorder])
    learn.fit(3, 1e-3)
    fig = loss_figure(recorder.history, recorder.batch_losses, epoch_batches=recorder.epoch_batches)
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines["validation"].get_xdata()) == [row["epoch"] for row in recorder.history] == [1, 2, 3]
    assert list(lines["validation"].get_ydata()) == [row["valid_loss"] for row in recorder.history]
    batch_x = lines["train (batch)"].get_xdata()
    n = len(learn.train_dl)
    assert len(batch_x) == 3 * n and batch_x[n - 1] == pytest.approx(1) and batch_x[-1] == pytest.approx(3)
    fig.canvas.draw()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "3"]

    learn.fit(2, 1e-3)  # a second stage: its epochs follow on the axis, labelled as in its table rows
    fig = loss_figure(recorder.history, recorder.batch_losses, epoch_batches=recorder.epoch_batches)
    ax = fig.axes[0]
    fig.canvas.draw()
    assert [t.get_text() for t in ax.get_xticklabels()] == [str(row["epoch"]) for row in recorder.history]
    assert [row["epoch"] for row in recorder.history] == [1, 2, 3, 1, 2]
    assert [line.get_xdata()[0] for line in ax.get_lines() if line.get_label().startswith("_")] == [3.5]
    import matplotlib.pyplot as plt

    plt.close("all")
