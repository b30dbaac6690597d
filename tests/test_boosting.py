"""Gradient boosting behind the Learner's protocol: it learns each task, emits raw outputs on the task's
scale, saves and reloads exactly, is deterministic, never lets the validation rows steer training
(early stopping watches an inner split of the training rows), and fills a recorder the run folder saves."""
import numpy as np
import pytest
from scipy.special import expit, softmax

from harness.errors import HarnessError
from harness.runs.folder import Run
from harness.scoring.metrics import learner_metric
from harness.train.boosting import BoostingLearner, inner_split, refit_rounds, task_loss

lgb = pytest.importorskip("lightgbm")

FAST = {"n_estimators": 300, "learning_rate": 0.1, "num_leaves": 15, "min_child_samples": 10,
        "early_stopping_rounds": 20, "num_threads": 1}
METRIC = {"regression": "rmse", "binary": "roc_auc", "multiclass": "log_loss"}


def make_data(kind, n=900, seed=0, noise=0.3):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    signal = 2 * X[:, 0] + np.sin(3 * X[:, 1]) - X[:, 2] * X[:, 3]
    if kind == "regression":
        y = signal + noise * rng.normal(size=n)
    elif kind == "binary":
        y = (rng.random(n) < expit(signal)).astype(np.int64)
    else:
        scores = np.stack([signal, -signal, X[:, 4] * 2], axis=1) + noise * rng.normal(size=(n, 3))
        y = scores.argmax(axis=1)
    cut = int(n * 0.75)
    return (X[:cut], y[:cut]), (X[cut:], y[cut:])


def make(kind, train, valid, params=None, **kwargs):
    kwargs.setdefault("echo", False)
    kwargs.setdefault("progress", False)
    metrics = [learner_metric(METRIC[kind], kind)]
    return BoostingLearner(kind, train, valid, metrics, {**FAST, **(params or {})}, **kwargs)


def baseline_loss(kind, train, valid):
    """The task's loss of the best constant fitted on the training rows."""
    y_train, y_valid = train[1], valid[1]
    if kind == "regression":
        const = np.full(len(y_valid), y_train.mean())
    elif kind == "binary":
        const = np.full(len(y_valid), np.log(y_train.mean() / (1 - y_train.mean())))
    else:
        prior = np.bincount(y_train, minlength=3) / len(y_train)
        const = np.tile(np.log(prior), (len(y_valid), 1))
    return task_loss(kind, const, y_valid)


@pytest.mark.parametrize("kind", ["regression", "binary", "multiclass"])
def test_each_task_learns_and_beats_a_constant_on_the_validation_rows(kind):
    train, valid = make_data(kind)
    learn = make(kind, train, valid)
    learn.fit(5, 1e-3)  # a network's fit arguments are ignored
    assert learn.valid_loss < 0.8 * baseline_loss(kind, train, valid)
    assert set(learn.metrics) == {METRIC[kind]} and learn.primary_score == learn.metrics[METRIC[kind]]
    assert np.isfinite(learn.primary_score)
    if kind == "binary":
        assert learn.primary_score > 0.8
    assert np.array_equal(learn.valid_targets, valid[1])
    assert learn.valid_preds.shape[0] == len(valid[1])
    assert learn.device == "cpu" and learn.valid_dl is not None
    # validate() again gives the same figures
    loss, metrics = learn.validate()
    assert loss == learn.valid_loss and metrics == learn.metrics


@pytest.mark.parametrize("kind", ["regression", "binary", "multiclass"])
def test_predict_gives_raw_outputs_on_the_tasks_scale(kind):
    train, valid = make_data(kind)
    learn = make(kind, train, valid)
    learn.fit()
    out = learn.predict(valid[0])
    assert out.dtype == np.float64 and np.all(np.isfinite(out))
    probabilities = learn.booster.predict(valid[0], num_iteration=learn.rounds)  # LightGBM's own
    if kind == "regression":
        assert out.shape == (len(valid[0]),)
        np.testing.assert_allclose(out, probabilities)
    elif kind == "binary":
        assert out.shape == (len(valid[0]),)
        assert out.min() < 0 < out.max()  # logits, not probabilities
        np.testing.assert_allclose(expit(out), probabilities, rtol=1e-10, atol=1e-12)
    else:
        assert out.shape == (len(valid[0]), 3)
        np.testing.assert_allclose(softmax(out, axis=1), probabilities, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", ["binary", "multiclass"])
def test_save_and_load_round_trip_gives_identical_predictions(kind, tmp_path):
    train, valid = make_data(kind)
    learn = make(kind, train, valid, feature_names=["a b", "c:d", "e", "f", "g"], categorical=())
    learn.fit()
    learn.save_model(tmp_path / "model.pt")
    assert not [p for p in tmp_path.iterdir() if p.name != "model.pt"]  # no temporary file left behind
    fresh = make(kind, None, None)  # a learner made only to load and predict
    fresh.load_model(tmp_path / "model.pt")
    assert np.array_equal(fresh.predict(valid[0]), learn.predict(valid[0]))
    assert fresh.rounds == learn.rounds and fresh.best_iteration == learn.best_iteration
    text = fresh.describe()
    assert "LightGBM" in text and f"{learn.rounds} rounds" in text and "a b" in text and "5 features" in text
    with pytest.raises(HarnessError, match="without training rows"):
        fresh.fit()


def test_loading_a_damaged_or_foreign_file_is_a_harness_error(tmp_path):
    train, valid = make_data("binary")
    learn = make("binary", train, valid)
    learn.fit()
    good = tmp_path / "model.pt"
    learn.save_model(good)
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    torch_like = tmp_path / "torch.pt"
    torch_like.write_bytes(b"PK\x03\x04\x00\x00\x80\x02}q\x00(X")
    for path in (cut, torch_like, tmp_path / "missing.pt"):
        with pytest.raises(HarnessError, match="not a readable gbm model"):
            make("binary", None, None).load_model(path)
    with pytest.raises(HarnessError, match="binary gbm model, but this is a regression task"):
        make("regression", None, None).load_model(good)


def test_same_seed_same_data_gives_identical_predictions_and_another_seed_differs():
    train, valid = make_data("regression")
    params = {"feature_fraction": 0.7, "bagging_fraction": 0.7, "bagging_freq": 1}
    runs = [make("regression", train, valid, params, seed=s) for s in (3, 3, 4)]
    for learn in runs:
        learn.fit()
    a, b, c = (learn.predict(valid[0]) for learn in runs)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_the_validation_rows_never_influence_training():
    train, valid = make_data("binary")
    rng = np.random.default_rng(1)
    other = (valid[0] + rng.normal(size=valid[0].shape), 1 - valid[1])  # other features, flipped targets
    models = []
    for v in (valid, other, None):
        learn = make("binary", train, v)
        learn.fit()
        models.append(learn)
    strings = [m.booster.model_to_string(num_iteration=m.rounds) for m in models]
    assert strings[0] == strings[1] == strings[2]
    assert models[0].best_iteration == models[1].best_iteration == models[2].best_iteration
    assert np.array_equal(models[0].predict(valid[0]), models[1].predict(valid[0]))
    # the flipped targets are scored, not learned: the same model scores far worse on them
    assert models[1].valid_loss > models[0].valid_loss
    assert np.isnan(models[2].valid_loss) and models[2].metrics == {} and models[2].valid_preds is None


def test_early_stopping_picks_rounds_on_the_inner_split_and_refit_scales_them():
    train, valid = make_data("regression", noise=3.0)  # noisy: it overfits soon
    params = {"n_estimators": 500, "learning_rate": 0.2}
    learn = make("regression", train, valid, params, seed=5)
    learn.fit()
    assert 1 <= learn.best_iteration < 500
    assert learn.rounds == refit_rounds(learn.best_iteration, 0.1) == round(learn.best_iteration / 0.9)
    assert learn.booster.current_iteration() == learn.rounds
    # the same count as LightGBM's own early stopping on the same inner split of the training rows
    X, y = train
    fit_rows, stop_rows = inner_split(y, 0.1, stratify=False, seed=5)
    assert len(stop_rows) == round(0.1 * len(y)) and not set(fit_rows) & set(stop_rows)
    lgb_params = {"objective": "regression", "metric": "l2", "learning_rate": 0.2, "num_leaves": 15,
                  "min_child_samples": 10, "num_threads": 1, "seed": 5, "deterministic": True,
                  "force_col_wise": True, "verbosity": -1}
    fit_set = lgb.Dataset(X[fit_rows], y[fit_rows], params=lgb_params)
    stop_set = lgb.Dataset(X[stop_rows], y[stop_rows], reference=fit_set)
    own = lgb.train(lgb_params, fit_set, 500, valid_sets=[stop_set], callbacks=[lgb.early_stopping(20, verbose=False)])
    assert own.best_iteration == learn.best_iteration
    # the history is the final model's rounds, with the inner curve the count was chosen on
    history = learn.recorder.history
    assert len(history) == learn.rounds and history[-1]["epoch"] == learn.rounds
    inner = [row["inner_valid_loss"] for row in history[:learn.best_iteration]]
    assert int(np.argmin(inner)) + 1 == learn.best_iteration
    # without refit the model is the inner fit's, cut at its best round
    kept = make("regression", train, valid, {**params, "refit": False}, seed=5)
    kept.fit()
    assert kept.best_iteration == learn.best_iteration and kept.rounds == kept.best_iteration


def test_classification_inner_split_is_stratified_and_keeps_every_class_to_fit():
    y = np.array([0] * 90 + [1] * 10 + [2])
    fit_rows, stop_rows = inner_split(y, 0.1, stratify=True, seed=0)
    assert np.bincount(y[stop_rows], minlength=3).tolist() == [9, 1, 0]
    assert set(y[fit_rows]) == {0, 1, 2}


def test_no_early_stopping_trains_every_round_without_an_inner_split():
    train, valid = make_data("multiclass")
    learn = make("multiclass", train, valid, {"early_stopping_rounds": 0, "n_estimators": 40})
    learn.fit()
    assert learn.rounds == learn.best_iteration == 40
    assert "inner_valid_loss" not in learn.recorder.history[0]


def test_multiclass_width_comes_from_n_classes_when_a_fold_lacks_a_class():
    train, valid = make_data("multiclass", n=400)
    learn = make("multiclass", train, valid, {"early_stopping_rounds": 0, "n_estimators": 20}, n_classes=4)
    learn.fit()
    assert learn.predict(valid[0]).shape == (len(valid[0]), 4)
    with pytest.raises(HarnessError, match="holds class 2, but the task has classes 0..1"):
        make("multiclass", train, valid, n_classes=2)


def test_native_categorical_splits_beat_ordinal_codes_on_a_non_monotone_signal():
    rng = np.random.default_rng(0)
    n, k = 3000, 20
    codes = rng.integers(1, k + 1, size=n)  # 0 is kept for missing or unseen
    effect = rng.permutation(np.linspace(-2, 2, k + 1))  # no order in the codes
    X = np.column_stack([codes, rng.normal(size=n)]).astype(np.float64)
    y = effect[codes] + 0.3 * rng.normal(size=n)
    train, valid = (X[:2200], y[:2200]), (X[2200:], y[2200:])
    params = {"num_leaves": 4, "n_estimators": 60, "early_stopping_rounds": 0}
    losses = {}
    for mode in ("native", "ordinal"):
        learn = make("regression", train, valid, {**params, "categorical": mode}, categorical=[0],
                     feature_names=["store", "x"])
        learn.fit()
        losses[mode] = learn.valid_loss
    assert losses["native"] < 0.7 * losses["ordinal"]
    assert "1 categorical (ordinal): store" in learn.describe()


def test_native_categorical_columns_must_hold_codes():
    train, valid = make_data("regression")
    with pytest.raises(HarnessError, match="categorical column 'b' of the training rows must hold integer codes"):
        make("regression", train, valid, categorical=[1], feature_names=list("abcde"))


def test_the_recorder_is_saved_by_the_run_folder(tmp_path):
    train, valid = make_data("regression")
    learn = make("regression", train, valid)
    learn.fit()
    run = Run(tmp_path / "run")
    run.dir.mkdir()
    history = run.save_history(learn.recorder, title="gbm")
    assert len(history) == learn.rounds
    assert run.path("history.csv").is_file() and run.path("loss.png").is_file()
    import pandas as pd

    table = pd.read_csv(run.path("history.csv"))
    assert {"stage", "epoch", "train_loss", "valid_loss", "inner_valid_loss", "rmse"} <= set(table.columns)
    # the recorded last round's validation loss is the validated one (LightGBM's l2 is the MSE)
    assert table["valid_loss"].iloc[-1] == pytest.approx(learn.valid_loss, rel=1e-6)
    assert table["rmse"].iloc[-1] == pytest.approx(learn.primary_score)


def test_no_resume_no_lr_find_and_callbacks_are_accepted():
    train, valid = make_data("binary", n=200)
    learn = make("binary", train, valid)
    learn.add_callbacks([object()])  # the runner's Checkpoint: kept, never called
    with pytest.raises(HarnessError, match="no checkpoint to resume"):
        learn.resume_from("checkpoints/last.pt")
    with pytest.raises(HarnessError, match="lr-find is for networks; a gbm model has no learning-rate sweep"):
        learn.lr_find()
    with pytest.raises(HarnessError, match="not trained yet"):
        learn.predict(valid[0])


def test_bad_targets_and_params_are_named():
    train, valid = make_data("regression")
    y = train[1].copy()
    y[7] = np.nan
    with pytest.raises(HarnessError, match=r"training target 'count' holds 1 NaN .*row 7"):
        make("regression", (train[0], y), valid, target_name="count")
    with pytest.raises(HarnessError, match="unknown \\[gbm\\] key"):
        make("regression", train, valid, {"num_leaf": 8})
    with pytest.raises(HarnessError, match="learning_rate"):
        make("regression", train, valid, {"learning_rate": 0})
    with pytest.raises(HarnessError, match="inner_valid_pct = 1 leaves no training rows"):
        make("regression", train, valid, {"inner_valid_pct": 1})
    with pytest.raises(HarnessError, match="categorical must be one of"):
        make("regression", train, valid, {"categorical": "onehot"})
    with pytest.raises(HarnessError, match="class indices"):
        make("binary", (train[0], train[1]), None)
    with pytest.raises(HarnessError, match="multilabel"):
        BoostingLearner("multilabel", train, None, [], {})


def test_echo_prints_one_summary_line(capsys):
    train, valid = make_data("binary", n=400)
    learn = make("binary", train, valid, echo=True)
    learn.fit()
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    assert f"gbm: {learn.rounds} rounds" in out[0] and f"inner best iteration {learn.best_iteration}" in out[0]
    assert "valid loss" in out[0] and "roc_auc" in out[0]


def test_an_alarm_that_rings_inside_lightgbm_stops_the_fit_at_the_next_round(monkeypatch):
    """A signal is handled just after a C call returns, i.e. nearly always inside LightGBM's Python code, where
    the alarm must not raise; it waited for a ring to land outside by chance (seconds on a busy machine). Here
    every ring lands inside: the round callback must raise the deferred exception, promptly."""
    import time

    from harness.auto import session

    monkeypatch.setattr(session, "inside_uninterruptible", lambda frame: True)
    train, valid = make_data("regression", n=3000)
    learn = make("regression", train, valid, {"n_estimators": 1_000_000, "early_stopping_rounds": 0,
                                              "learning_rate": 1e-4})
    started = time.monotonic()
    with pytest.raises(session.BudgetSpent):
        with session.alarm(0.3):
            learn.fit()
    assert time.monotonic() - started < 5  # without the deferral: a million rounds, minutes


def test_an_interrupted_fit_frees_its_booster_at_once_never_later_in_the_garbage_collector():
    """A budget's alarm stops a fit inside lgb.train. The error's traceback must not keep the half-trained
    booster alive: freed later by the garbage collector, after its datasets, it reads freed memory (a heap
    abort in an unrelated place)."""
    import gc

    from harness.auto.session import BudgetSpent, alarm

    def boosters():
        return {id(o) for o in gc.get_objects() if type(o) is lgb.Booster}  # type(): isinstance wakes deprecated lazy objects

    before = boosters()
    train, valid = make_data("regression", n=3000)
    # a tiny learning rate: every round still finds a split, so the fit cannot end before the alarm rings
    learn = make("regression", train, valid, {"n_estimators": 1_000_000, "early_stopping_rounds": 0,
                                              "learning_rate": 1e-4})
    with pytest.raises(BudgetSpent) as caught:
        with alarm(0.3):
            learn.fit()
    assert any(entry.name == "train" and "lightgbm" in str(entry.path) for entry in caught.traceback)  # inside lgb.train
    assert caught.value.__traceback__ is not None  # the error is kept, as Optuna and the session keep it
    assert not boosters() - before  # (its datasets may wait for the collector: alone, any order frees them)
