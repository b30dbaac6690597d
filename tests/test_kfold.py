"""`harness train NAME --folds K`: fold models, out-of-fold predictions for every row, the CV score,
one submission from the folds' mean test outputs, single folds joined later, and resume at the fold."""

import re

import numpy as np
import pandas as pd
import pytest

from harness.runs.folder import Run
from harness_plugins.movielens import MovieLens
from harness_plugins.rossmann import Rossmann


@pytest.fixture
def ml_data(tmp_path_factory):
    path = tmp_path_factory.mktemp("ml")
    MovieLens().write_sample(path, n_users=120, n_items=80, n_ratings=4000)
    return path


def only_run(workspace, name="movielens") -> Run:
    (run,) = Run.all(workspace, name)
    return run


def test_every_training_row_gets_one_out_of_fold_prediction_and_the_cv_score_is_on_them(cli_run, workspace, ml_data):
    out = cli_run("train", "movielens", "--data-dir", ml_data, "--folds", "3", "--epochs", "2").output
    run = only_run(workspace)
    folds = pd.read_csv(run.path("folds.csv"))
    ratings = MovieLens().fold_rows(MovieLens().load(ml_data, run.config()), run.config())
    assert len(folds) == len(ratings) and sorted(folds["fold"].unique()) == [0, 1, 2]
    oof, targets = run.array("oof_preds.npy"), run.array("oof_targets.npy")
    assert not np.isnan(oof).any()
    # the OOF targets are the ratings themselves, row for row: each row was predicted by the fold that held it out
    assert np.allclose(targets, ratings["rating"].to_numpy())
    cv = float(np.sqrt(np.mean((oof - targets) ** 2)))
    summary = run.summary()
    assert summary["cv_score"] == pytest.approx(cv, rel=1e-5)
    assert summary["folds"] == 3 and len(summary["fold_scores"]) == 3
    assert summary["fold_sd"] == pytest.approx(np.std(summary["fold_scores"], ddof=1))
    assert f"CV rmse on all {len(ratings)} out-of-fold rows" in out
    assert len(pd.read_csv(run.path("cv.csv"))) == 3 and run.path("cv.png").stat().st_size > 5000
    # the submission is the mean of the three fold models' test outputs
    fold_subs = [pd.read_csv(run.path(f"fold-{i}/submission.csv"))["rating"] for i in range(3)]
    assert np.allclose(pd.read_csv(run.path("submission.csv"))["rating"], np.mean(fold_subs, axis=0))


def test_fold_models_never_train_on_the_rows_they_score(cli_run, workspace, ml_data):
    cli_run("train", "movielens", "--data-dir", ml_data, "--folds", "3", "--epochs", "1")
    run = only_run(workspace)
    folds = pd.read_csv(run.path("folds.csv"))["fold"].to_numpy()
    ratings = MovieLens().fold_rows(MovieLens().load(ml_data, run.config()), run.config())
    for i in range(3):
        held_out = ratings[folds == i]
        scored = run.array(f"fold-{i}/valid_targets.npy")
        assert len(scored) == len(held_out) and np.allclose(scored, held_out["rating"])


def test_the_training_seed_never_moves_a_row_to_another_fold(cli_run, workspace, ml_data):
    for seed in ("1", "2"):
        cli_run("train", "movielens", "--data-dir", ml_data, "--folds", "3", "--epochs", "1", "--set", f"seed={seed}")
    cli_run("train", "movielens", "--data-dir", ml_data, "--folds", "3", "--epochs", "1",
            "--set", "validation.split_seed=7")
    a, b, c = (pd.read_csv(r.path("folds.csv"))["fold"] for r in Run.all(workspace, "movielens"))
    assert a.equals(b) and not a.equals(c)


def test_single_folds_are_joined_by_resume_into_the_same_result(cli_run, workspace, ml_data):
    cli_run("train", "movielens", "--data-dir", ml_data, "--folds", "3", "--epochs", "2")
    out = cli_run("train", "movielens", "--data-dir", ml_data, "--folds", "3", "--fold", "1", "--epochs", "2").output
    full, partial = Run.all(workspace, "movielens")
    assert "fold 1 trained" in out and not partial.finished and partial.path("fold-1").is_dir()
    cli_run("train", "movielens", "--data-dir", ml_data, "--resume", "--run", partial.id)
    joined = Run.at(workspace, "movielens", partial.id)
    assert joined.finished
    assert joined.summary()["cv_score"] == pytest.approx(full.summary()["cv_score"], rel=1e-6)


def test_killed_k_fold_run_resumes_at_the_fold_where_it_stopped(cli_run, workspace, ml_data, monkeypatch):
    from harness.runs import runner

    original = runner.finish_run
    calls = []

    def finish_run(competition, config, raw, prepared, learn, run, *args, **kwargs):
        calls.append(run.dir.name)
        if run.dir.name == "fold-1.partial" and calls.count("fold-1.partial") == 1:
            raise KeyboardInterrupt  # killed during the second fold
        return original(competition, config, raw, prepared, learn, run, *args, **kwargs)

    monkeypatch.setattr(runner, "finish_run", finish_run)
    cli_run("train", "movielens", "--data-dir", ml_data, "--folds", "3", "--epochs", "1", expect=1)
    run = only_run(workspace)
    assert run.status() == "interrupted" and run.path("fold-0").is_dir()
    cli_run("train", "movielens", "--data-dir", ml_data, "--resume")
    assert calls == ["fold-0.partial", "fold-1.partial", "fold-1.partial", "fold-2.partial"]  # fold 0 not retrained
    assert Run.at(workspace, "movielens", run.id).finished


def test_rossmann_time_folds_never_validate_on_the_past(cli_run, workspace, tmp_path):
    data = tmp_path / "rossmann"
    Rossmann().write_sample(data)
    cli_run("train", "rossmann", "--data-dir", data, "--folds", "2", "--epochs", "1",
            "--set", "model.layers=[16]", "--set", "model.dropouts=[0.0]")
    run = only_run(workspace, "rossmann")
    comp = Rossmann()
    raw = comp.load(data, run.config())
    rows = comp.fold_rows(raw, run.config())
    folds = pd.read_csv(run.path("folds.csv"))
    assert run.summary()["scheme"] == "time"
    for i in range(2):
        valid_dates = rows["Date"][folds["fold"] == i]
        # a window of valid_size = 48 days, as Kaggle's test period (days without sales, Sundays, drop out)
        assert 40 <= (valid_dates.max() - valid_dates.min()).days < 48
        trained = rows["Date"][(folds["train_from"] <= i) & (folds["fold"] != i)]
        assert trained.max() < valid_dates.min()


def test_folds_options_are_checked(cli_run, workspace, ml_data):
    assert "--fold I needs --folds K" in cli_run("train", "movielens", "--data-dir", ml_data, "--fold", "1",
                                                  expect=2).output
    assert "fold" in cli_run("train", "movielens", "--data-dir", ml_data, "--folds", "3", "--fold", "5",
                             expect=2).output
    assert "folds" in cli_run("train", "movielens", "--data-dir", ml_data, "--folds", "1", expect=2).output
    assert "give 2 or more folds" in cli_run("train", "movielens", "--data-dir", ml_data, "--folds", "0",
                                             expect=2).output
    assert not (workspace / "runs").exists()


def one_error_line(result) -> str:
    """The one line a bad input gives: ``error: ...``, no traceback."""
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.output, result.output
    return lines[0]


@pytest.mark.parametrize("folds, message", [
    (lambda n: np.full(n, -1), "every row has fold -1, so no fold validates any row"),
    (lambda n: np.zeros(n, dtype=int), "has a single fold (fold 0): K folds need two or more"),
])
def test_a_folds_file_without_two_validation_folds_is_refused_before_any_run_folder(cli_run, workspace, ml_data,
                                                                                    tmp_path, folds, message):
    comp = MovieLens()
    n = len(comp.fold_rows(comp.load(ml_data, comp.default_config()), comp.default_config()))
    path = tmp_path / "folds.csv"
    pd.DataFrame({"row": np.arange(n), "fold": folds(n)}).to_csv(path, index=False)
    line = one_error_line(cli_run("train", "movielens", "--data-dir", ml_data, "--folds-file", path, expect=2))
    assert str(path) in line and message in line
    assert not (workspace / "runs").exists()


HOLDOUT = 'with validation.scheme = "holdout": a holdout has one validation split, not {k} folds; set validation.scheme'


@pytest.mark.parametrize("command, options, asked", [
    ("train", ["--epochs", "1", "--folds", "3"], "--folds 3"),
    ("train", ["--epochs", "1", "--set", "validation.folds=3"], "validation.folds = 3"),
    ("tune", ["--trials", "1", "--set", "validation.folds=3"], "validation.folds = 3"),
])
def test_k_folds_under_a_holdout_are_refused_not_trained_as_one_fold(cli_run, workspace, tmp_path, command, options,
                                                                      asked):
    """They trained one fold model and called it a K-fold run ("CV over 1 folds", sd nan)."""
    data = tmp_path / "rossmann"
    Rossmann().write_sample(data)
    result = cli_run(command, "rossmann", "--data-dir", data, *options, "--set", "validation.scheme=holdout", expect=2)
    line = one_error_line(result)
    assert line.startswith(f"error: {asked} {HOLDOUT.format(k=3)}"), line
    assert not (workspace / "runs").exists() and not (workspace / "tune").exists()


def test_fold_plan_refuses_k_folds_of_a_holdout_for_every_caller():
    from harness.errors import HarnessError
    from harness.runs.kfold import fold_plan

    rows = pd.DataFrame({"x": np.arange(20)})
    with pytest.raises(HarnessError, match=re.escape(f"4 folds {HOLDOUT.format(k=4)}")):
        fold_plan(rows, {"validation": {"scheme": "holdout", "valid_pct": 0.2}}, 4)
    assert fold_plan(rows, {"validation": {"scheme": "kfold"}}, 4).n_folds == 4


@pytest.mark.parametrize("options, message", [
    # each of 2 folds trains on half of the rows, fewer than the batch
    (["--set", "train.batch_size=3000"], r"train.batch_size = 3000 is larger than the \d+ training rows of fold \d/2"),
    (["--devices", "0,99"], r"--devices?:? .*cuda"),  # no GPU here, or no GPU 99
])
def test_a_fold_models_batch_size_and_devices_are_checked_before_any_run_folder(cli_run, workspace, ml_data,
                                                                                options, message):
    line = one_error_line(cli_run("train", "movielens", "--data-dir", ml_data, "--folds", "2", *options, expect=2))
    assert re.search(message, line), line
    assert not (workspace / "runs").exists()


def test_a_competition_without_fold_rows_says_so(cli_run, workspace):
    from toy_competition import FakePlugin

    from harness.host import plugins

    plugins.register_plugin(FakePlugin(), name="fake-line-fit-folds")
    try:
        cli_run("data", "line-fit", "--sample")
        out = cli_run("train", "line-fit", "--folds", "3", expect=2).output
    finally:
        plugins.unregister_plugin("fake-line-fit-folds")
    assert "line-fit cannot train under K folds yet" in out


def test_tuning_under_folds_scores_trials_by_cv_and_prunes_after_a_fold(cli_run, workspace, ml_data, tmp_path):
    import optuna

    from harness.config.loading import apply_overrides
    from harness.host.plugins import get_competition
    from harness.tune.study import tune

    comp = get_competition("movielens")
    config = apply_overrides(comp.default_config(), {"train.epochs": 1})
    config["validation"]["folds"] = 2
    study, _ = tune(comp, config, ml_data, workspace, n_trials=2, storage_url=f"sqlite:///{tmp_path / 'o.db'}",
                    pruner="median", seed=0, progress=False)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 2
    for trial in done:
        run = Run.at(workspace, "movielens", trial.user_attrs["run"])
        assert run.summary()["folds"] == 2
        assert trial.value == pytest.approx(run.summary()["cv_score"])
        assert sorted(trial.intermediate_values) == [1, 2]  # the running mean after each fold
        assert trial.intermediate_values[2] == pytest.approx(np.mean(run.summary()["fold_scores"]))


def test_report_fold_stops_a_trial_whose_first_fold_is_bad():
    import optuna

    from harness.tune.study import make_pruner, report_fold

    study = optuna.create_study(pruner=make_pruner("median", folds=3))
    for value in (1.0, 1.1, 0.9, 1.0, 1.05):  # five finished trials (the pruner's start-up)
        trial = study.ask()
        for fold in range(3):
            report_fold(trial, fold, [value] * (fold + 1))
        study.tell(trial, value)
    bad = study.ask()
    with pytest.raises(optuna.TrialPruned, match="after fold 1"):
        report_fold(bad, 0, [3.0])


def test_the_leaderboard_records_the_scheme_and_the_fold_spread(cli_run, workspace, ml_data):
    import sqlite3

    from harness.runs.leaderboard import Leaderboard

    # an older leaderboard without the columns gets them when opened
    workspace.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(workspace / "leaderboard.sqlite") as db:
        db.execute("CREATE TABLE runs (competition TEXT NOT NULL, run_id TEXT NOT NULL, config TEXT, config_hash TEXT, "
                   "git_commit TEXT, data_fingerprint TEXT, metric TEXT, direction TEXT, validation_score REAL, "
                   "started TEXT, recorded TEXT, PRIMARY KEY (competition, run_id))")
    cli_run("train", "movielens", "--data-dir", ml_data, "--folds", "3", "--epochs", "1")
    cli_run("train", "movielens", "--data-dir", ml_data, "--epochs", "1")
    kfold, holdout = sorted(Leaderboard(workspace).runs("movielens"), key=lambda r: r["run_id"])
    run = Run.at(workspace, "movielens", kfold["run_id"])
    assert (kfold["scheme"], kfold["folds"]) == ("kfold", 3)
    assert kfold["validation_score"] == pytest.approx(run.summary()["cv_score"])
    assert kfold["cv_sd"] == pytest.approx(run.summary()["fold_sd"])
    assert holdout["scheme"] == "holdout" and holdout["cv_sd"] is None
    assert "kfold×3" in cli_run("leaderboard", "movielens").output


def test_movielens_predefined_folds_are_the_u1_to_u5_test_files(cli_run, workspace, ml_data, tmp_path):
    import shutil

    data = tmp_path / "ml"
    shutil.copytree(ml_data, data)
    ratings = pd.read_csv(data / "u.data", sep="\t", header=None)
    part = np.random.default_rng(0).permutation(len(ratings)) % 5  # the five test files partition u.data
    for i in range(5):
        ratings[part == i].to_csv(data / f"u{i + 1}.test", sep="\t", header=False, index=False)
    cli_run("train", "movielens", "--data-dir", data, "--folds", "5", "--epochs", "1",
            "--set", 'validation.scheme="predefined"')
    run = only_run(workspace)
    rows = MovieLens().fold_rows(MovieLens().load(data, run.config()), run.config())
    folds = pd.read_csv(run.path("folds.csv"))["fold"].to_numpy()
    keyed = dict(zip(zip(ratings[0], ratings[1]), part))
    assert [keyed[(u, i)] for u, i in zip(rows["user"], rows["item"])] == folds.tolist()
    assert run.summary()["scheme"] == "predefined"
    (data / "u3.test").unlink()
    out = cli_run("train", "movielens", "--data-dir", data, "--folds", "5", "--set", 'validation.scheme="predefined"',
                  expect=2).output
    assert "needs u3.test" in out


def test_a_config_metric_from_the_registry_becomes_the_primary_score(cli_run, workspace, ml_data):
    out = cli_run("train", "movielens", "--data-dir", ml_data, "--epochs", "1", "--set", 'metric="mae"').output
    assert "validation mae" in out
    run = only_run(workspace)
    preds, targets = run.array("valid_preds.npy"), run.array("valid_targets.npy")
    assert run.summary()["primary_score"] == pytest.approx(float(np.mean(np.abs(preds - targets))), rel=1e-5)
    assert "rmse" in run.summary()["metrics"]  # the competition's own metrics are still reported


@pytest.mark.parametrize("metric, message", [("roc_auc", "roc_auc"), ("nope", "unknown metric")])
def test_a_config_metric_that_cannot_score_the_task_is_refused_before_training(cli_run, workspace, ml_data,
                                                                                metric, message):
    out = cli_run("train", "movielens", "--data-dir", ml_data, "--set", f'metric="{metric}"', expect=2).output
    assert message in out and not (workspace / "runs").exists()


def test_a_second_model_trains_on_the_first_runs_folds_and_a_bad_folds_file_is_named(cli_run, workspace, ml_data,
                                                                                     tmp_path):
    cli_run("train", "movielens", "--data-dir", ml_data, "--folds", "3", "--epochs", "1", "--set", "validation.split_seed=5")
    (first,) = Run.all(workspace, "movielens")
    cli_run("train", "movielens", "--data-dir", ml_data, "--folds-file", first.path("folds.csv"), "--epochs", "1",
            "--set", "model.kind=nn")
    second = [r for r in Run.all(workspace, "movielens") if r.id != first.id][0]
    assert pd.read_csv(second.path("folds.csv"))["fold"].equals(pd.read_csv(first.path("folds.csv"))["fold"])
    short = tmp_path / "short.csv"
    pd.read_csv(first.path("folds.csv")).iloc[:-5].to_csv(short, index=False)
    out = cli_run("train", "movielens", "--data-dir", ml_data, "--folds-file", short, expect=2).output
    assert str(short) in out and len(out.strip().splitlines()) == 1


def test_movielens_holdout_split_ignores_the_training_seed(ml_data):
    from harness.config.loading import apply_overrides

    comp = MovieLens()
    raw = comp.load(ml_data, comp.default_config())
    a = comp.split(raw, apply_overrides(comp.default_config(), {"seed": 1}))[1]
    b = comp.split(raw, apply_overrides(comp.default_config(), {"seed": 2}))[1]
    c = comp.split(raw, apply_overrides(comp.default_config(), {"validation.split_seed": 3}))[1]
    assert a.index.equals(b.index) and not a.index.equals(c.index)


def test_predict_and_explain_work_on_a_k_fold_run(cli_run, workspace, ml_data):
    cli_run("train", "movielens", "--data-dir", ml_data, "--folds", "3", "--epochs", "1")
    run = only_run(workspace)
    trained = pd.read_csv(run.path("submission.csv"))
    run.path("submission.csv").unlink()
    assert "submission:" in cli_run("predict", "movielens", "--data-dir", ml_data).output
    assert np.allclose(pd.read_csv(run.path("submission.csv"))["rating"], trained["rating"], atol=1e-6)
    out = cli_run("explain", "movielens").output
    assert "Highest item bias" in out


def test_repeated_folds_train_r_times_k_models_and_average_each_rows_oof_predictions(cli_run, workspace, ml_data):
    out = cli_run("train", "movielens", "--data-dir", ml_data, "--folds", "3", "--epochs", "1",
                  "--set", "validation.repeats=2").output
    run = only_run(workspace)
    folds = pd.read_csv(run.path("folds.csv"))
    assert list(folds.columns) == ["row", "fold_0", "fold_1"] and not folds["fold_0"].equals(folds["fold_1"])
    assert sorted(p.name for p in run.dir.glob("fold-*")) == [f"fold-{i}" for i in range(6)]
    ratings = run.array("oof_targets.npy")
    # model r*3 + k validated fold k of repeat r; a row's OOF prediction is the mean of its two
    per_repeat = np.full((2, len(folds)), np.nan)
    for i in range(6):
        repeat, fold = divmod(i, 3)
        rows = np.flatnonzero(folds[f"fold_{repeat}"].to_numpy() == fold)
        assert np.allclose(run.array(f"fold-{i}/valid_targets.npy"), ratings[rows])
        per_repeat[repeat, rows] = run.array(f"fold-{i}/valid_preds.npy")
    assert not np.isnan(per_repeat).any()
    assert np.allclose(run.array("oof_preds.npy"), per_repeat.mean(axis=0), atol=1e-6)
    summary = run.summary()
    rmse = lambda p: float(np.sqrt(np.mean((p - ratings) ** 2)))  # noqa: E731
    assert summary["cv_score"] == pytest.approx(rmse(per_repeat.mean(axis=0)), rel=1e-5)
    assert summary["repeat_scores"] == pytest.approx([rmse(per_repeat[0]), rmse(per_repeat[1])], rel=1e-5)
    assert summary["repeats"] == 2 and len(summary["fold_scores"]) == 6
    assert "fold 3/3 of repeat 2/2" in out and "CV rmse per repeat" in out
    assert len(pd.read_csv(run.path("cv.csv"))) == 6
    # two models on the same repeated folds blend, nested in the first repeat's folds
    cli_run("train", "movielens", "--data-dir", ml_data, "--folds-file", run.path("folds.csv"), "--epochs", "1",
            "--set", "seed=1")
    second = [r for r in Run.all(workspace, "movielens") if r.id != run.id][0]
    assert len(list(second.dir.glob("fold-*"))) == 6
    blend_out = cli_run("blend", "movielens", "--runs", f"{run.id},{second.id}", "--method", "weights").output
    assert "(honest: nested" in blend_out
    blend = Run.find(workspace, "movielens", "latest").summary()
    for member in (run, second):
        assert blend["member_cv_scores"][member.id] == pytest.approx(member.summary()["cv_score"], rel=1e-5)
