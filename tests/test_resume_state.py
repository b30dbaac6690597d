"""Early stopping and the best checkpoint carry on across a kill and a resume as if uninterrupted."""
import pytest
import torch
from torch import nn

from harness.data.loaders import TensorLoader
from harness.scoring.metrics import rmse
from harness.train import Callback, Learner, seed_everything
from harness.train.callbacks import Checkpoint, EarlyStopping, Recorder


def make_learner(folder, *callbacks, seed=0):
    data = torch.Generator().manual_seed(0)
    x = torch.randn(300, 6, generator=data)
    y = x @ torch.randn(6, generator=data) + 0.1 * torch.randn(300, generator=data)
    seed_everything(seed)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 1), nn.Flatten(0))
    return Learner(model, TensorLoader(x[:240], y[:240], batch_size=32, shuffle=True), TensorLoader(x[240:], y[240:]),
                   nn.MSELoss(), [rmse], device="cpu",
                   callbacks=[Recorder(echo=False), EarlyStopping(patience=2), Checkpoint(folder), *callbacks])


class Kill(Callback):
    order = 99  # after the checkpoint of the epoch is written

    def __init__(self, epoch):
        self.epoch = epoch

    def after_epoch(self, learn):
        if learn.epoch == self.epoch:
            raise KeyboardInterrupt


def fit(learn):
    return learn.fit(30, 0.3)  # far too high a rate: the validation score soon stops improving


@pytest.mark.parametrize("after_best", [1, 2], ids=["waiting", "about-to-stop"])
def test_killed_after_epoch_k_then_resumed_stops_at_the_same_epoch_with_the_same_best(tmp_path, after_best):
    full = make_learner(tmp_path / "full")
    history = fit(full)
    scores = [row["rmse"] for row in history]
    best = scores.index(min(scores))
    assert len(history) == best + 3 < 30  # stopped two epochs after its best
    kill_at = best + after_best  # 0-based, as learn.epoch: early stopping is waiting, or has just decided

    with pytest.raises(KeyboardInterrupt):
        fit(make_learner(tmp_path / "killed", Kill(kill_at)))
    state = torch.load(tmp_path / "killed" / "last.pt", weights_only=True)
    assert state["callbacks"]["EarlyStopping"]["wait"] == after_best
    assert state["callbacks"]["Checkpoint"]["best"] == pytest.approx(min(scores))

    resumed = make_learner(tmp_path / "killed", seed=123)  # a fresh process, same run folder
    resumed.resume_from(tmp_path / "killed" / "last.pt")
    rest = fit(resumed)
    assert [row["epoch"] for row in resumed.history] == [row["epoch"] for row in history]
    assert [row["epoch"] for row in rest] == [row["epoch"] for row in history[kill_at + 1:]]
    full_best = torch.load(tmp_path / "full" / "best.pt", weights_only=True)
    resumed_best = torch.load(tmp_path / "killed" / "best.pt", weights_only=True)
    assert all(torch.equal(full_best[k], resumed_best[k]) for k in full_best)
    assert resumed.get_callback(Checkpoint).best == pytest.approx(min(scores))


def test_early_stopping_ends_one_fit_only(tmp_path):
    learn = make_learner(tmp_path)
    first = fit(learn)
    assert len(first) < 30
    # the next fit (a later stage) starts; it stops again only after two more epochs without improvement
    second = learn.fit(2, 1e-4)
    assert len(second) == 2
