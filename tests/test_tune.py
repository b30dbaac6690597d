"""`harness tune` / `harness blend` on generated MovieLens data with the default SQLite storage."""
import numpy as np
import optuna
import pandas as pd
import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.metrics import rmse_fn
from harness.runs import Run
from harness.tune.study import default_storage, load_study, make_storage

FAST = ["--set", "train.epochs=2"]


def invoke(ws, *args, expect=0):
    result = CliRunner().invoke(cli, ["--workspace", str(ws), *map(str, args)], catch_exceptions=False)
    if expect is not None:
        assert result.exit_code == expect, f"exit {result.exit_code}:\n{result.output}"
    return result


def small_sample(ws):
    """MovieLens files in the ml-100k layout, small enough that a two-epoch trial takes a moment."""
    from harness.plugins import get_competition

    get_competition("movielens").write_sample(ws / "data" / "movielens", seed=0, n_users=120, n_items=80,
                                              n_ratings=4000)


def open_study(ws, name="movielens"):
    return load_study(make_storage(default_storage(ws), ws), name)


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    """A workspace with MovieLens sample data and a three-trial study (random sampler, seeded)."""
    ws = tmp_path_factory.mktemp("tune") / "ws"
    small_sample(ws)
    invoke(ws, "tune", "movielens", "--trials", 3, "--sampler", "random", "--seed", 0, "--pruner", "none", *FAST)
    return ws


def test_three_trial_study_keeps_runs_and_predictions(tuned):
    study = open_study(tuned)
    trials = study.get_trials()
    assert [t.number for t in trials[:3]] == [0, 1, 2]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials[:3])
    assert len({tuple(sorted(t.params.items())) for t in trials[:3]}) == 3  # three different points
    for t in trials[:3]:
        run = Run(tuned / "runs" / "movielens" / t.user_attrs["run"])
        for name in ("valid_preds.npy", "valid_targets.npy", "test_preds.npy", "submission.csv"):
            assert run.path(name).exists(), name
        assert run.summary()["primary_score"] == pytest.approx(t.value)
        config = run.config()
        for key, value in t.params.items():  # the run trained with the trial's parameters
            section, leaf = key.split(".")
            assert config[section][leaf] == pytest.approx(value)
        assert t.intermediate_values and len(t.intermediate_values) == 2  # pruning reports every epoch


def test_rerun_continues_the_study(tuned):
    before = {t.number: t.value for t in open_study(tuned).get_trials()}
    invoke(tuned, "tune", "movielens", "--trials", 1, "--sampler", "random", "--pruner", "none", *FAST)
    after = open_study(tuned).get_trials()
    numbers = [t.number for t in after]
    assert numbers == list(range(len(before) + 1))
    assert {t.number: t.value for t in after if t.number in before} == before
    assert len({t.user_attrs["run"] for t in after}) == len(after)


def test_show_prints_best_trial_and_writes_plots(tuned):
    result = invoke(tuned, "tune", "movielens", "--show")
    best = open_study(tuned).best_trial
    assert f"best: trial {best.number}, value {best.value:.6f}" in result.output
    assert "parameter importances" in result.output
    for name in ("history.png", "importances.png", "parallel_coordinates.png"):
        path = tuned / "tune" / "movielens" / name
        assert path.read_bytes()[:4] == b"\x89PNG", name
    table = pd.read_csv(tuned / "tune" / "movielens" / "trials.csv")
    assert len(table) == len(open_study(tuned).get_trials())


def test_exported_config_reproduces_the_trial(tuned, tmp_path):
    study = open_study(tuned)
    trial = sorted(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)), key=lambda t: t.value)[1]
    exported = tmp_path / "trial.toml"
    invoke(tuned, "tune", "movielens", "--export", exported, "--trial", trial.number)
    result = invoke(tuned, "train", "movielens", "--config", exported)
    run = Run.find(tuned, "movielens", result.output.split("run folder: ")[1].split()[0].rsplit("/", 1)[1])
    assert run.summary()["primary_score"] == pytest.approx(trial.value, abs=1e-6)


def test_blend_is_scored_on_validation_predictions_only(tuned):
    study = open_study(tuned)
    top = sorted(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)), key=lambda t: t.value)[:3]
    runs = [Run(tuned / "runs" / "movielens" / t.user_attrs["run"]) for t in top]
    targets = runs[0].array("valid_targets.npy")
    expected = rmse_fn(np.mean([r.array("valid_preds.npy") for r in runs], axis=0), targets)

    first = invoke(tuned, "blend", "movielens", "--top-k", 3)
    assert f"validation rmse = {expected:.6f}" in first.output
    assert f"best single trial {top[0].number}: {top[0].value:.6f}" in first.output
    blend_run = Run.find(tuned, "movielens", "latest")
    assert blend_run.summary()["trials"] == [t.number for t in top]
    assert blend_run.summary()["primary_score"] == pytest.approx(expected)
    subs = [pd.read_csv(r.path("submission.csv")) for r in runs]
    blended = pd.read_csv(blend_run.path("submission.csv"))
    assert blended["id"].tolist() == subs[0]["id"].tolist()
    np.testing.assert_allclose(blended["rating"], np.mean([s["rating"] for s in subs], axis=0), rtol=1e-6)

    # Wreck the trials' test predictions: the blend's score must not move, its submission must.
    for r, sub in zip(runs, subs):
        r.save_array("test_preds.npy", r.array("test_preds.npy") * 0 + 99)
        sub.assign(rating=99.0).to_csv(r.path("submission.csv"), index=False)
    again = invoke(tuned, "blend", "movielens", "--top-k", 3)
    assert f"validation rmse = {expected:.6f}" in again.output
    assert (pd.read_csv(Run.find(tuned, "movielens", "latest").path("submission.csv"))["rating"] == 99.0).all()


def test_a_failing_trial_is_recorded_and_the_search_goes_on(tmp_path):
    ws = tmp_path / "ws"
    small_sample(ws)
    config = tmp_path / "search.toml"
    from harness.config import dump_config
    from harness.plugins import get_competition

    base = get_competition("movielens").default_config()
    base["train"]["epochs"] = 1
    base["search"] = {"model.kind": {"type": "categorical", "choices": ["dot", "bogus"]}}
    config.write_text(dump_config(base))
    result = invoke(ws, "tune", "movielens", "--trials", 4, "--config", config, "--sampler", "random", "--seed", 1)
    trials = open_study(ws).get_trials()
    assert len(trials) == 4
    failed = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert failed and done, [t.params for t in trials]
    assert all(t.params["model.kind"] == "bogus" and "bogus" in t.user_attrs["error"] for t in failed)
    assert all(t.params["model.kind"] == "dot" for t in done)
    assert f"trial {failed[0].number} failed: HarnessError" in result.output


def test_unknown_search_key_is_one_clear_error(tmp_path):
    ws = tmp_path / "ws"
    small_sample(ws)
    config = tmp_path / "bad.toml"
    from harness.config import dump_config
    from harness.plugins import get_competition

    base = get_competition("movielens").default_config()
    base["search"] = {"model.n_factor": {"type": "int", "low": 5, "high": 10}}
    config.write_text(dump_config(base))
    result = invoke(ws, "tune", "movielens", "--trials", 1, "--config", config, expect=2)
    assert "model.n_factor" in result.output and "Traceback" not in result.output
    result = invoke(ws, "tune", "movielens", "--show", "--study", "nope", expect=2)
    assert "no study 'nope'" in result.output
