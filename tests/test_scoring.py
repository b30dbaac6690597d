"""Task types and the metric registry: each metric against scikit-learn (or by hand) on the same inputs."""
import subprocess
import sys

import numpy as np
import pytest
import sklearn.metrics as skm
from scipy.special import expit, softmax

from harness.errors import HarnessError
from harness.scoring import metrics
from harness.scoring.metrics import METRICS, choose_threshold, get_metric, learner_metric, metrics_for, score
from harness.scoring.tasks import BINARY, MULTICLASS, MULTILABEL, REGRESSION, TASKS, Task, get_task

N = 200


def inputs(kind, seed=0):
    """Random raw outputs and targets of a task kind (every class present, regression values > 0)."""
    rng = np.random.default_rng(seed)
    if kind == "regression":
        y = rng.uniform(1, 10, N)
        return np.abs(y + rng.normal(0, 1, N)), y
    if kind == "binary":
        y = np.arange(N) % 2
        return rng.normal(0, 1, N) + (y - 0.5), y
    if kind == "multiclass":
        y = np.arange(N) % 4
        return rng.normal(0, 1, (N, 4)) + np.eye(4)[y], y
    y = np.stack([np.arange(N) % 2, (np.arange(N) // 2) % 2, rng.integers(0, 2, N)], axis=1)
    return rng.normal(0, 1, (N, 3)) + (y - 0.5), y


def labels(kind, outputs):
    """The labels, computed independently of the module under test."""
    return outputs.argmax(axis=1) if kind == "multiclass" else (expit(outputs) > 0.5).astype(int)


def probs(kind, outputs):
    return softmax(outputs, axis=1) if kind == "multiclass" else expit(outputs)


def _rmspe(y, p):
    keep = y != 0
    return np.sqrt(np.mean(((y[keep] - p[keep]) / y[keep]) ** 2))


# name -> reference(kind, outputs, targets): one per registry metric, so a new metric without one fails
REFERENCE = {
    "accuracy": lambda k, o, y: skm.accuracy_score(y, labels(k, o)),
    "balanced_accuracy": lambda k, o, y: skm.balanced_accuracy_score(y, labels(k, o)),
    "f1": lambda k, o, y: skm.f1_score(y, labels(k, o), average="binary" if k == "binary" else "macro"),
    "mcc": lambda k, o, y: skm.matthews_corrcoef(y, labels(k, o)),
    "qwk": lambda k, o, y: skm.cohen_kappa_score(y, labels(k, o), weights="quadratic"),
    "roc_auc": lambda k, o, y: skm.roc_auc_score(y, probs(k, o), multi_class="ovr" if k == "multiclass" else "raise"),
    "log_loss": lambda k, o, y: skm.log_loss(y, probs(k, o)),
    "rmse": lambda k, o, y: np.sqrt(np.mean((o - y) ** 2)),
    "rmsle": lambda k, o, y: np.sqrt(np.mean((np.log1p(o) - np.log1p(y)) ** 2)),
    "mae": lambda k, o, y: np.mean(np.abs(o - y)),
    "rmspe": lambda k, o, y: _rmspe(y, o),
    "r2": lambda k, o, y: skm.r2_score(y, o),
}
DIRECTION = {"accuracy": True, "balanced_accuracy": True, "f1": True, "mcc": True, "qwk": True,
             "roc_auc": True, "log_loss": False, "rmse": False, "rmsle": False, "mae": False,
             "rmspe": False, "r2": True}  # higher is better?


def test_every_registered_metric_has_a_reference_and_a_direction():
    assert set(REFERENCE) == set(METRICS) == set(DIRECTION)


@pytest.mark.parametrize("name", sorted(METRICS))
def test_metric_matches_reference_on_every_task_it_scores(name):
    m = METRICS[name]
    assert m.name == name and m.takes in metrics.TAKES and m.kinds
    for kind in m.kinds:
        outputs, y = inputs(kind)
        assert score(name, outputs, y, kind) == pytest.approx(REFERENCE[name](kind, outputs, y), rel=1e-9), kind


@pytest.mark.parametrize("name", sorted(METRICS))
def test_direction(name):
    m = METRICS[name]
    assert m.higher_is_better is DIRECTION[name]
    assert m.direction == ("maximize" if DIRECTION[name] else "minimize")
    assert m.better(1.0, 0.0) is DIRECTION[name]


def test_rmspe_ignores_zero_targets():
    y = np.array([0.0, 2.0, 4.0, 0.0])
    p = np.array([5.0, 1.0, 5.0, -3.0])
    assert score("rmspe", p, y, "regression") == pytest.approx(np.sqrt((0.5**2 + 0.25**2) / 2))


# ---------------------------------------------------------------------------- task mappings
def test_binary_mapping():
    logits = np.array([-2.0, 0.0, 0.5, 3.0])
    np.testing.assert_allclose(BINARY.to_probabilities(logits), 1 / (1 + np.exp(-logits)))
    np.testing.assert_array_equal(BINARY.to_labels(logits), [0, 0, 1, 1])  # sigmoid(0) = 0.5 is not above 0.5
    np.testing.assert_array_equal(BINARY.to_labels(logits, threshold=0.7), [0, 0, 0, 1])
    np.testing.assert_array_equal(BINARY.to_labels(logits.reshape(-1, 1)), [0, 0, 1, 1])  # (n, 1) is one column
    assert BINARY.blend_scale == "logits"
    np.testing.assert_allclose(BINARY.to_blend_scale(logits), logits)
    p = get_task("binary", outputs="probabilities")
    np.testing.assert_allclose(p.to_blend_scale([0.5, 0.880797]), [0.0, 2.0], atol=1e-5)
    np.testing.assert_allclose(p.from_blend_scale([0.0, 2.0]), [0.5, 0.880797], atol=1e-6)


def test_multiclass_mapping_of_logits_and_log_probabilities():
    logits = np.array([[1.0, 2.0, 0.0], [3.0, -1.0, 0.5]])
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(MULTICLASS.to_probabilities(logits), expected)
    np.testing.assert_array_equal(MULTICLASS.to_labels(logits), [1, 0])
    # a model ending in log_softmax (NLLLoss) maps to the same probabilities
    log_probs = get_task("multiclass", outputs="log_probabilities")
    np.testing.assert_allclose(log_probs.to_probabilities(np.log(expected)), expected)
    assert MULTICLASS.blend_scale == "log_probabilities"
    np.testing.assert_allclose(MULTICLASS.to_blend_scale(logits), np.log(expected))
    # the blend scale is itself a valid output: a blend is scored like one model's outputs
    blended = (MULTICLASS.to_blend_scale(logits) + MULTICLASS.to_blend_scale(logits[::-1])) / 2
    np.testing.assert_allclose(softmax(MULTICLASS.from_blend_scale(blended), axis=1).sum(axis=1), 1.0)
    np.testing.assert_allclose(np.exp(MULTICLASS.from_blend_scale(blended)).sum(axis=1), 1.0)


def test_multilabel_mapping_is_per_column():
    logits = np.array([[2.0, -1.0, 0.1], [-3.0, 0.4, -0.2]])
    np.testing.assert_allclose(MULTILABEL.to_probabilities(logits), expit(logits))
    np.testing.assert_array_equal(MULTILABEL.to_labels(logits), [[1, 0, 1], [0, 1, 0]])
    np.testing.assert_array_equal(MULTILABEL.to_labels(logits, threshold=0.6), [[1, 0, 0], [0, 0, 0]])
    assert MULTILABEL.blend_scale == "logits"


def test_regression_mapping_is_identity_with_no_probabilities():
    v = np.array([[1.5], [-2.0]])
    np.testing.assert_array_equal(REGRESSION.check_outputs(v), [1.5, -2.0])
    np.testing.assert_array_equal(REGRESSION.to_blend_scale(v), [1.5, -2.0])
    assert REGRESSION.blend_scale == "values"
    with pytest.raises(HarnessError, match="no probabilities"):
        REGRESSION.to_probabilities(v)
    with pytest.raises(HarnessError, match="no probabilities"):
        REGRESSION.to_labels(v)


def test_default_losses():
    from torch import nn

    assert isinstance(REGRESSION.default_loss(), nn.MSELoss)
    assert isinstance(BINARY.default_loss(), nn.BCEWithLogitsLoss)
    assert isinstance(get_task("binary", "probabilities").default_loss(), nn.BCELoss)
    assert isinstance(MULTICLASS.default_loss(), nn.CrossEntropyLoss)
    assert isinstance(get_task("multiclass", "log_probabilities").default_loss(), nn.NLLLoss)
    assert isinstance(MULTILABEL.default_loss(), nn.BCEWithLogitsLoss)
    assert set(TASKS) == {"regression", "binary", "multiclass", "multilabel"}


def test_tasks_and_scoring_do_not_import_torch():
    code = "import sys, harness.scoring.tasks, harness.scoring.metrics; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------------------- the bug
def test_accuracy_of_probability_outputs_is_right_when_the_task_says_so():
    probabilities = np.array([0.9, 0.8, 0.1, 0.2, 0.3])
    y = np.array([1, 1, 0, 0, 0])
    # today's Learner metric takes logits: fed probabilities it returns the positive rate
    assert metrics.accuracy(probabilities, y) == pytest.approx(0.4)
    # the registry's: the task declares what the model emits, and the answer is right
    assert score("accuracy", probabilities, y, get_task("binary", outputs="probabilities")) == 1.0
    assert score("accuracy", np.log(probabilities / (1 - probabilities)), y, "binary") == 1.0
    # and logits fed where probabilities were declared are refused, not scored
    with pytest.raises(HarnessError, match="declares probabilities"):
        score("accuracy", np.array([2.0, 1.0, -2.0, -1.0, -0.5]), y, get_task("binary", "probabilities"))


def test_legacy_metrics_still_work():
    logits = np.array([[2.0, -1.0], [0.0, 1.0]])
    assert metrics.accuracy(logits, np.array([0, 1])) == 1.0
    assert metrics.rmse(np.array([1.0, 3.0]), np.array([1.0, 1.0])) == pytest.approx(np.sqrt(2))
    assert metrics.exp_rmspe.name == "rmspe" and metrics.perplexity.from_loss


def test_learner_metric_scores_tensors():
    import torch

    outputs, y = inputs("binary")
    m = learner_metric("roc_auc", "binary")
    assert isinstance(m, metrics.Metric) and m.higher_is_better and m.name == "roc_auc"
    got = m(torch.tensor(outputs).reshape(-1, 1), torch.tensor(y, dtype=torch.float32).reshape(-1, 1))
    assert got == pytest.approx(skm.roc_auc_score(y, outputs), rel=1e-6)


# ---------------------------------------------------------------------------- thresholds
@pytest.mark.parametrize("name", ["accuracy", "f1", "mcc", "balanced_accuracy"])
def test_choose_threshold_beats_half_where_half_is_wrong(name):
    # a model whose probabilities are all shifted down: every positive lies in (0.3, 0.45)
    rng = np.random.default_rng(1)
    y = np.arange(200) % 2
    p = np.where(y == 1, rng.uniform(0.3, 0.45, 200), rng.uniform(0.05, 0.28, 200))
    threshold, best = choose_threshold(name, p, y)
    at_half = score(name, p, y, get_task("binary", "probabilities"), threshold=0.5)
    assert 0.28 < threshold < 0.3 and best == pytest.approx(1.0) and best > at_half
    assert score(name, p, y, get_task("binary", "probabilities"), threshold=threshold) == best


def test_choose_threshold_on_many_distinct_probabilities_uses_quantiles():
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 5000)
    p = np.clip(0.2 + 0.3 * y + rng.normal(0, 0.1, 5000), 0, 1)
    threshold, best = choose_threshold("accuracy", p, y, max_candidates=200)
    assert 0.3 < threshold < 0.4  # the classes' means are 0.2 and 0.5
    assert best >= score("accuracy", p, y, get_task("binary", "probabilities"), threshold=0.5)


def test_choose_threshold_multilabel_shares_one_threshold():
    y = np.array([[1, 0], [0, 1], [1, 1], [0, 0]])
    p = np.where(y == 1, 0.4, 0.1)
    threshold, best = choose_threshold("accuracy", p, y, task="multilabel")
    assert 0.1 < threshold < 0.4 and best == 1.0


def test_choose_threshold_refuses_what_has_no_threshold():
    y, p = np.array([0, 1]), np.array([0.2, 0.7])
    with pytest.raises(HarnessError, match="takes probabilities"):
        choose_threshold("roc_auc", p, y)
    with pytest.raises(HarnessError, match="argmax"):
        choose_threshold("accuracy", np.array([[0.2, 0.8], [0.6, 0.4]]), y, task="multiclass")
    with pytest.raises(HarnessError, match="declares probabilities"):
        choose_threshold("accuracy", np.array([-1.0, 2.0]), y)


# ---------------------------------------------------------------------------- errors
def test_unknown_metric_names_the_known_ones():
    with pytest.raises(HarnessError, match="unknown metric 'auc'; known: accuracy, balanced_accuracy, .*rmse"):
        get_metric("auc")


def test_unknown_task_and_bad_outputs_scale():
    with pytest.raises(HarnessError, match="unknown task type 'ranking'; known: regression, binary"):
        get_task("ranking")
    with pytest.raises(HarnessError, match="logits, probabilities"):
        Task("binary", "log_probabilities")


@pytest.mark.parametrize("name,kind", [("log_loss", "regression"), ("rmse", "binary"), ("mcc", "multilabel")])
def test_metric_on_the_wrong_kind_of_task(name, kind):
    outputs, y = inputs(kind)
    with pytest.raises(HarnessError, match=f"'{name}' does not score a {kind} task.*metrics for a {kind} task"):
        score(name, outputs, y, kind)


def test_nonsense_inputs_are_refused():
    with pytest.raises(HarnessError, match="rmsle is defined for values >= 0"):
        score("rmsle", np.array([1.0, -0.5]), np.array([1.0, 2.0]), "regression")
    with pytest.raises(HarnessError, match="binary targets are integer labels in 0..1"):
        score("accuracy", np.array([1.0, -1.0]), np.array([2, 0]), "binary")
    with pytest.raises(HarnessError, match="multiclass task"):
        score("accuracy", np.zeros((3, 4)), np.array([0, 1, 2]), "binary")
    with pytest.raises(HarnessError, match="NaN"):
        score("rmse", np.array([np.nan, 1.0]), np.array([1.0, 1.0]), "regression")
    with pytest.raises(HarnessError, match="3 rows"):
        score("accuracy", np.zeros((3, 2)), np.array([0, 1]), "multiclass")
    with pytest.raises(HarnessError, match="cannot score"):  # one class only: sklearn's ValueError, ours to say
        score("roc_auc", np.array([0.5, 1.0]), np.array([1, 1]), "binary")
    with pytest.raises(HarnessError, match="positive"):
        score("log_loss", np.log([[0.5, 0.5]]) + 1, np.array([0]), get_task("multiclass", "log_probabilities"))


def test_metrics_for_a_task():
    assert metrics_for("regression") == ["mae", "r2", "rmse", "rmsle", "rmspe"]
    assert "log_loss" in metrics_for("multiclass") and "rmse" not in metrics_for("binary")


# ---------------------------------------------------------------------------- submissions
@pytest.mark.parametrize("value, message", [
    ("abc", "non-numeric prediction values in ['rating']: 1 row(s), first 'abc' at data row 2 (id 12)"),
    (np.nan, "1 row(s) hold NaN or infinity in column rating, first nan at data row 2 (id 12)"),
    (np.inf, "1 row(s) hold NaN or infinity in column rating, first inf at data row 2 (id 12)"),
])
def test_a_submission_value_that_is_not_a_finite_number_is_named_with_its_column_row_and_id(value, message):
    import pandas as pd

    from harness.scoring.submission import validate_submission

    sample = pd.DataFrame({"id": [11, 12, 13], "rating": [0.0, 0.0, 0.0]})
    submission = pd.DataFrame({"id": [11, 12, 13], "rating": [3.5, value, 4.0]})
    with pytest.raises(HarnessError) as caught:
        validate_submission(submission, sample, name="sub.csv")
    assert str(caught.value).startswith(f"sub.csv: {message}; ")


def test_submit_dry_run_names_a_text_rating_in_one_line(cli_run, workspace, tmp_path):
    from harness.runs.folder import Run
    from harness_plugins.movielens import MovieLens

    MovieLens().write_sample(tmp_path / "ml", n_users=60, n_items=40, n_ratings=1000)
    cli_run("train", "movielens", "--data-dir", tmp_path / "ml", "--epochs", "1", "--set", "train.batch_size=256")
    (run,) = Run.all(workspace, "movielens")
    lines = run.path("submission.csv").read_text().splitlines()
    lines[2] = lines[2].split(",")[0] + ",abc"  # data row 2
    run.path("submission.csv").write_text("\n".join(lines) + "\n")
    result = cli_run("submit", "movielens", "--run", run.id, "--dry-run", "--data-dir", tmp_path / "ml", expect=2)
    out = result.output.strip().splitlines()
    assert len(out) == 1 and "Traceback" not in result.output, result.output
    assert str(run.path("submission.csv")) in out[0] and "rating" in out[0] and "'abc' at data row 2" in out[0]
