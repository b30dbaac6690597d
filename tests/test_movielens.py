"""MovieLens end to end on generated data, and every kind of bad input."""
import shutil

import numpy as np
import pandas as pd
import pytest

from plugins.movielens import MovieLens


@pytest.fixture
def sample_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("ml")
    MovieLens().write_sample(path)
    return path


def test_end_to_end_on_generated_data(cli_run, workspace, sample_dir):
    cli_run("data", "movielens", "--from", sample_dir)
    out = cli_run("train", "movielens").output
    assert "validation rmse" in out and "1 row(s) with a user" in out
    run_dir = next((workspace / "runs" / "movielens").iterdir())
    summary = pd.read_json(run_dir / "summary.json", typ="series")
    # much better than always predicting the mean rating
    ratings = pd.read_csv(sample_dir / "u.data", sep="\t", header=None)[2]
    assert summary["primary_score"] < 0.85 * ratings.std()
    sub = pd.read_csv(run_dir / "submission.csv")
    test = pd.read_csv(sample_dir / "test.csv")
    assert list(sub.columns) == ["id", "rating"] and len(sub) == len(test)
    assert sub["rating"].between(0, 5.5).all()
    # the unseen user and unseen movie get a sensible rating, near the mean
    assert sub["rating"].iloc[-2:].between(2.5, 4.5).all()
    solution = pd.read_csv(sample_dir / "solution.csv")
    assert np.sqrt(((sub["rating"] - solution["rating"]) ** 2).mean()) < 0.85 * ratings.std()

    assert "rmse" in cli_run("runs", "movielens").output
    explained = cli_run("explain", "movielens").output
    assert "Highest item bias" in explained and "Principal component 2" in explained
    assert (run_dir / "item_factors_pca.png").stat().st_size > 10_000
    model = cli_run("model", "movielens").output
    assert "user_factors" in model and "total parameters" in model
    lr = cli_run("lr-find", "movielens", "--num-it", "40").output
    assert "suggested lr" in lr
    assert list((workspace / "lr_find").glob("movielens-*.png"))
    (run_dir / "submission.csv").unlink()
    cli_run("predict", "movielens")
    assert pd.read_csv(run_dir / "submission.csv").equals(sub)


def test_predefined_split_and_nn_model(cli_run, workspace, sample_dir):
    cli_run("train", "movielens", "--data-dir", sample_dir, "--set", "data.split=u1", "--set", "model.kind=nn",
            "--epochs", "2", "--schedule", "sgdr")
    cli_run("train", "movielens", "--data-dir", sample_dir, "--set", "data.split=u3", expect=2)


def test_newer_layout_ratings_csv(cli_run, tmp_path, sample_dir):
    frame = pd.read_csv(sample_dir / "u.data", sep="\t", header=None, names=["userId", "movieId", "rating", "timestamp"])
    frame.to_csv(tmp_path / "ratings.csv", index=False)
    pd.DataFrame({"movieId": [1, 2], "title": ["A (1990)", "B (1991)"], "genres": ["x", "y"]}).to_csv(
        tmp_path / "movies.csv", index=False)
    out = cli_run("train", "movielens", "--data-dir", tmp_path, "--epochs", "1").output
    assert "validation rmse" in out and "submission" not in out


def test_resume_continues_a_killed_run(cli_run, workspace, sample_dir, monkeypatch):
    from harness import runner
    from harness.train.callbacks import Callback

    class Kill(Callback):
        order = 99

        def after_epoch(self, learn):
            if learn.epoch == 1:
                raise KeyboardInterrupt

    def train_with_kill(*args, **kwargs):
        return original(*args, callbacks=[Kill()], **kwargs)

    original = runner.train
    cli_run("data", "movielens", "--from", sample_dir)
    cli_run("train", "movielens", "--epochs", "4")
    full = next((workspace / "runs" / "movielens").iterdir())
    monkeypatch.setattr(runner, "train", train_with_kill)
    assert "Aborted" in cli_run("train", "movielens", "--epochs", "4", expect=1).output
    monkeypatch.setattr(runner, "train", original)
    out = cli_run("train", "movielens", "--resume").output
    assert "resuming" in out
    import torch

    killed = sorted((workspace / "runs" / "movielens").iterdir())[-1]
    a = torch.load(full / "model.pt", weights_only=True)
    b = torch.load(killed / "model.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert len(pd.read_csv(killed / "history.csv")) == 4


def _copy(sample_dir, tmp_path):
    dest = tmp_path / "data"
    shutil.copytree(sample_dir, dest)
    return dest


@pytest.mark.parametrize("damage, message", [
    (lambda d: (d / "u.data").unlink(), "neither u.data"),
    (lambda d: (d / "u.data").write_text(""), "u.data is empty"),
    (lambda d: (d / "u.data").write_text("1\t2\tfive\t0\n2\t3\t4\t0\n"), "column rating has 1 non-numeric"),
    (lambda d: (d / "u.data").write_text("1\t2\t4\t0\n1\t2\t3\t0\n2\t2\t3\t0\n"), "duplicated (user, item)"),
    (lambda d: (d / "test.csv").write_text("id,userId\n1,2\n"), "test.csv is missing column(s) movieId"),
    (lambda d: (d / "test.csv").write_text("id,userId,movieId\n1,2,3\n1,2,4\n"), "column id has duplicated"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(cli_run, workspace, tmp_path, sample_dir, damage, message):
    data = _copy(sample_dir, tmp_path)
    damage(data)
    result = cli_run("train", "movielens", "--data-dir", data, expect=2)
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not (workspace / "runs").exists()


def test_unknown_test_ids_can_be_an_error(cli_run, sample_dir):
    result = cli_run("train", "movielens", "--data-dir", sample_dir, "--epochs", "1",
                     "--set", "data.unknown_ids=error", expect=2)
    assert "never seen in training" in result.output


@pytest.mark.parametrize("args, message", [
    (["--set", "model.n_factor=3"], "unknown key"),
    (["--set", "model.n_factors=big"], "expected a int"),
    (["--set", "model.kind=svd"], "model.kind = 'svd'"),
])
def test_bad_settings(cli_run, workspace, sample_dir, args, message):
    result = cli_run("train", "movielens", "--data-dir", sample_dir, *args, expect=2)
    assert message in result.output
    assert not (workspace / "runs").exists()  # nothing half-written


def test_data_command_refuses_bad_folders(cli_run, tmp_path):
    (tmp_path / "empty").mkdir()
    assert "neither u.data" in cli_run("data", "movielens", "--from", tmp_path / "empty", expect=2).output
    cli_run("data", "movielens", "--sample")
    assert "already exists" in cli_run("data", "movielens", "--sample", expect=2).output
    cli_run("data", "movielens", "--sample", "--force")
