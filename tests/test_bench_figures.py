"""The MovieLens and Rossmann benchmarks: result sections, honest splits, and training as `harness train` does."""
import numpy as np
import pandas as pd
import pytest

from bench import bench_report, movielens_quality, rossmann_quality
from harness.runs import runner
from harness.config.loading import apply_overrides
from harness_plugins.movielens import MovieLens
from harness_plugins.rossmann import Rossmann


def test_section_is_appended_once_then_replaced_in_place(tmp_path):
    path = tmp_path / "results.md"
    path.write_text("# Title\n\nhand-written text\n")
    bench_report.write_section(path, "bench/a.py", "| a | 1 |")
    bench_report.write_section(path, "bench/b.py", "| b | 2 |")
    bench_report.write_section(path, "bench/a.py", "| a | 3 |")
    text = path.read_text()
    assert text.startswith("# Title\n\nhand-written text\n")
    assert "| a | 3 |" in text and "| a | 1 |" not in text and "| b | 2 |" in text
    assert text.count(bench_report.markers("bench/a.py")[0]) == 1
    assert text.index("| a | 3 |") < text.index("| b | 2 |")  # replaced where it was
    assert [p.name for p in tmp_path.iterdir()] == ["results.md"]  # no temporary file left


def test_command_line_names_the_script_from_the_repository_root():
    script = str(bench_report.ROOT / "bench" / "movielens_quality.py")
    python = str(bench_report.ROOT / ".venv" / "bin" / "python")
    line = bench_report.command_line([script, "--seeds", "1,2", "--out", "a b.md"], python)
    assert line == ".venv/bin/python bench/movielens_quality.py --seeds 1,2 --out 'a b.md'"
    other = bench_report.command_line([script], "/opt/fastai-env/bin/python")
    assert other == "/opt/fastai-env/bin/python bench/movielens_quality.py"


def test_environment_states_date_machine_and_commit():
    text = "\n".join(bench_report.environment({"LightGBM": "9.9"}))
    assert "UTC" in text and "`nproc`" in text and "`uname -m`" in text and "LightGBM 9.9" in text
    assert "torch kernels " in text  # the network's figures depend on the CPU's kernels, not only its name
    assert bench_report.git_state().split()[0] in text


def ratings(n=1000, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"user": rng.integers(1, 50, n), "item": rng.integers(1, 80, n),
                         "rating": rng.integers(1, 6, n).astype(float)}).drop_duplicates(["user", "item"])


def test_validation_split_of_base_is_disjoint_complete_and_seeded():
    base = ratings()
    fit, valid = movielens_quality.validation_split(base, 0.1, seed=3)
    assert len(valid) == round(0.1 * len(base)) and len(fit) + len(valid) == len(base)
    assert set(fit.index).isdisjoint(valid.index) and set(fit.index) | set(valid.index) == set(base.index)
    again = movielens_quality.validation_split(base, 0.1, seed=3)[1]
    other = movielens_quality.validation_split(base, 0.1, seed=4)[1]
    assert list(again.index) == list(valid.index) and list(other.index) != list(valid.index)


def test_best_candidate_is_the_lowest_score_first_on_a_tie():
    a, b, c = {"model.l2": 0.05}, {"model.l2": 0.12}, {"model.l2": 0.2}
    assert movielens_quality.best([(a, 0.93), (b, 0.91), (c, 0.91)]) is b


def test_grids_cover_the_l2_values_and_weight_decay():
    l2s = {g["model.l2"] for g in movielens_quality.GRIDS["dot"]}
    assert {0.05, 0.08, 0.12, 0.2} <= l2s
    assert any(g["model.l2"] == 0.0 and g.get("train.wd", 0) > 0 for g in movielens_quality.GRIDS["dot"])
    config = MovieLens().default_config()
    for grid in movielens_quality.GRIDS.values():  # every key is a real config key of the right type
        for overrides in grid:
            apply_overrides(config, overrides)


def test_fit_score_on_a_predefined_split_equals_harness_train(tmp_path):
    data = tmp_path / "ml"
    MovieLens().write_sample(data, n_users=60, n_items=40, n_ratings=2000)
    base = movielens_quality.read_ratings(data / "u1.base")
    test = movielens_quality.read_ratings(data / "u1.test")
    overrides = {"train.epochs": 2, "train.batch_size": 128, "model.l2": 0.05}
    score, _ = movielens_quality.fit_score(base, test, overrides, seed=7)
    comp = MovieLens()
    config = apply_overrides(comp.default_config(), {**overrides, "seed": 7, "data.split": "u1"})
    run = runner.train(comp, config, data, tmp_path / "ws", device="cpu", echo=False)
    assert score == pytest.approx(run.summary()["primary_score"], abs=1e-6)


@pytest.fixture(scope="module")
def rossmann_frame(tmp_path_factory):
    path = tmp_path_factory.mktemp("rossmann")
    Rossmann().write_sample(path)
    comp = Rossmann()
    config = comp.default_config()
    raw = comp.load(path, config)
    return comp, config, raw, comp.features(raw, config)


def test_tuning_window_is_the_same_length_just_before_the_reported_one(rossmann_frame):
    comp, config, _, frame = rossmann_frame
    days = config["data"]["valid_days"]
    train, valid = rossmann_quality.window_masks(comp, frame, config, tuning=False)
    tune_train, tune_valid = rossmann_quality.window_masks(comp, frame, config, tuning=True)
    dates = frame["Date"]
    assert not (tune_valid & valid).any() and not (tune_train & valid).any() and not (tune_train & tune_valid).any()
    last, day = dates[valid].max(), pd.Timedelta(days=1)
    # calendar windows (a closed first day has no rows with sales, so compare with the bounds)
    assert dates[valid].between(last - (days - 1) * day, last).all()
    assert dates[tune_valid].between(last - (2 * days - 1) * day, last - days * day).all()
    assert dates[tune_valid].max() == last - days * day
    assert (dates[tune_train] < last - (2 * days - 1) * day).all()
    assert (tune_valid | tune_train).sum() == train.sum()  # the reported window's training rows, re-split


def test_window_follows_the_configs_valid_days(rossmann_frame):
    comp, config, _, frame = rossmann_frame
    config = apply_overrides(config, {"data.valid_days": 20})
    _, valid = rossmann_quality.window_masks(comp, frame, config, tuning=False)
    _, tune_valid = rossmann_quality.window_masks(comp, frame, config, tuning=True)
    dates = frame["Date"]
    last, day = dates[valid].max(), pd.Timedelta(days=1)
    assert dates[valid].between(last - 19 * day, last).all() and dates[valid].min() <= last - 18 * day
    assert dates[tune_valid].between(last - 39 * day, last - 20 * day).all()


def test_tuning_window_network_validates_on_the_tuning_window(rossmann_frame):
    comp, config, raw, frame = rossmann_frame
    config = apply_overrides(config, {"train.epochs": 1})
    _, tune_valid = rossmann_quality.window_masks(comp, frame, config, tuning=True)
    prepared = rossmann_quality.TuningWindow().prepare(raw, config)
    assert prepared.valid_dl.n_rows == tune_valid.sum()
    score, _ = rossmann_quality.network_score(rossmann_quality.TuningWindow(), raw, config, seed=0)
    assert np.isfinite(score) and score > 0  # one epoch on the tiny sample: scored, not good


def test_lightgbm_features_are_fitted_on_the_training_rows_only(rossmann_frame):
    pytest.importorskip("lightgbm")
    comp, config, raw, frame = rossmann_frame
    train, valid = rossmann_quality.window_masks(comp, frame, config, tuning=True)
    (x_fit, y_fit), (x_valid, y_valid), n_cat = rossmann_quality.lightgbm_matrices(comp, raw, frame, config,
                                                                                 train, valid)
    assert x_fit.shape[0] == train.sum() and x_valid.shape[0] == valid.sum()
    assert np.allclose(np.exp(y_valid), frame["Sales"][valid])
    # continuous columns (before the _na flags) are normalised with the training rows' statistics
    n_cont = len(comp.columns(raw, config)[1])
    assert abs(x_fit[:, n_cat:n_cat + n_cont].mean(axis=0)).max() < 1e-3
    assert abs(x_valid[:, n_cat:n_cat + n_cont].mean(axis=0)).max() > 1e-3
    score, _ = rossmann_quality.lightgbm_score((x_fit, y_fit), (x_valid, y_valid), n_cat,
                                               {"objective": "regression"}, 20, seed=0)
    assert 0 < score < 1
