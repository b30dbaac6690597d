"""`harness tune` / `harness blend` on generated MovieLens data with the default SQLite storage."""
import re
import time

import numpy as np
import optuna
import pandas as pd
import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.scoring.metrics import rmse_fn
from harness.runs.folder import Run
from harness.tune.pruning import recipe_epochs
from harness.tune.study import default_storage, load_study, make_pruner, make_storage, optimize

FAST = ["--set", "train.epochs=2"]


def invoke(ws, *args, expect=0):
    result = CliRunner().invoke(cli, ["--workspace", str(ws), *map(str, args)], catch_exceptions=False)
    if expect is not None:
        assert result.exit_code == expect, f"exit {result.exit_code}:\n{result.output}"
    return result


def small_sample(ws):
    """MovieLens files in the ml-100k layout, small enough that a two-epoch trial takes a moment."""
    from harness.host.plugins import get_competition

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
    from harness.config.loading import dump_config
    from harness.host.plugins import get_competition

    base = get_competition("movielens").default_config()
    base["train"]["epochs"] = 1
    # A split the config allows but the sample data lacks (it has u1 only): those trials fail in training.
    base["search"] = {"data.split": {"type": "categorical", "choices": ["random", "u2"]}}
    config.write_text(dump_config(base))
    result = invoke(ws, "tune", "movielens", "--trials", 4, "--config", config, "--sampler", "random", "--seed", 1)
    trials = open_study(ws).get_trials()
    assert len(trials) == 4
    failed = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert failed and done, [t.params for t in trials]
    assert all(t.params["data.split"] == "u2" and "u2.base" in t.user_attrs["error"] for t in failed)
    assert all(t.params["data.split"] == "random" for t in done)
    assert f"trial {failed[0].number} failed: HarnessError" in result.output


def test_unknown_search_key_is_one_clear_error(tmp_path):
    ws = tmp_path / "ws"
    small_sample(ws)
    config = tmp_path / "bad.toml"
    from harness.config.loading import dump_config
    from harness.host.plugins import get_competition

    base = get_competition("movielens").default_config()
    base["search"] = {"model.n_factor": {"type": "int", "low": 5, "high": 10}}
    config.write_text(dump_config(base))
    result = invoke(ws, "tune", "movielens", "--trials", 1, "--config", config, expect=2)
    assert "model.n_factor" in result.output and "Traceback" not in result.output
    result = invoke(ws, "tune", "movielens", "--show", "--study", "nope", expect=2)
    assert "no study 'nope'" in result.output


# ---------------------------------------------------------------------- the progress bar
BAR_FRAME = re.compile(r"(\d+)/(\d+) \[[^\]]*best ([\d.]+) \(trial (\d+)\)\]")


def scripted_objective(values):
    """Trial n returns values[n]; None stands for a trial that raises."""
    def objective(trial):
        trial.suggest_float("x", 0, 1)
        if values[trial.number] is None:
            raise ValueError("scripted failure")
        return values[trial.number]
    return objective


def test_tune_bar_shows_each_trials_own_best(capsys):
    values = [0.5, 0.3, None, 0.1, 0.4]
    study = optuna.create_study(study_name="bar", direction="minimize")
    optimize(study, scripted_objective(values), n_trials=len(values), timeout=None, progress=True)
    err = capsys.readouterr().err
    frames = [(int(done), float(best), int(number)) for done, _, best, number in BAR_FRAME.findall(err)]
    assert frames and frames[-1][0] == len(values)
    for done, best, number in frames:  # the frame drawn after trial `done` shows the best of the first `done`
        finished = [(v, i) for i, v in enumerate(values[:done]) if v is not None]
        assert (best, number) == min(finished), (done, best, number)
    assert frames[-1][1:] == (round(study.best_value, 5), study.best_trial.number)
    assert "trial 2 failed" in err


def test_tune_bar_is_off_when_not_on_a_terminal(capsys):
    values = [0.5, None, 0.2]
    study = optuna.create_study(study_name="piped", direction="minimize")
    optimize(study, scripted_objective(values), n_trials=len(values), timeout=None)  # stderr is captured: no tty
    err = capsys.readouterr().err
    assert "\r" not in err and "best" not in err
    assert err.splitlines() == ["trial 1 failed: see the log"]  # lines beside the bar still come through


# ---------------------------------------------------------------------- pruning counts real epochs
@pytest.mark.parametrize("train, epochs", [
    ({"epochs": 4, "schedule": "one-cycle"}, 4),
    ({"epochs": 3, "schedule": "sgdr", "cycle_len": 1, "cycle_mult": 2}, 1 + 2 + 4),
    ({"epochs": 2, "schedule": "sgdr", "cycle_len": 3, "cycle_mult": 1}, 3 + 3),
    ({"epochs": 2, "schedule": "one-cycle", "stages": [{"freeze_to": -1}, {"freeze_to": 0, "epochs": 3}]}, 2 + 3),
    ({"epochs": 2, "schedule": "one-cycle", "frozen_epochs": 1, "unfreeze_cycles": 3, "cycle_len": 1,
      "cycle_mult": 2}, 2 + 1 + (1 + 2 + 4)),
])
def test_recipe_epochs_counts_epochs_not_cycles(train, epochs):
    assert recipe_epochs(object(), {"train": train}) == epochs


def test_a_competition_may_say_its_own_recipe_length():
    class OwnRecipe:
        def recipe_epochs(self, config):
            return 2 * config["train"]["epochs"]

    assert recipe_epochs(OwnRecipe(), {"train": {"epochs": 5, "schedule": "sgdr", "cycle_mult": 2}}) == 10


def test_median_pruner_waits_half_the_sgdr_epochs():
    config = {"train": {"epochs": 3, "schedule": "sgdr", "cycle_len": 1, "cycle_mult": 2}}  # 7 epochs
    study = optuna.create_study(direction="minimize", pruner=make_pruner("median", recipe_epochs(object(), config)))
    for _ in range(5):  # the pruner's startup trials, good at every epoch
        trial = study.ask()
        for step in range(1, 8):
            trial.report(0.1, step)
        study.tell(trial, 0.1)
    bad = study.ask()
    pruned_at = None
    for step in range(1, 8):
        bad.report(1.0, step)
        if bad.should_prune():
            pruned_at = step
            break
    assert pruned_at == 4  # not at epoch 2 (half the 3 cycles), but at half the 7 epochs


def test_an_sgdr_trial_reports_every_epoch_of_its_cycles(tmp_path):
    ws = tmp_path / "ws"
    small_sample(ws)
    sgdr = ["--set", "train.schedule=sgdr", "--set", "train.epochs=2", "--set", "train.cycle_mult=2"]
    result = invoke(ws, "tune", "movielens", "--trials", 1, "--sampler", "random", "--seed", 0, *sgdr)
    (trial,) = open_study(ws).get_trials()
    assert trial.state == optuna.trial.TrialState.COMPLETE
    assert sorted(trial.intermediate_values) == [1, 2, 3]  # 2 cycles of 1 and 2 epochs
    assert "\r" not in result.output  # the CLI's stderr is no terminal: no bar frames


# ---------------------------------------------------------------------- bad input to `harness tune`
def tune_error(ws, *args) -> str:
    result = invoke(ws, "tune", "movielens", *args, expect=2)
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.mark.parametrize("args, expected", [
    (["--trials", 0], "--trials 0: run at least one trial"),
    (["--trials", -2], "--trials -2: run at least one trial"),
    (["--timeout", 0], "--timeout 0: give a number of seconds above 0"),
    (["--trials", 1, "--heartbeat", 0], "--heartbeat 0: give a number of seconds of at least 1"),
])
def test_a_search_of_no_length_is_one_clear_error(tmp_path, args, expected):
    assert expected in tune_error(tmp_path / "ws", *args)
    assert not (tmp_path / "ws" / "runs").exists()


@pytest.mark.parametrize("seed", [-1, 2**32, 99999999999999999999])
def test_a_seed_numpy_cannot_take_is_one_clear_error(tmp_path, seed):
    assert tune_error(tmp_path / "ws", "--trials", 1, "--seed", seed) == \
        f"error: --seed {seed}: give a whole number from 0 to 4294967295"
    assert not (tmp_path / "ws" / "runs").exists() and not (tmp_path / "ws" / "tune").exists()


def test_the_largest_seed_still_seeds_a_worker_after_the_first():
    from harness.tune.study import make_sampler

    def draw(seed):
        return optuna.create_study(sampler=make_sampler("random", seed)).ask().suggest_float("x", 0, 1)

    # tune --devices and auto add a worker's rank, or the trials so far, to --seed: past 2**32 - 1, it wraps.
    assert draw(2**32 - 1 + 3) == draw(2)


def test_unopenable_storages_are_one_clear_error(tmp_path):
    ws = tmp_path / "ws"
    small_sample(ws)
    folder = tmp_path / "a-folder"
    folder.mkdir()
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is no database, or one cut short" * 20)
    cases = [
        (f"sqlite:///{tmp_path}/missing/optuna.db", f"the folder {tmp_path}/missing does not exist"),
        (f"sqlite:///{folder}", f"{folder} is a directory"),
        (f"sqlite:///{garbage}", f"cannot open study storage sqlite:///{garbage}: "),
        (f"journal:{folder}", f"{folder} is a directory"),
        ("optuna.db", "give a database URL"),
    ]
    for url, expected in cases:
        line = tune_error(ws, "--trials", 1, "--storage", url)
        assert expected in line, (url, line)
    assert not (ws / "runs").exists()


@pytest.mark.parametrize("content", [bytes(range(256)) * 8, b"hello world\n", b'{"op_code": 99}\n', b"[1, 2]\n"],
                         ids=["binary", "text", "unknown-op", "json-not-an-op"])
def test_a_file_that_is_no_journal_is_one_clear_error_and_left_alone(tmp_path, content):
    ws = tmp_path / "ws"
    small_sample(ws)
    journal = tmp_path / "j.log"
    journal.write_bytes(content)
    for args in (["--trials", 1], ["--show"]):
        line = tune_error(ws, *args, "--storage", f"journal:{journal}")
        assert f"{journal} is not an Optuna journal file; give another path or remove it" in line, line
    assert journal.read_bytes() == content  # Optuna appended nothing
    assert not (ws / "runs").exists()


def test_a_journal_below_a_file_names_the_file(tmp_path):
    ws = tmp_path / "ws"
    small_sample(ws)
    (tmp_path / "ro").write_text("a file")
    line = tune_error(ws, "--show", "--storage", f"journal:{tmp_path}/ro/j.log")
    assert f"{tmp_path}/ro is a file, not a folder" in line, line


def test_a_postgres_server_that_refuses_is_one_clear_error_at_once(tmp_path):
    pytest.importorskip("psycopg2", reason="psycopg2 is not installed (pip install 'harness[postgres]')")
    ws = tmp_path / "ws"
    small_sample(ws)
    started = time.monotonic()
    line = tune_error(ws, "--trials", 1, "--storage", "postgresql://postgres@127.0.0.1:1/test")  # port 1: refused
    assert "cannot open study storage postgresql://postgres@127.0.0.1:1/test" in line and "port 1" in line
    assert time.monotonic() - started < 30


def test_a_study_name_of_another_competition_is_refused(tmp_path):
    from harness.tune.study import open_study as create

    ws = tmp_path / "ws"
    small_sample(ws)
    create(make_storage(default_storage(ws), ws), "shared", "minimize", competition="rossmann")
    line = tune_error(ws, "--trials", 1, "--study", "shared")
    assert "study 'shared' in this storage is a study of rossmann, not movielens" in line and "--study" in line
    assert "a study of rossmann" in tune_error(ws, "--show", "--study", "shared")
    assert open_study(ws, "shared").get_trials() == []  # no trial of movielens went into it


def test_trial_without_export_is_one_clear_error(tmp_path):
    assert tune_error(tmp_path / "ws", "--trials", 1, "--trial", 0) == \
        "error: --trial 0 picks the trial to export: add --export FILE"
    assert not (tmp_path / "ws" / "tune").exists()
