"""`harness blend NAME --runs ...`: ensembles of K-fold runs fitted on their OOF predictions, with an honest
(nested) CV score beside the naive in-sample one; weights >= 0 summing to 1; runs on other folds refused."""
import json

import numpy as np
import pandas as pd
import pytest

from harness.errors import HarnessError
from harness.runs.folder import Run
from harness.scoring.metrics import accuracy_fn, log_loss_fn, rmse_fn
from harness.scoring.tasks import get_task
from harness.tune import ensemble
from harness.tune.ensemble import Objective, cross_validate, fit_blender, fit_caruana, fit_weights
from harness_plugins.movielens import MovieLens

RMSE = Objective(rmse_fn, higher_is_better=False, squared_error=True)
RMSE_BY_OPTIMISER = Objective(rmse_fn, higher_is_better=False)  # the same metric, fitted by scipy's minimize


def folds_of(n, k=5, seed=0):
    return np.random.default_rng(seed).permutation(np.arange(n) % k)


def noise_and_one_weak_signal(n=80, n_noise=8, seed=0):
    """Targets, one run that is a weak signal, and runs of pure noise: whatever a blender finds in the
    noise runs on the rows it is fitted on is luck, which a score on the same rows counts as skill."""
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n)
    weak = 0.3 * y + rng.normal(size=n)
    noise = rng.normal(size=(n_noise, n))
    return np.vstack([weak[None], noise]), y


@pytest.mark.parametrize("method, objective", [("weights", RMSE), ("weights", RMSE_BY_OPTIMISER),
                                               ("caruana", RMSE), ("stack", RMSE)])
def test_the_nested_score_is_worse_than_the_naive_one_where_the_naive_one_is_biased(method, objective):
    members, y = noise_and_one_weak_signal()
    cv = cross_validate(method, members, y, folds_of(len(y)), objective, get_task("regression"))
    # fitted and scored on the same rows, the blender looks better than it is (lower rmse) ...
    assert cv.in_sample_score < cv.nested_score - 0.01
    # ... and the nested score is the metric on predictions no blender fitted with those rows' labels
    assert cv.nested_score == pytest.approx(rmse_fn(cv.nested, y))
    held = folds_of(len(y)) == 0
    refit = fit_blender(method, members[:, ~held], y[~held], objective, get_task("regression"))
    np.testing.assert_allclose(cv.nested[held], refit.predict(members[:, held]))


def test_the_mean_fits_nothing_so_its_nested_and_naive_scores_agree():
    members, y = noise_and_one_weak_signal()
    cv = cross_validate("mean", members, y, folds_of(len(y)), RMSE)
    assert cv.nested_score == pytest.approx(cv.in_sample_score)
    np.testing.assert_allclose(cv.final.weights, np.full(len(members), 1 / len(members)))


def two_useful_runs(n=400, seed=1):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n)
    return np.vstack([y + rng.normal(scale=0.8, size=n), y + rng.normal(scale=1.0, size=n)]), y


@pytest.mark.parametrize("method, objective", [("mean", RMSE), ("weights", RMSE), ("weights", RMSE_BY_OPTIMISER),
                                               ("caruana", RMSE), ("stack", RMSE)])
def test_two_genuinely_useful_runs_blend_to_a_better_nested_cv_than_either(method, objective):
    members, y = two_useful_runs()
    cv = cross_validate(method, members, y, folds_of(len(y)), objective, get_task("regression"))
    assert cv.nested_score < min(rmse_fn(m, y) for m in members) - 0.02


@pytest.mark.parametrize("objective", [RMSE, RMSE_BY_OPTIMISER, Objective(lambda p, t: -rmse_fn(p, t), True)])
def test_weights_are_non_negative_and_sum_to_one(objective):
    members, y = noise_and_one_weak_signal()
    w = fit_weights(members, y, objective)
    assert (w >= 0).all() and w.sum() == pytest.approx(1.0)
    assert w.argmax() == 0  # the one run with signal carries the most weight
    caruana, picks = fit_caruana(members, y, RMSE)
    assert (caruana >= 0).all() and caruana.sum() == pytest.approx(1.0)
    assert np.allclose(caruana * len(picks), np.round(caruana * len(picks)))  # counts of picks, with replacement


def test_nnls_and_the_optimiser_find_the_same_weights_for_rmse():
    members, y = two_useful_runs()
    by_nnls, by_minimize = fit_weights(members, y, RMSE), fit_weights(members, y, RMSE_BY_OPTIMISER)
    np.testing.assert_allclose(by_nnls, by_minimize, atol=2e-3)
    # for independent errors of sd 0.8 and 1.0 the best weights are 1/var normalised: 0.61 and 0.39
    np.testing.assert_allclose(by_nnls, [1 / 0.64, 1.0] / np.sum([1 / 0.64, 1.0]), atol=0.06)


def binary_case(n=400, seed=2):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, size=n).astype(float)
    signal = (2 * y - 1)
    logits = np.vstack([1.5 * signal + rng.normal(scale=2.0, size=n), 0.5 * signal + rng.normal(scale=1.0, size=n)])
    return logits, y


def test_a_binary_stack_is_a_logistic_regression_on_the_logits_and_scores_on_the_logit_scale():
    logits, y = binary_case()
    accuracy = Objective(accuracy_fn, higher_is_better=True)
    task = ensemble.infer_task(logits[0], y)
    assert (task.kind, task.outputs) == ("binary", "logits")
    cv = cross_validate("stack", logits, y, folds_of(len(y)), accuracy, task)
    assert cv.nested_score > max(accuracy_fn(m, y) for m in logits)
    # logits out: the accuracy_fn of the Learner thresholds them at 0
    assert cv.nested.min() < -1 and cv.nested.max() > 1


def test_multiclass_weights_by_log_loss_and_a_stack_give_log_probabilities():
    rng = np.random.default_rng(4)
    n, c = 300, 3
    y = rng.integers(0, c, size=n)
    members = []
    for scale in (1.0, 1.5):
        logits = 2.0 * np.eye(c)[y] + rng.normal(scale=scale, size=(n, c))
        members.append(logits - np.logaddexp.reduce(logits, axis=1, keepdims=True))
    members = np.stack(members)
    task = ensemble.infer_task(members[0], y.astype(float))
    assert (task.kind, task.outputs) == ("multiclass", "log_probabilities")

    def loss(log_probs, targets):
        return log_loss_fn(np.exp(log_probs), targets)

    objective = Objective(loss, higher_is_better=False)
    for method in ("weights", "caruana", "stack"):
        cv = cross_validate(method, members, y.astype(float), folds_of(n), objective, task)
        assert cv.nested.shape == (n, c)
        assert cv.nested_score <= min(loss(m, y) for m in members) + 1e-3, method
    stacked = cross_validate("stack", members, y.astype(float), folds_of(n), objective, task).nested
    np.testing.assert_allclose(np.exp(stacked).sum(axis=1), 1.0, rtol=1e-6)


# ---------------------------------------------------------------------------- run folders and the CLI

def fake_kfold_run(workspace, oof, targets, folds, test, seed=0):
    """A K-fold MovieLens run folder as `harness train --folds` leaves it, from given arrays."""
    run = Run.create(workspace, "movielens", partial=True)
    config = MovieLens().default_config()
    run.save_config(config)
    pd.DataFrame({"row": np.arange(len(folds)), "fold": folds}).to_csv(run.path("folds.csv"), index=False)
    run.save_array("oof_preds.npy", oof)
    run.save_array("oof_targets.npy", targets)
    run.save_array("test_preds.npy", test)
    pd.DataFrame({"id": np.arange(len(test)), "rating": test}).to_csv(run.path("submission.csv"), index=False)
    run.save_summary({"competition": "movielens", "run": run.id, "cv_score": rmse_fn(oof, targets)})
    run.finish()
    return run


def test_runs_trained_on_different_folds_are_refused_naming_both(workspace):
    members, y = two_useful_runs(n=60)
    folds = folds_of(60, k=3)
    a = fake_kfold_run(workspace, members[0], y, folds, np.zeros(5))
    b = fake_kfold_run(workspace, members[1], y, folds, np.ones(5))
    c = fake_kfold_run(workspace, members[1], y, folds_of(60, k=3, seed=9), np.ones(5))
    with pytest.raises(HarnessError) as info:
        ensemble.blend_runs(MovieLens(), workspace, [a.id, c.id], "weights")
    assert a.id in str(info.value) and c.id in str(info.value) and "different folds" in str(info.value)
    assert len(Run.all(workspace, "movielens")) == 3  # no blend folder left behind
    ensemble.blend_runs(MovieLens(), workspace, [a.id, b.id], "weights")  # the same folds: blended


def test_a_blend_run_folder_holds_both_scores_labelled_and_the_final_weights_submission(workspace):
    members, y = two_useful_runs(n=300)
    folds = folds_of(300, k=4)
    tests = np.array([[1.0, 2.0, 3.0], [3.0, 4.0, 5.0]])
    a = fake_kfold_run(workspace, members[0], y, folds, tests[0])
    b = fake_kfold_run(workspace, members[1], y, folds, tests[1])
    result = ensemble.blend_runs(MovieLens(), workspace, [a.id, b.id], "weights")
    summary = json.loads(result.run.path("summary.json").read_text())
    assert summary["method"] == "weights" and summary["members"] == [a.id, b.id]
    w = np.array([summary["weights"][a.id], summary["weights"][b.id]])
    assert (w >= 0).all() and w.sum() == pytest.approx(1)
    assert summary["cv_score"] == summary["primary_score"] == pytest.approx(result.cv_score)
    assert "nested" in summary["cv_score_means"] and "optimistic" in summary["in_sample_score_means"]
    assert summary["in_sample_score"] <= summary["cv_score"] + 1e-6
    np.testing.assert_allclose(result.run.array("test_preds.npy"), w @ tests)
    sub = pd.read_csv(result.run.path("submission.csv"))
    np.testing.assert_allclose(sub["rating"], MovieLens().submission_from_outputs(w @ tests, sub)["rating"])
    assert sorted(summary["member_cv_scores"]) == sorted([a.id, b.id])
    assert np.array_equal(pd.read_csv(result.run.path("folds.csv"))["fold"], folds)


def test_the_cli_methods_are_the_modules():
    from harness.cli.tune import BLEND_METHODS

    assert BLEND_METHODS == ensemble.METHODS


@pytest.fixture
def ml_data(tmp_path_factory):
    path = tmp_path_factory.mktemp("ml")
    MovieLens().write_sample(path, n_users=120, n_items=80, n_ratings=4000)
    return path


def test_two_movielens_k_fold_runs_blend_through_the_cli_into_a_run_with_a_submission(cli_run, workspace, ml_data):
    for kind in ("dot", "nn"):
        cli_run("train", "movielens", "--data-dir", ml_data, "--folds", "3", "--epochs", "2",
                "--set", f"model.kind={kind}")
    dot, nn = Run.all(workspace, "movielens")
    ids = f"{dot.id},{nn.id}"
    out = cli_run("blend", "movielens", "--runs", ids, "--method", "weights").output
    blend = Run.find(workspace, "movielens", "latest")
    summary = blend.summary()
    assert summary["kind"] == "ensemble" and summary["members"] == [dot.id, nn.id]
    assert f"CV rmse = {summary['cv_score']:.6f} (honest: nested" in out
    assert f"in-sample rmse = {summary['in_sample_score']:.6f} (naive, optimistic" in out
    # each member's CV, recomputed by the blend, is the one its own run reported
    for run in (dot, nn):
        assert summary["member_cv_scores"][run.id] == pytest.approx(run.summary()["cv_score"], rel=1e-5)
    sub = pd.read_csv(blend.path("submission.csv"))
    members = [pd.read_csv(r.path("submission.csv")) for r in (dot, nn)]
    assert sub["id"].tolist() == members[0]["id"].tolist()
    w = np.array([summary["weights"][dot.id], summary["weights"][nn.id]])
    tests = np.stack([r.array("test_preds.npy") for r in (dot, nn)])
    np.testing.assert_allclose(blend.array("test_preds.npy"), w @ tests, rtol=1e-6)

    stacked = cli_run("blend", "movielens", "--runs", ids, "--method", "stack").output
    assert "stack blend of runs" in stacked and Run.find(workspace, "movielens", "latest").path("submission.csv").exists()
    assert "--method caruana needs --runs" in cli_run("blend", "movielens", "--method", "caruana", expect=2).output
    assert "--runs and --top-k" in cli_run("blend", "movielens", "--runs", ids, "--top-k", "3", expect=2).output


def test_single_split_runs_on_the_same_rows_blend_by_their_plain_mean(cli_run, workspace, ml_data):
    """What a seed ensemble or a network + LightGBM entry needs without K folds: the mean of runs that
    validated on the same rows, scored there (nothing fitted), and itself a run that blends again."""
    from harness.scoring.metrics import rmse_fn

    for kind, seed in (("dot", 1), ("dot", 2), ("nn", 1)):
        cli_run("train", "movielens", "--data-dir", ml_data, "--epochs", "2", "--set", f"seed={seed}",
                "--set", f"model.kind={kind}")
    a, b, c = Run.all(workspace, "movielens")
    out = cli_run("blend", "movielens", "--runs", f"{a.id},{b.id}").output
    seeds = Run.find(workspace, "movielens", "latest")
    mean = (a.array("valid_preds.npy").astype(np.float64) + b.array("valid_preds.npy")) / 2
    score = rmse_fn(mean, a.array("valid_targets.npy").astype(np.float64))
    summary = seeds.summary()
    assert summary["primary_score"] == pytest.approx(score, rel=1e-5) and summary["members"] == [a.id, b.id]
    assert "nothing is fitted" in summary["primary_score_means"]
    assert f"validation rmse = {summary['primary_score']:.6f} (the plain mean" in out
    for run in (a, b):
        assert summary["member_scores"][run.id] == pytest.approx(run.summary()["primary_score"], rel=1e-5)
    np.testing.assert_allclose(seeds.array("test_preds.npy"),
                               (a.array("test_preds.npy") + b.array("test_preds.npy")) / 2, rtol=1e-6)
    assert pd.read_csv(seeds.path("submission.csv"))["id"].tolist() == pd.read_csv(a.path("submission.csv"))["id"].tolist()

    # The blend blends again: (seed ensemble + nn) / 2.
    cli_run("blend", "movielens", "--runs", f"{seeds.id},{c.id}")
    both = Run.find(workspace, "movielens", "latest")
    np.testing.assert_allclose(both.array("valid_preds.npy"),
                               (seeds.array("valid_preds.npy") + c.array("valid_preds.npy")) / 2, rtol=1e-6)

    # A fitted method would be scored on the rows that fitted it: refused, nothing written.
    before = len(Run.all(workspace, "movielens"))
    result = cli_run("blend", "movielens", "--runs", f"{a.id},{c.id}", "--method", "weights", expect=2)
    assert "--method weights fits the blend, which needs K-fold runs" in result.output
    assert len(Run.all(workspace, "movielens")) == before


def test_single_split_runs_on_other_rows_or_mixed_with_k_fold_runs_are_refused(cli_run, workspace, ml_data):
    cli_run("train", "movielens", "--data-dir", ml_data, "--epochs", "1")
    cli_run("train", "movielens", "--data-dir", ml_data, "--epochs", "1", "--set", "data.valid_pct=0.3")
    cli_run("train", "movielens", "--data-dir", ml_data, "--epochs", "1", "--folds", "2")
    a, other, kfold = Run.all(workspace, "movielens")
    result = cli_run("blend", "movielens", "--runs", f"{a.id},{other.id}", expect=2)
    assert f"run {other.id} was validated on other rows than run {a.id}" in result.output
    result = cli_run("blend", "movielens", "--runs", f"{kfold.id},{a.id}", expect=2)
    assert f"run {a.id} has no folds.csv" in result.output and "cannot be blended together" in result.output
    assert len(Run.all(workspace, "movielens")) == 3


def fake_holdout_run(workspace, valid, targets, test):
    """A single-split MovieLens run folder as `harness train` leaves it, from given arrays."""
    run = Run.create(workspace, "movielens", partial=True)
    run.save_config(MovieLens().default_config())
    run.save_array("valid_preds.npy", valid)
    run.save_array("valid_targets.npy", targets)
    run.save_array("test_preds.npy", test)
    pd.DataFrame({"id": np.arange(5), "rating": np.full(5, 3.0)}).to_csv(run.path("submission.csv"), index=False)
    run.save_summary({"competition": "movielens", "run": run.id, "primary_score": 1.0})
    run.finish()
    return run


@pytest.mark.parametrize("file, bad, message", [
    ("test_preds.npy", np.zeros(7), "has shape (7,), but the submissions have 5 rows"),
    ("valid_preds.npy", np.zeros(7), "has shape (7,), not one row per validation target (40 in valid_targets.npy)"),
    ("test_preds.npy", np.full(5, np.nan), "holds 5 NaN or infinite value(s)"),
    ("valid_preds.npy", np.full(40, np.nan), "holds 40 NaN or infinite value(s)"),
])
def test_a_member_whose_outputs_have_the_wrong_shape_or_are_not_finite_is_named_and_nothing_written(
        cli_run, workspace, file, bad, message):
    y = np.linspace(1, 5, 40)
    good = fake_holdout_run(workspace, y + 0.1, y, np.full(5, 3.0))
    broken = fake_holdout_run(workspace, y - 0.1, y, np.full(5, 3.5))
    broken.save_array(file, bad)
    result = cli_run("blend", "movielens", "--runs", f"{good.id},{broken.id}", expect=2)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    assert f"run {broken.id}: {broken.path(file)} {message}" in lines[0]
    assert len(Run.all(workspace, "movielens")) == 2  # no blend folder


@pytest.mark.parametrize("fault", ["nan test", "nan oof", "test shape"])
def test_k_fold_members_with_non_finite_or_misshapen_outputs_are_refused_naming_the_run_and_file(workspace, fault):
    members, y = two_useful_runs(n=60)
    folds = folds_of(60, k=3)
    a = fake_kfold_run(workspace, members[0], y, folds, np.zeros(5))
    oof = members[1].copy()
    if fault == "nan oof":
        oof[7] = np.nan
    b = fake_kfold_run(workspace, oof, y, folds, np.ones(5))
    if fault != "nan oof":
        b.save_array("test_preds.npy", np.full(5, np.nan) if fault == "nan test" else np.zeros((5, 2)))
    with pytest.raises(HarnessError) as info:
        ensemble.blend_runs(MovieLens(), workspace, [a.id, b.id], "weights")
    message = str(info.value)
    if fault == "test shape":
        assert message == (f"run {a.id} and run {b.id} have test outputs (test_preds.npy) of different shapes "
                           "((5,) and (5, 2)); they cannot be blended")
    else:
        file = "oof_preds.npy" if fault == "nan oof" else "test_preds.npy"
        assert message.startswith(f"run {b.id}: {b.path(file)} holds ")
    assert len(Run.all(workspace, "movielens")) == 2  # no blend folder
