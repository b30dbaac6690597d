"""The fitted tabular preprocessor, embedding sizes, checked joins and the entity-embedding model."""
import json
import re

import numpy as np
import pandas as pd
import pytest
import torch

from harness.data.tabular import (cardinalities, cont_names, embedding_sizes, embedding_width, fit_tabular,
                                  join_checked, transform_tabular)
from harness.errors import HarnessError
from harness.models.tabular import TabularModel


@pytest.fixture
def frames():
    train = pd.DataFrame({
        "color": ["red", "blue", None, "red", "green"],
        "year": [2013, 2014, 2013, 2015, 2014],
        "dist": [1.0, np.nan, 3.0, 5.0, 100.0],
        "temp": [10.0, 20.0, 30.0, 40.0, 50.0],
    })
    test = pd.DataFrame({
        "color": ["purple", "green", None],
        "year": [2013.0, 2016.0, np.nan],  # floats must match the integer training years
        "dist": [np.nan, 2.0, 3.0],
        "temp": [np.nan, 60.0, 10.0],  # missing although training had none: median, no new flag
    })
    return train, test


def test_categories_code_from_one_and_keep_zero_for_missing_and_unseen(frames):
    train, test = frames
    state = fit_tabular(train, ["color", "year"], ["dist", "temp"])
    assert state["cats"]["color"]["levels"] == ["blue", "green", "red"]
    assert cardinalities(state) == [4, 4]
    tr = transform_tabular(train, state)
    assert tr.cats[:, 0].tolist() == [3, 1, 0, 3, 2]
    assert tr.cats[:, 1].tolist() == [1, 2, 1, 3, 2]
    te = transform_tabular(test, state)
    assert te.cats[:, 0].tolist() == [0, 2, 0]  # unseen "purple" and missing both map to 0
    assert te.cats[:, 1].tolist() == [1, 0, 0]  # 2013.0 == 2013; unseen 2016 and NaN -> 0


def test_continuous_medians_flags_and_statistics_come_from_train_only(frames):
    train, test = frames
    state = fit_tabular(train, ["color"], ["dist", "temp"])
    assert cont_names(state) == ["dist", "temp", "dist_na"]  # only dist had gaps in training
    median = np.median([1.0, 3.0, 5.0, 100.0])
    filled = np.array([1.0, median, 3.0, 5.0, 100.0])
    tr = transform_tabular(train, state)
    assert tr.conts.dtype == np.float32
    np.testing.assert_allclose(tr.conts[:, 0], (filled - filled.mean()) / filled.std(), rtol=1e-5)
    np.testing.assert_allclose(tr.conts[:, 0].mean(), 0, atol=1e-6)
    assert tr.conts[:, 2].tolist() == [0, 1, 0, 0, 0]
    te = transform_tabular(test, state)
    # Test rows use the training median, mean and std, not their own.
    np.testing.assert_allclose(te.conts[:, 0], (np.array([median, 2.0, 3.0]) - filled.mean()) / filled.std(), rtol=1e-5)
    temp = np.array([10.0, 20.0, 30.0, 40.0, 50.0])
    np.testing.assert_allclose(te.conts[:, 1], (np.array([30.0, 60.0, 10.0]) - temp.mean()) / temp.std(), rtol=1e-5)
    assert te.conts[:, 2].tolist() == [1, 0, 0]
    assert te.conts.shape[1] == tr.conts.shape[1]


def test_quantile_scaling_gives_normal_scores_of_the_training_quantiles_as_scikit_learn_does():
    from scipy.stats import norm
    from sklearn.preprocessing import QuantileTransformer

    rng = np.random.default_rng(0)
    train = pd.DataFrame({"dist": rng.lognormal(5, 2, 5000), "flag": rng.integers(0, 2, 5000).astype(float),
                          "capped": np.minimum(rng.integers(0, 100, 5000), 60).astype(float)})
    test = pd.DataFrame({"dist": [3.0, 50.0, 150.0, 1e9], "flag": [0.0, 1.0, 0.0, 1.0], "capped": [0.0, 30.0, 60.0, 99.0]})
    state = fit_tabular(train, [], list(train.columns), scaling="quantile")
    reference = QuantileTransformer(n_quantiles=1000, output_distribution="normal").fit(train[["dist"]])
    inside = test["dist"] < train["dist"].max()
    np.testing.assert_allclose(transform_tabular(train, state).conts[:, 0], reference.transform(train[["dist"]])[:, 0],
                               atol=1e-4)
    np.testing.assert_allclose(transform_tabular(test[inside], state).conts[:, 0],
                               reference.transform(test.loc[inside, ["dist"]])[:, 0], atol=1e-4)
    scores = transform_tabular(test, state).conts
    assert scores[3, 0] == pytest.approx(5.2, abs=0.01)  # beyond every training value: bounded, not 1e9's z-score
    # A run of tied training values gets its middle quantile (scikit-learn puts the lowest and highest
    # runs at ±5.2 instead: a 0/1 column would become ±5.2).
    zeros = (train["flag"] == 0).mean()
    np.testing.assert_allclose(scores[:2, 1], norm.ppf([zeros / 2, zeros + (1 - zeros) / 2]), atol=0.01)
    at_cap = (train["capped"] == 60).mean()
    assert scores[2, 2] == pytest.approx(norm.ppf(1 - at_cap / 2), abs=0.01)


def test_quantile_scaling_keeps_the_median_fill_and_missing_flags_and_survives_json(frames):
    train, test = frames
    state = fit_tabular(train, ["color"], ["dist", "temp"], scaling="quantile")
    assert cont_names(state) == ["dist", "temp", "dist_na"]
    tr, te = transform_tabular(train, state), transform_tabular(test, state)
    assert tr.conts[1, 0] == pytest.approx(0, abs=1e-6)  # the missing dist is the median: quantile 0.5, score 0
    assert tr.conts[:, 2].tolist() == [0, 1, 0, 0, 0]
    assert np.all(np.diff(tr.conts[[0, 2, 3, 4], 0]) > 0)  # order kept: 1 < 3 < 5 < 100
    again = transform_tabular(test, json.loads(json.dumps(state)))
    np.testing.assert_array_equal(te.conts, again.conts)
    trend = fit_tabular(train, [], ["dist", "temp"], scaling="quantile", trends=["temp"])
    assert "quantiles" in trend["conts"]["dist"] and "quantiles" not in trend["conts"]["temp"]
    later = transform_tabular(pd.DataFrame({"dist": [1.0, 1.0], "temp": [60.0, 70.0]}), trend).conts[:, 1]
    assert later[1] > later[0] > transform_tabular(train, trend).conts[:, 1].max()  # past the training values, still apart
    with pytest.raises(HarnessError, match="scaling 'rank'.*standard, quantile"):
        fit_tabular(train, [], ["dist"], scaling="rank")


def test_state_survives_json_and_reapplies_unchanged(frames):
    train, test = frames
    state = fit_tabular(train, ["color", "year"], ["dist", "temp"])
    again = json.loads(json.dumps(state))
    a, b = transform_tabular(test, state), transform_tabular(test, again)
    np.testing.assert_array_equal(a.cats, b.cats)
    np.testing.assert_array_equal(a.conts, b.conts)


def test_missing_column_is_a_clear_error(frames):
    train, test = frames
    state = fit_tabular(train, ["color"], ["dist"])
    with pytest.raises(HarnessError, match="test.csv: missing column.*dist"):
        transform_tabular(test.drop(columns="dist"), state, source="test.csv")


def test_embedding_widths_rules_overrides_and_multiplier(frames):
    assert embedding_width(1116, "lesson") == 50
    assert embedding_width(8, "lesson") == 4
    assert embedding_width(1116, "fastai") == round(1.6 * 1116 ** 0.56)
    assert embedding_width(3, "fastai") == 3
    with pytest.raises(HarnessError, match="embedding rule"):
        embedding_width(10, "nope")
    state = fit_tabular(frames[0], ["color", "year"], ["dist"])
    assert embedding_sizes(state) == [(4, 2), (4, 2)]
    assert embedding_sizes(state, overrides={"year": 7}) == [(4, 2), (4, 7)]
    assert embedding_sizes(state, multiplier=3.0) == [(4, 6), (4, 6)]
    with pytest.raises(HarnessError, match="dist: not categorical"):
        embedding_sizes(state, overrides={"dist": 3})


def test_join_checked_reports_lost_and_duplicated_rows():
    left = pd.DataFrame({"Store": [1, 2, 3, 3]})
    right = pd.DataFrame({"Store": [1, 2, 3], "Type": ["a", "b", "c"]})
    assert join_checked(left, right, "Store", "store.csv")["Type"].tolist() == ["a", "b", "c", "c"]
    with pytest.raises(HarnessError, match=r"2 of 4 rows have no match in store.csv on \(Store\), first \(Store=3\)"):
        join_checked(left, right[right.Store != 3], "Store", "store.csv")
    with pytest.raises(HarnessError, match=r"store.csv: 1 duplicated \(Store\)"):
        join_checked(left, pd.concat([right, right.iloc[:1]]), "Store", "store.csv")


def test_model_output_range_shapes_and_layer_groups():
    torch.manual_seed(0)
    model = TabularModel([(10, 5), (4, 2)], n_cont=3, layers=[20, 10], dropouts=[0.1, 0.1], emb_drop=0.1,
                         y_range=(0.0, 11.0), init_output=8.5, batchnorm=True)
    cats = torch.stack([torch.randint(0, 10, (64,)), torch.randint(0, 4, (64,))], dim=1)
    out = model(cats, torch.randn(64, 3))
    assert out.shape == (64,)
    assert ((out > 0) & (out < 11)).all()
    model.eval()
    assert abs(model(cats, torch.zeros(64, 3)).mean().item() - 8.5) < 1.5  # starts near the training mean
    groups = model.layer_groups()
    assert len(groups) == 3
    ids = [id(p) for g in groups for p in g]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())  # every parameter exactly once
    with pytest.raises(ValueError, match="one dropout per layer"):
        TabularModel([(10, 5)], 3, layers=[20, 10], dropouts=[0.1])


def test_join_and_duplicate_messages_show_plain_values_not_numpy_reprs():
    dates = pd.to_datetime(["2015-01-01", "2015-01-02"])
    left = pd.DataFrame({"Store": np.array([1, 2], dtype=np.int64), "Date": dates, "x": [0.5, np.nan]})
    right = pd.DataFrame({"Store": np.array([1], dtype=np.int64), "Date": dates[:1], "y": [1.0]})
    with pytest.raises(HarnessError) as lost:
        join_checked(left, right, ["Store", "Date"], "weather.csv")
    assert "first (Store=2, Date=2015-01-02)" in str(lost.value)
    doubled = pd.concat([left, left.iloc[:1]], ignore_index=True)
    with pytest.raises(HarnessError) as dup:
        join_checked(doubled[["Store", "Date"]], doubled.assign(z=1)[["Store", "Date", "z"]], ["Store", "Date"], "w.csv")
    assert "first (Store=1, Date=2015-01-01)" in str(dup.value)
    for message in (str(lost.value), str(dup.value)):
        assert "np." not in message and "Timestamp(" not in message


def test_model_summary_names_each_embedding_by_its_column():
    from harness.models.summary import summarize

    model = TabularModel([(10, 5), (4, 2)], n_cont=3, layers=[8], dropouts=[0.1], emb_names=["Store", "DayOfWeek"])
    lines = summarize(model, model.layer_groups()).splitlines()
    assert any(line.startswith("embeds.0 (Store) ") and "10x5" in line for line in lines)
    assert any(line.startswith("embeds.1 (DayOfWeek) ") and "4x2" in line for line in lines)
    # The parameter names are unchanged, so a model.pt saved before the names were added still loads.
    assert list(model.state_dict())[:2] == ["embeds.0.weight", "embeds.1.weight"]
    old = TabularModel([(10, 5), (4, 2)], n_cont=3, layers=[8], dropouts=[0.1])
    model.load_state_dict(old.state_dict())
    assert torch.equal(model.embeds[0].weight, old.embeds[0].weight)


@pytest.mark.parametrize("declared, says", [({"drop": ["nosuch"]}, "column nosuch (declared to drop in the config)"),
                                            ({"categorical": ["nosuch"]}, "column nosuch (declared categorical")])
def test_a_declared_column_that_is_not_in_the_file_is_named(declared, says):
    from harness.data.columns import infer_columns

    train = pd.DataFrame({"a": [1, 2, 3], "y": [0, 1, 0]})
    with pytest.raises(HarnessError, match=re.escape(says) + r".*its columns: a, y"):
        infer_columns(train, None, ["y"], source="train.csv", **declared)
