"""Data-parallel training on the CPU (gloo): two processes with the same global batch train the weights of
one, validation gathers to one process's score, rank 0 alone writes, a dead process ends the job in one
line and --resume continues it; fold models spread over processes give the sequential folds' OOF."""
import os
import re
import signal
import tempfile

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from harness.cli.train import parse_devices
from harness.data.loaders import TensorLoader, n_batches, shard_slices
from harness.errors import HarnessError
from harness.runs import runner
from harness.runs.folder import Run
from harness.scoring.metrics import rmse
from harness.train import Callback, Learner, distributed
from harness.train.callbacks import Recorder
from harness_plugins.movielens import MovieLens
from harness_plugins.rossmann import Rossmann

EPOCHS = 3


@pytest.fixture(scope="module")
def ml_data(tmp_path_factory):
    path = tmp_path_factory.mktemp("ml")
    MovieLens().write_sample(path, n_users=120, n_items=80, n_ratings=4000)
    return path


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    """Where the processes other than rank 0 keep their scratch run folders (forked: they inherit it)."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def only_run(workspace, name="movielens") -> Run:
    (run,) = Run.all(workspace, name)
    return run


def files_of(workspace, run) -> set[str]:
    """The workspace's files, the run id written as RUN (the data and caches left out)."""
    return {str(p.relative_to(workspace)).replace(run.id, "RUN") for p in workspace.rglob("*")
            if p.is_file() and p.relative_to(workspace).parts[0] not in ("data", "cache")}


def weights(run) -> dict:
    return torch.load(run.path("model.pt"), weights_only=True)


def assert_same_weights(a: dict, b: dict, atol):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.allclose(a[key].float(), b[key].float(), atol=atol, rtol=0), key


# ---------------------------------------------------------------------------- the split, in one process
def test_each_process_takes_a_disjoint_part_of_each_global_batch_and_evaluation_blocks_keep_the_order():
    for n_rows in (1000, 1001, 1003):
        one = shard_slices(n_rows, 128)
        parts = [shard_slices(n_rows, 64, rank, 2) for rank in (0, 1)]
        assert len(parts[0]) == len(parts[1]) == len(one) == n_batches(n_rows, 128)
        for whole, (a, b) in zip(one, zip(*parts)):  # same global batches, split in two at the middle
            assert (a.start, a.stop, b.start, b.stop) == (whole.start, a.stop, a.stop, whole.stop)
            assert abs((a.stop - a.start) - (b.stop - b.start)) <= 1
        blocks = [shard_slices(n_rows, 64, rank, 3, whole_batches=False) for rank in range(3)]
        assert [i for block in blocks for s in block for i in range(s.start, s.stop)] == list(range(n_rows))
    # a last batch that cannot give each process two rows (BatchNorm) is dropped, in every process alike
    assert [len(shard_slices(259, 64, rank, 2, drop_last_single=True)) for rank in (0, 1)] == [2, 2]
    assert [len(shard_slices(260, 64, rank, 2, drop_last_single=True)) for rank in (0, 1)] == [3, 3]


def test_a_split_loader_walks_the_same_shuffled_order_in_every_process():
    x = torch.arange(1001.0)
    loaders = [TensorLoader(x, x, batch_size=50, shuffle=True, seed=3) for _ in range(3)]
    one = TensorLoader(x, x, batch_size=100, shuffle=True, seed=3)
    loaders[1].split_over(0, 2)
    loaders[2].split_over(1, 2)
    for (whole, _), (a, _), (b, _) in zip(one, loaders[1], loaders[2]):
        assert torch.equal(whole, torch.cat([a, b]))
    with pytest.raises(HarnessError, match=r"train.batch_size = 600 per process x 2 processes is larger than the 1001"):
        TensorLoader(x, x, batch_size=600, shuffle=True).split_over(0, 2)


def test_image_and_text_loaders_split_alike():
    from torch.utils.data import RandomSampler

    from harness.data.images import RankBatches
    from harness.text.batches import LMLoader, SortedBucketLoader

    one = RankBatches(RandomSampler(range(203), generator=torch.Generator().manual_seed(1)), 32, True)
    parts = [RankBatches(RandomSampler(range(203), generator=torch.Generator().manual_seed(1)), 16, True)
             for _ in range(2)]
    for rank, batches in enumerate(parts):
        batches.rank, batches.world = rank, 2
    assert len(one) == len(parts[0]) == len(parts[1])
    assert [w for w in one] == [a + b for a, b in zip(*parts)]

    rng = np.random.default_rng(0)
    docs = [rng.integers(2, 50, rng.integers(3, 40)) for _ in range(203)]
    lm_one, lm_parts = LMLoader(docs, bs=8, bptt=10, shuffle=True, seed=1), []
    for rank in (0, 1):  # each process reads its own streams of one layout
        lm_parts.append(LMLoader(docs, bs=4, bptt=10, shuffle=True, seed=1))
        lm_parts[-1].split_over(rank, 2)
    assert len(lm_one) == len(lm_parts[0]) == len(lm_parts[1])
    for (x, y), (a, b), (c, d) in zip(lm_one, *lm_parts):
        assert torch.equal(x, torch.cat([a, c])) and torch.equal(y, torch.cat([b, d]))

    labels = rng.integers(0, 2, len(docs))
    bucket_one, bucket_parts = SortedBucketLoader(docs, labels, bs=16, shuffle=True, seed=2), []
    for rank in (0, 1):
        bucket_parts.append(SortedBucketLoader(docs, labels, bs=8, shuffle=True, seed=2))
        bucket_parts[-1].split_over(rank, 2)
    assert len(bucket_one) == len(bucket_parts[0]) == len(bucket_parts[1])
    for whole, a, b in zip(bucket_one.batches(), *(part.batches() for part in bucket_parts)):
        assert np.array_equal(whole, np.concatenate([a, b]))
    blocks = []
    for rank in range(3):
        evaluation = SortedBucketLoader(docs, labels, bs=16)
        evaluation.split_over(rank, 3, whole_batches=False)
        assert len(evaluation) == len(evaluation.batches())
        blocks += evaluation.batches()
    assert np.array_equal(np.concatenate(blocks), SortedBucketLoader(docs, labels, bs=16).order)


def test_devices_are_read_as_gpus_cpus_or_a_count():
    assert parse_devices("0,1") == ["cuda:0", "cuda:1"]
    assert parse_devices("cpu,cpu") == ["cpu", "cpu"]
    assert parse_devices("3") == ["cpu", "cpu", "cpu"]
    with pytest.raises(HarnessError, match="'tpu' is not a device"):
        parse_devices("tpu,0")


@pytest.mark.parametrize("command", [["train", "movielens", "--folds", "2"], ["tune", "movielens", "--trials", "1"]])
def test_an_empty_devices_option_is_refused_not_taken_as_none(cli_run, workspace, command):
    out = cli_run(*command, "--devices", "", expect=2).output
    assert out.startswith("error: --devices '': give devices such as 0,1") and len(out.strip().splitlines()) == 1
    assert not (workspace / "runs").exists()


# ---------------------------------------------------------------------------- two processes
def validate_in_two_processes():
    """Rank r's view of one model validated on 1001 rows (uneven blocks), and lr_find's refusal."""
    with distributed.joined("cpu"):
        learn = tiny_learner()
        learn.validate()
        try:
            learn.lr_find()
            refusal = None
        except HarnessError as exc:
            refusal = str(exc)
        return learn.valid_loss, learn.metrics, learn.valid_preds, refusal


def tiny_learner():
    data = torch.Generator().manual_seed(0)
    x, y = torch.randn(1001, 5, generator=data), torch.randn(1001, generator=data)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 1), nn.Flatten(0))
    return Learner(model, TensorLoader(x, y, batch_size=64, shuffle=True), TensorLoader(x, y, batch_size=64),
                   nn.MSELoss(), [rmse], device="cpu", callbacks=[Recorder(echo=False)])


def test_validation_gathers_every_process_predictions_into_one_process_score():
    one = tiny_learner()
    one.validate()
    results = distributed.launch(2, validate_in_two_processes)
    for loss, metrics, preds, refusal in results.values():
        assert loss == pytest.approx(one.valid_loss, rel=1e-6)
        assert metrics["rmse"] == pytest.approx(one.metrics["rmse"], rel=1e-6)
        assert torch.allclose(preds, one.valid_preds)
        assert refusal == "lr_find runs in one process only; run it without torchrun or --nproc"


def test_two_processes_train_one_process_weights_and_rank_0_alone_writes(cli_run, workspace, ml_data, scratch):
    common = ("train", "movielens", "--data-dir", ml_data, "--epochs", EPOCHS)
    out = cli_run(*common, "--set", "train.batch_size=256", "--nproc", 2).output
    assert "2 processes" in out
    two = only_run(workspace)
    files_two = files_of(workspace, two)
    assert list(scratch.iterdir()) == []  # rank 1's scratch run folder is gone
    moved = workspace.parent / "two"
    workspace.rename(moved)
    cli_run(*common, "--set", "train.batch_size=512")  # one process, the same global batch
    one = only_run(workspace)
    assert files_of(workspace, one) == files_two  # the same files, written once: nothing from rank 1
    two = Run(moved / "runs" / "movielens" / two.id)
    assert_same_weights(weights(one), weights(two), atol=1e-6)
    assert np.allclose(one.array("valid_preds.npy"), two.array("valid_preds.npy"), atol=1e-6)
    assert two.summary()["primary_score"] == pytest.approx(one.summary()["primary_score"], rel=1e-6)
    history_one, history_two = pd.read_csv(one.path("history.csv")), pd.read_csv(two.path("history.csv"))
    assert np.allclose(history_one["train_loss"], history_two["train_loss"], rtol=1e-5)
    assert two.summary()["processes"] == 2


def test_rossmann_in_two_processes_trains_one_process_weights(cli_run, workspace, tmp_path, scratch):
    data = tmp_path / "rossmann"
    Rossmann().write_sample(data)
    # no dropout: its masks are random per process; 2295 training rows, so the last batch splits unevenly
    common = ("train", "rossmann", "--data-dir", data, "--epochs", 1, "--set", "model.dropout_scale=0.0",
              "--set", "model.emb_drop=0.0")
    cli_run(*common, "--set", "train.batch_size=128", "--nproc", 2)
    two = only_run(workspace, "rossmann")
    cli_run(*common, "--set", "train.batch_size=256")
    one = [run for run in Run.all(workspace, "rossmann") if run.id != two.id][0]
    assert_same_weights(weights(one), weights(two), atol=1e-5)
    assert two.summary()["primary_score"] == pytest.approx(one.summary()["primary_score"], rel=1e-5)


class KillRank1(Callback):
    order = 99  # after the epoch's checkpoint

    def after_epoch(self, learn):
        if learn.epoch == 1 and distributed.rank() == 1:
            os.kill(os.getpid(), signal.SIGKILL)


def train_and_kill_rank_1(config, data, workspace):
    with distributed.joined("cpu"):
        runner.train(MovieLens(), config, data, workspace, device="cpu", callbacks=[KillRank1()], echo=False)


def test_a_killed_process_ends_the_job_in_one_line_and_resume_continues_it(cli_run, workspace, ml_data, scratch):
    from harness.cli.common import config_for

    config = config_for(MovieLens(), None, ["train.batch_size=256"], epochs=EPOCHS)
    # Which line wins is a race on a loaded machine: the dead process's, or the survivor's lost contact.
    # Either way it is one line that says to resume.
    with pytest.raises(HarnessError, match=r"^process [01] (of 2 \(pid \d+\) was killed by SIGKILL; the training "
                                           r"stopped|lost contact with the other processes).*--resume"):
        distributed.launch(2, train_and_kill_rank_1, config, ml_data, workspace, what="training",
                           then="rerun the command with --resume to continue from the last checkpoint")
    killed = only_run(workspace)
    assert not killed.finished and killed.checkpoint.is_file()
    out = cli_run("train", "movielens", "--resume", "--nproc", 2, "--data-dir", ml_data).output
    assert f"resuming movielens run {killed.id}" in out
    resumed = only_run(workspace)
    assert resumed.finished and len(pd.read_csv(resumed.path("history.csv"))) == EPOCHS
    # the same weights as one uninterrupted process with the same global batch
    one = runner.train(MovieLens(), config_for(MovieLens(), None, ["train.batch_size=512"], epochs=EPOCHS), ml_data,
                       workspace.parent / "one", device="cpu", echo=False)
    assert_same_weights(weights(one), weights(resumed), atol=1e-6)


def test_a_process_error_is_the_job_error_and_options_are_checked(cli_run, workspace, ml_data, monkeypatch):
    common = ("train", "movielens", "--data-dir", ml_data)
    out = cli_run(*common, "--set", "train.batch_size=2000", "--nproc", 2, expect=2).output
    assert re.fullmatch(r"error: train.batch_size = 2000 per process x 2 processes is larger than the \d+ "
                        r"training rows; lower it or use fewer processes", out.strip())
    assert "give the number of processes" in cli_run(*common, "--nproc", 0, expect=2).output
    assert "trains one model" in cli_run(*common, "--nproc", 2, "--folds", 2, expect=2).output
    assert "add --folds K" in cli_run(*common, "--devices", "cpu,cpu", expect=2).output
    monkeypatch.setenv("WORLD_SIZE", "2")  # as torchrun sets it
    assert "lr-find runs in one process only" in cli_run("lr-find", "movielens", "--data-dir", ml_data,
                                                         expect=2).output


# ---------------------------------------------------------------------------- one process per device
def test_folds_over_two_processes_give_the_sequential_out_of_fold_predictions(cli_run, workspace, ml_data):
    common = ("train", "movielens", "--data-dir", ml_data, "--folds", 3, "--epochs", 2)
    out = cli_run(*common, "--devices", "cpu,cpu").output
    assert "CV rmse" in out
    parallel = only_run(workspace)
    cli_run(*common)
    sequential = [run for run in Run.all(workspace, "movielens") if run.id != parallel.id][0]
    assert parallel.path("folds.csv").read_text() == sequential.path("folds.csv").read_text()
    assert np.allclose(parallel.array("oof_preds.npy"), sequential.array("oof_preds.npy"), atol=1e-6, rtol=0)
    assert parallel.summary()["cv_score"] == pytest.approx(sequential.summary()["cv_score"], rel=1e-6)
    assert sorted(p.name for p in parallel.dir.glob("fold-*")) == ["fold-0", "fold-1", "fold-2"]


def test_tune_runs_one_worker_per_device_on_the_same_study(cli_run, workspace, ml_data):
    out = cli_run("tune", "movielens", "--data-dir", ml_data, "--trials", 3, "--devices", 2, "--seed", 0,
                  "--set", "train.epochs=1", "--pruner", "none").output
    assert "3 trials in the study: 3 complete" in out
    import optuna

    from harness.tune.study import default_storage

    trials = optuna.load_study(study_name="movielens", storage=default_storage(workspace)).trials
    assert len({trial.user_attrs["run"] for trial in trials}) == 3  # three runs, none trained twice


def test_ddp_broadcasts_buffers_only_for_models_whose_training_changes_them():
    from harness.models.collab import ItemAutoRec
    from harness.models.tabular import TabularModel

    users, items = np.array([0, 1, 2, 2]), np.array([0, 1, 0, 1])
    autorec = ItemAutoRec(n_users=3, n_items=2, ratings=(users, items, np.array([4.0, 3.0, 5.0, 1.0])))
    assert dict(autorec.named_buffers())  # its ratings are buffers, rebuilt by each process alike
    assert not distributed.has_training_buffers(autorec)
    assert not distributed.has_training_buffers(TabularModel([(5, 3)], 2, batchnorm=False))
    # Batch norm's running statistics change in training and are saved: rank 0's must reach the others.
    assert distributed.has_training_buffers(TabularModel([(5, 3)], 2, batchnorm=True))
