"""The local leaderboard: runs recorded by training, submissions beside them, the table, the plot, fingerprints."""
import os
import sqlite3
import subprocess

import numpy as np
import pandas as pd
import pytest

from harness.runs import runner
from harness.config.loading import config_hash
from harness.data.fingerprint import data_fingerprint
from harness.runs.leaderboard import Leaderboard, format_table, git_commit, plot_validation_vs_public, rank_correlation
from harness.runs.folder import Run
from toy_competition import LineFit


class Slope(LineFit):
    """The toy competition without a test file: just enough to train a real run in a fraction of a second."""

    name = "slope"
    raw_files = ("train.csv",)

    def default_config(self):
        return {"seed": 0, "train": {"epochs": 2, "lr": 0.05, "schedule": "constant", "wd": 0.0, "batch_size": 16}}


@pytest.fixture
def slope_data(tmp_path):
    data = tmp_path / "slope-data"
    data.mkdir()
    x = np.linspace(-1, 1, 64)
    pd.DataFrame({"x": x, "y": 2 * x}).to_csv(data / "train.csv", index=False)
    return data


def test_training_records_the_run(slope_data, workspace):
    comp = Slope()
    config = comp.default_config()
    run = runner.train(comp, config, slope_data, workspace, device="cpu", echo=False, progress=True)
    (row,) = Leaderboard(workspace).runs("slope")
    summary = run.summary()
    assert row["run_id"] == run.id and row["metric"] == "rmse" and row["direction"] == "minimize"
    assert row["validation_score"] == pytest.approx(summary["primary_score"])
    assert row["config_hash"] == config_hash(config) and "[train]" in row["config"]
    assert row["data_fingerprint"] == data_fingerprint(slope_data)
    assert [p.name for p in slope_data.iterdir()] == ["train.csv"]  # the data folder is left untouched
    assert row["git_commit"] == git_commit()


def test_a_broken_leaderboard_never_fails_training(slope_data, workspace, monkeypatch, capsys):
    def broken(self, run, fingerprint=None):
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(Leaderboard, "record_run", broken)
    run = runner.train(Slope(), Slope().default_config(), slope_data, workspace, device="cpu", echo=False, progress=True)
    assert run.path("model.pt").exists()
    assert "could not record run" in capsys.readouterr().err


def _run(workspace, score, competition="slope"):
    run = Run.create(workspace, competition)
    run.save_summary({"primary_metric": "rmse", "primary_score": score, "direction": "minimize",
                      "config_hash": f"h{score}", "started": f"2026-01-01 00:00:{int(score * 10):02d}"})
    Leaderboard(workspace).record_run(run, "fp")
    return run


def test_table_shows_each_run_with_its_best_known_submission(workspace):
    board = Leaderboard(workspace)
    a, b = _run(workspace, 0.5), _run(workspace, 0.7)
    first = board.add_submission("slope", a.id, "pending", "try", "sha", kaggle_ref=7)
    board.update_submission(first, status="scored", public_score=0.55)
    board.add_submission("slope", a.id, "failed", error="daily limit")  # a later failure does not hide the score
    board.add_submission("slope", "blend-1", "local", public_score=0.4)  # a run recorded only by its submission
    rows = {r["run_id"]: r for r in board.table("slope")}
    assert (rows[a.id]["public_score"], rows[a.id]["status"], rows[a.id]["submissions"]) == (0.55, "scored", 2)
    assert (rows[b.id]["public_score"], rows[b.id]["submissions"]) == (None, 0)
    assert rows["blend-1"]["public_score"] == 0.4
    text = format_table(list(rows.values()))
    assert "0.55000" in text and "0.70000" in text and "blend-1" in text
    with pytest.raises(ValueError):
        board.update_submission(first, public_score_typo=1.0)


def test_recording_again_keeps_what_training_recorded(workspace):
    run = _run(workspace, 0.5)
    Leaderboard(workspace).record_run(run, None)  # e.g. a submit that could not fingerprint
    (row,) = Leaderboard(workspace).runs("slope")
    assert row["data_fingerprint"] == "fp"


def test_plot_and_rank_correlation(workspace, tmp_path):
    board = Leaderboard(workspace)
    for valid, public in [(0.5, 0.52), (0.6, 0.61), (0.7, 0.75), (0.8, None)]:
        run = _run(workspace, valid)
        if public is not None:
            board.add_submission("slope", run.id, "scored", public_score=public)
    path = tmp_path / "plot.png"
    assert plot_validation_vs_public(board.table("slope"), path, "slope") == 3
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert rank_correlation([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert rank_correlation([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert rank_correlation([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    assert rank_correlation([1, 2], [1, 2]) is None


def test_leaderboard_command(cli_run, workspace):
    assert "no runs of movielens recorded yet" in cli_run("leaderboard", "movielens").output
    run = _run(workspace, 0.9, competition="movielens")
    Leaderboard(workspace).add_submission("movielens", run.id, "local", public_score=0.95)
    out = cli_run("leaderboard", "movielens").output
    assert run.id in out and "0.90000" in out and "0.95000" in out
    assert (workspace / "leaderboard" / "movielens.png").exists()
    assert "scored locally" in cli_run("leaderboard", "movielens", "--kaggle", "5", expect=2).output


def test_git_commit_names_a_real_commit_or_is_none():
    commit = git_commit()
    if commit is None:
        pytest.skip("the harness is not in a git checkout here")
    kind = subprocess.run(["git", "cat-file", "-t", commit.removesuffix("-dirty")], cwd=os.path.dirname(runner.__file__),
                          capture_output=True, text=True)
    assert kind.stdout.strip() == "commit" and len(commit.removesuffix("-dirty")) == 12


def test_fingerprint_follows_content_and_caches_by_file_stats(tmp_path):
    data, cache = tmp_path / "d", tmp_path / "cache"
    (data / "sub").mkdir(parents=True)
    (data / "a.csv").write_text("x\n1\n")
    (data / "sub" / "b.csv").write_text("y\n2\n")
    first = data_fingerprint(data, cache)
    assert len(first) == 16 and len(list(cache.iterdir())) == 1
    assert sorted(p.name for p in data.rglob("*")) == ["a.csv", "b.csv", "sub"]  # nothing written into the data
    copy = tmp_path / "copy"
    (copy / "sub").mkdir(parents=True)
    (copy / "a.csv").write_text("x\n1\n")
    (copy / "sub" / "b.csv").write_text("y\n2\n")
    assert data_fingerprint(copy) == first  # same content elsewhere, other mtimes: same fingerprint

    stat = (data / "a.csv").stat()
    (data / "a.csv").write_text("x\n3\n")  # same size; put the old mtime back: the cache answers
    os.utime(data / "a.csv", ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert data_fingerprint(data, cache) == first
    assert data_fingerprint(data) != first  # without the cache it is hashed again
    os.utime(data / "a.csv", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # touched: hashed again
    touched = data_fingerprint(data, cache)
    assert touched != first
    (data / ".hidden").write_text("ignored")  # hidden files (our markers) do not count
    assert data_fingerprint(data) == touched


@pytest.mark.parametrize("damage", ["garbage", "truncated", "directory", "foreign"])
def test_a_damaged_leaderboard_file_is_one_clear_error(cli_run, workspace, damage):
    _run(workspace, 0.9, competition="movielens")
    path = workspace / "leaderboard.sqlite"
    if damage == "garbage":
        path.write_bytes(b"not a database at all\n" * 50)
    if damage == "truncated":  # a copy cut short: the header survives, the pages do not
        path.write_bytes(path.read_bytes()[:100])
    if damage == "directory":
        path.unlink()
        path.mkdir()
    if damage == "foreign":  # another program's SQLite file with a runs table of its own
        path.unlink()
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE runs (x)")
    result = cli_run("leaderboard", "movielens", expect=2)
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and str(path) in lines[0] and "Traceback" not in result.output
    if damage == "foreign":
        assert "is not a harness leaderboard (its runs table has no competition, run_id" in lines[0]


def test_training_beside_a_damaged_leaderboard_keeps_the_run(slope_data, workspace, capsys):
    workspace.mkdir(parents=True)
    (workspace / "leaderboard.sqlite").write_bytes(b"not a database at all\n" * 50)
    run = runner.train(Slope(), Slope().default_config(), slope_data, workspace, device="cpu", echo=False, progress=True)
    assert run.path("model.pt").exists()
    err = capsys.readouterr().err
    assert "could not record run" in err and "leaderboard.sqlite is not a readable leaderboard database" in err
