"""Run folders: built as <id>.partial and renamed when complete, failed runs marked, resume finishes
whatever is left, finished runs are never changed, damaged run files are named."""
import json

import pandas as pd
import pytest

from harness.runs.folder import Run
from harness_competitions import config_path
from harness_plugins.movielens import MovieLens


@pytest.fixture
def data(cli_run, tmp_path_factory):
    path = tmp_path_factory.mktemp("ml")
    MovieLens().write_sample(path)
    cli_run("data", "movielens", "--from", path)
    return path


def runs_of(workspace):
    return Run.all(workspace, "movielens")


def fail_once_in_predict(monkeypatch, error=RuntimeError("disk on fire")):
    """Make MovieLens.predict raise once: a run killed after its last checkpoint, before it finished."""
    original = MovieLens.predict
    calls = []

    def predict(self, *args, **kwargs):
        if not calls:
            calls.append(1)
            raise error
        return original(self, *args, **kwargs)

    monkeypatch.setattr(MovieLens, "predict", predict)


def test_resuming_a_finished_run_says_so_and_changes_nothing(cli_run, workspace, data):
    cli_run("train", "movielens", "--epochs", "2")
    (run,) = runs_of(workspace)
    before = {p.name: p.read_bytes() for p in run.dir.rglob("*") if p.is_file()}
    out = cli_run("train", "movielens", "--resume").output
    assert "finished already" in out and "validation rmse" in out
    after = {p.name: p.read_bytes() for p in run.dir.rglob("*") if p.is_file()}
    assert after == before
    assert run.summary()["primary_score"] is not None


def test_run_that_fails_after_its_last_epoch_is_marked_failed_and_resume_finishes_it(
        cli_run, workspace, data, monkeypatch):
    fail_once_in_predict(monkeypatch)
    with pytest.raises(RuntimeError):
        cli_run("train", "movielens", "--epochs", "2", expect=None)
    (run,) = runs_of(workspace)
    assert run.status() == "failed" and run.dir.name.endswith(".partial")
    assert run.failure()["error"] == "disk on fire"
    listing = cli_run("runs", "movielens").output
    assert "failed: disk on fire" in listing
    # --run latest never picks an unfinished run
    assert "no finished runs" in cli_run("predict", "movielens", expect=2).output

    out = cli_run("train", "movielens", "--resume").output
    assert "resuming" in out and "validation rmse" in out
    (run,) = runs_of(workspace)
    assert run.status() == "finished" and not (run.dir / "failed.json").exists()
    summary = run.summary()
    assert isinstance(summary["primary_score"], float) and summary["epochs"] == 2
    assert len(pd.read_csv(run.path("history.csv"))) == 2  # no epoch trained twice
    assert run.path("submission.csv").exists() and run.path("valid_preds.npy").exists()
    assert summary["submission"] == str(run.path("submission.csv"))


def test_resumed_run_scores_like_the_uninterrupted_one(cli_run, workspace, data, monkeypatch):
    cli_run("train", "movielens", "--epochs", "2")
    fail_once_in_predict(monkeypatch)
    with pytest.raises(RuntimeError):
        cli_run("train", "movielens", "--epochs", "2", expect=None)
    cli_run("train", "movielens", "--resume")
    full, resumed = runs_of(workspace)
    assert resumed.summary()["primary_score"] == pytest.approx(full.summary()["primary_score"], rel=1e-6)
    assert resumed.path("submission.csv").read_text() == full.path("submission.csv").read_text()


def test_resume_without_a_checkpoint_says_the_file_is_missing(cli_run, workspace, data, monkeypatch):
    fail_once_in_predict(monkeypatch)
    with pytest.raises(RuntimeError):
        cli_run("train", "movielens", "--epochs", "1", expect=None)
    (run,) = runs_of(workspace)
    for f in run.path("checkpoints").iterdir():
        f.unlink()
    run.path("checkpoints").rmdir()
    out = cli_run("train", "movielens", "--resume", expect=2).output
    assert "last.pt is missing" in out and "cannot be resumed" in out and "Traceback" not in out


@pytest.mark.parametrize("file, content", [
    ("preprocessing.json", b'{"users": [1, 2'),
    ("model.pt", b"not a torch file"),
    ("config.toml", b"seed = = 3"),
    ("config.toml", b""),  # empty: no key to read (was a KeyError traceback)
    ("config.toml", config_path("rossmann").read_bytes()),  # another competition's config
])
def test_damaged_run_file_is_named(cli_run, workspace, data, file, content):
    cli_run("train", "movielens", "--epochs", "1")
    (run,) = runs_of(workspace)
    run.path(file).write_bytes(content)
    out = cli_run("predict", "movielens", expect=2).output
    assert f"run {run.id} of movielens is damaged" in out and file in out
    assert len(out.strip().splitlines()) == 1 and "Traceback" not in out
    assert "weights_only" not in out  # torch's advice to unpickle unsafely is not passed on


def test_damaged_checkpoint_is_named_on_resume(cli_run, workspace, data, monkeypatch):
    fail_once_in_predict(monkeypatch)
    with pytest.raises(RuntimeError):
        cli_run("train", "movielens", "--epochs", "1", expect=None)
    (run,) = runs_of(workspace)
    run.checkpoint.write_bytes(run.checkpoint.read_bytes()[:100])  # cut short
    out = cli_run("train", "movielens", "--resume", expect=2).output
    assert "is damaged" in out and "last.pt" in out and "Traceback" not in out
    assert "cut short, or not a file that torch saved" in out and "weights_only" not in out


@pytest.mark.parametrize("run_id", ["/etc", "../../data", ".", "", "empty"])
def test_resume_and_predict_refuse_a_run_id_that_is_a_path_or_a_folder_without_a_config(cli_run, workspace, data,
                                                                                       run_id):
    (Run.folder(workspace, "movielens") / "empty").mkdir(parents=True)
    for command in (["train", "movielens", "--resume", "--run", run_id], ["predict", "movielens", "--run", run_id]):
        out = cli_run(*command, expect=2).output
        assert len(out.strip().splitlines()) == 1 and "Traceback" not in out
        assert ("not a path" in out) if run_id != "empty" else ("holds no config.toml" in out)
    assert [run.id for run in runs_of(workspace)] == ["empty"]  # nothing trained


def test_run_without_resume_is_refused_instead_of_training_a_new_run(cli_run, workspace, data):
    cli_run("train", "movielens", "--epochs", "1")
    (run,) = runs_of(workspace)
    out = cli_run("train", "movielens", "--run", run.id, "--epochs", "1", expect=2).output
    assert f"--run {run.id} names a run to continue: add --resume" in out
    assert len(runs_of(workspace)) == 1


def test_a_run_folder_without_its_model_is_listed_as_incomplete_not_finished(cli_run, workspace, data):
    """A folder's name says finished; a copy without model.pt (or a .partial renamed by hand) is not."""
    import shutil

    cli_run("train", "movielens", "--epochs", "1")
    (run,) = runs_of(workspace)
    copy = run.dir.with_name("copied")
    shutil.copytree(run.dir, copy)
    (copy / "model.pt").unlink()
    rows = {line.split()[1]: line for line in cli_run("runs", "movielens").output.splitlines()[1:]}
    assert rows[run.id].endswith("  finished")
    assert rows["copied"].endswith("  incomplete (no model.pt)"), rows["copied"]
    out = cli_run("predict", "movielens", "--run", "copied", expect=2).output
    assert f"{copy / 'model.pt'} is missing: run copied is incomplete" in out and "--resume" not in out
    assert Run.find(workspace, "movielens").id == run.id  # "copied" sorts last, but latest skips it
    cli_run("predict", "movielens", "--run", "latest")


def test_a_k_fold_run_needs_every_folds_model_and_a_blend_none_of_its_own(tmp_path):
    base = tmp_path / "runs" / "movielens"
    k_fold = Run(base / "kfold")
    (k_fold.dir / "fold-0").mkdir(parents=True)
    (k_fold.dir / "fold-1").mkdir()
    (k_fold.dir / "folds.csv").write_text("row,fold\n0,0\n1,1\n")
    (k_fold.dir / "fold-0" / "model.pt").write_bytes(b"weights")
    assert k_fold.status() == "incomplete (no summary.json)"  # a .partial K-fold run renamed by hand
    k_fold.save_summary({"folds": 2, "primary_score": 0.9})
    assert k_fold.status() == "incomplete (no fold-1/model.pt)"
    (k_fold.dir / "fold-1" / "model.pt").write_bytes(b"weights")
    assert k_fold.status() == "finished"
    blend = Run(base / "blend")
    blend.dir.mkdir()
    blend.save_summary({"kind": "blend", "primary_score": 0.9})
    assert blend.status() == "finished"


def test_runs_of_an_unknown_competition_is_an_error(cli_run):
    out = cli_run("runs", "nope", expect=2).output
    assert "unknown competition 'nope'" in out


def test_runs_with_none_yet_names_the_competition(cli_run):
    assert "no runs of movielens yet" in cli_run("runs", "movielens").output


def test_data_from_folder_errors_name_the_users_folder(cli_run, tmp_path):
    from harness_plugins.rossmann import Rossmann

    source = tmp_path / "mine"
    Rossmann().write_sample(source)
    (source / "store.csv").unlink()
    (source / "store.csv").mkdir()  # a directory where a file should be
    out = cli_run("data", "rossmann", "--from", source, expect=2).output
    assert f"{source / 'store.csv'} is a directory" in out and ".rossmann." not in out


def _rating_of_nine(source):
    MovieLens().write_sample(source, n_users=60, n_items=40, n_ratings=1500)
    path = source / "u.data"
    lines = path.read_text().splitlines()
    user, item, _, stamp = lines[0].split("\t")
    path.write_text("\n".join(["\t".join([user, item, "9", stamp]), *lines[1:]]) + "\n")
    return "u.data: column rating has 1 value(s) outside [0.0, 5.5]"


def _store_open_on_day_two(source):
    from harness_plugins.rossmann import Rossmann

    Rossmann().write_sample(source)
    path = source / "train.csv"
    frame = pd.read_csv(path, dtype=str)
    frame.loc[2, "Open"] = "2"
    frame.to_csv(path, index=False)
    return "train.csv: column Open has 1 value(s) other than 0 or 1, first 2 at data row 3"


@pytest.mark.parametrize("name, spoil", [("movielens", _rating_of_nine), ("rossmann", _store_open_on_day_two)])
def test_data_from_refuses_a_bad_value_with_trains_message_and_copies_nothing(cli_run, workspace, tmp_path, name,
                                                                              spoil):
    """It checked the files' names only, and said "data ready"; train then refused the value."""
    source = tmp_path / "mine"
    says = spoil(source)
    refused = cli_run("train", name, "--data-dir", source, "--epochs", "1", expect=2).output
    assert refused.startswith(f"error: {source}/{says}"), refused
    assert cli_run("data", name, "--from", source, expect=2).output == refused
    assert not (workspace / "data" / name).exists()


def test_data_from_checks_values_with_the_config_given(cli_run, workspace, tmp_path):
    source = tmp_path / "mine"
    _rating_of_nine(source)
    cli_run("data", "movielens", "--from", source, "--set", "model.y_range=[0.0, 10.0]")  # train's config takes it
    assert (workspace / "data" / "movielens" / "u.data").read_bytes() == (source / "u.data").read_bytes()
    out = cli_run("data", "movielens", "--sample", "--set", "seed=1", expect=2).output
    assert "--config and --set choose the config that checks the values of --from DIR" in out


@pytest.mark.parametrize("path", ['C:\\models\\wt103', 'my "best" lm'])
def test_pretrained_paths_with_backslashes_and_quotes_survive(cli_run, tmp_path, path):
    from harness.cli.common import pretrained_overrides
    from harness.config.loading import apply_overrides
    from harness.host.plugins import get_competition

    imdb = get_competition("imdb")
    config = apply_overrides(imdb.default_config(), pretrained_overrides(imdb, (), path, False))
    node = config
    for part in imdb.pretrained_key.split("."):
        node = node[part]
    assert node == path


def test_summary_json_is_written_before_the_rename(cli_run, workspace, data):
    cli_run("train", "movielens", "--epochs", "1")
    (run,) = runs_of(workspace)
    summary = json.loads(run.path("summary.json").read_text())
    assert summary["run"] == run.id and summary["submission"].startswith(str(run.dir))


def test_checkpoint_of_another_model_is_one_line_on_resume(cli_run, workspace, data, monkeypatch):
    import torch

    fail_once_in_predict(monkeypatch)
    with pytest.raises(RuntimeError):
        cli_run("train", "movielens", "--epochs", "1", expect=None)
    (run,) = runs_of(workspace)
    state = torch.load(run.checkpoint, weights_only=True)
    state["model"] = {"something.else": torch.zeros(3)}  # e.g. a head-only checkpoint of an older version
    torch.save(state, run.checkpoint)
    out = cli_run("train", "movielens", "--resume", expect=2).output
    assert "the checkpoint does not fit this model" in out and "Traceback" not in out


def test_interrupted_run_is_listed_as_interrupted(cli_run, workspace, data, monkeypatch):
    fail_once_in_predict(monkeypatch, KeyboardInterrupt())
    cli_run("train", "movielens", "--epochs", "1", expect=1)  # click's "Aborted!"
    (run,) = runs_of(workspace)
    assert run.status() == "interrupted"
    assert "interrupted" in cli_run("runs", "movielens").output


def test_caches_follow_the_workspace_of_the_command_not_the_environment(cli_run, tmp_path, monkeypatch):
    import os

    from harness.workspace import WORKSPACE_ENV, cache_dir, using_workspace

    monkeypatch.delenv(WORKSPACE_ENV, raising=False)
    with using_workspace(tmp_path / "a"):
        assert cache_dir("tokens") == tmp_path / "a" / "cache" / "tokens"
        with using_workspace(tmp_path / "b"):
            assert cache_dir("tokens") == tmp_path / "b" / "cache" / "tokens"
        assert cache_dir("tokens") == tmp_path / "a" / "cache" / "tokens"
    from click.testing import CliRunner

    from harness.cli import cli

    CliRunner().invoke(cli, ["--workspace", str(tmp_path / "c"), "list"], catch_exceptions=False)
    assert WORKSPACE_ENV not in os.environ  # the CLI no longer passes it to deep code through the environment
