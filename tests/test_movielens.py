"""MovieLens end to end on generated data, and every kind of bad input."""
import json
import shutil

import numpy as np
import pandas as pd
import pytest

from harness_plugins.movielens import MovieLens


@pytest.fixture
def sample_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("ml")
    MovieLens().write_sample(path)
    return path


def test_end_to_end_on_generated_data(cli_run, workspace, sample_dir):
    cli_run("data", "movielens", "--from", sample_dir)
    out = cli_run("train", "movielens").output
    assert "validation rmse" in out and "1 row(s) with a user" in out
    run_dir = next((workspace / "runs" / "movielens").iterdir())
    summary = pd.read_json(run_dir / "summary.json", typ="series")
    # much better than always predicting the mean rating
    ratings = pd.read_csv(sample_dir / "u.data", sep="\t", header=None)[2]
    assert summary["primary_score"] < 0.85 * ratings.std()
    sub = pd.read_csv(run_dir / "submission.csv")
    test = pd.read_csv(sample_dir / "test.csv")
    assert list(sub.columns) == ["id", "rating"] and len(sub) == len(test)
    assert sub["rating"].between(0, 5.5).all()
    # the unseen user and unseen movie get a sensible rating, near the mean
    assert sub["rating"].iloc[-2:].between(2.5, 4.5).all()
    solution = pd.read_csv(sample_dir / "solution.csv")
    assert np.sqrt(((sub["rating"] - solution["rating"]) ** 2).mean()) < 0.85 * ratings.std()

    assert "rmse" in cli_run("runs", "movielens").output
    explained = cli_run("explain", "movielens").output
    assert "Highest item bias" in explained and "Principal component 2" in explained
    assert (run_dir / "item_factors_pca.png").stat().st_size > 10_000
    model = cli_run("model", "movielens").output
    assert "user_factors" in model and "total parameters" in model
    lr = cli_run("lr-find", "movielens", "--num-it", "40").output
    assert "suggested lr" in lr
    assert list((workspace / "lr_find").glob("movielens-*.png"))
    (run_dir / "submission.csv").unlink()
    cli_run("predict", "movielens")
    assert pd.read_csv(run_dir / "submission.csv").equals(sub)


def _finished_run(workspace):
    run_dir = sorted((workspace / "runs" / "movielens").iterdir())[-1]
    summary = json.loads((run_dir / "summary.json").read_text())
    return run_dir, summary


def _u1_ratings(sample_dir):
    """The ratings of u1.base and of u1.test."""
    return tuple(pd.read_csv(sample_dir / f"u1.{part}", sep="\t", header=None)[2] for part in ("base", "test"))


def _mean_baseline(train_ratings, valid_ratings) -> float:
    """RMSE of always predicting the training mean on the validation rows."""
    return float(np.sqrt(((valid_ratings - train_ratings.mean()) ** 2).mean()))


def test_predefined_split_u1_with_the_nn_model_beats_the_training_mean(cli_run, workspace, sample_dir):
    cli_run("train", "movielens", "--data-dir", sample_dir, "--set", "data.split=u1", "--set", "model.kind=nn",
            "--epochs", "2", "--schedule", "sgdr")
    run_dir, summary = _finished_run(workspace)
    base, held_out = _u1_ratings(sample_dir)
    # It validated on exactly u1.test, and did better than the mean of u1.base there.
    assert np.load(run_dir / "valid_targets.npy").tolist() == held_out.astype(np.float32).tolist()
    score = summary["primary_score"]
    assert summary["primary_metric"] == "rmse" and np.isfinite(score)
    assert score < 0.95 * _mean_baseline(base, held_out)
    preds = np.load(run_dir / "valid_preds.npy")
    assert score == pytest.approx(np.sqrt(((preds - held_out.to_numpy()) ** 2).mean()), rel=1e-4)
    config = (run_dir / "config.toml").read_text()
    assert 'kind = "nn"' in config and 'split = "u1"' in config and 'schedule = "sgdr"' in config
    # A split whose files are absent is an error naming them.
    result = cli_run("train", "movielens", "--data-dir", sample_dir, "--set", "data.split=u3", expect=2)
    assert "u3.base and u3.test" in result.output


def test_svdpp_adds_what_each_user_rated_to_the_users_vector():
    import torch

    from harness.models.collab import DotProductImplicit

    torch.manual_seed(0)
    rated = ([1, 1, 1, 2], [1, 2, 3, 3])  # user 1 rated items 1..3, user 2 item 3, user 3 nothing
    model = DotProductImplicit(4, 4, n_factors=3, rated=rated)
    with torch.no_grad():
        for emb in (model.user_factors, model.implicit_factors):
            emb.weight.normal_()
    p, y = model.user_factors.weight, model.implicit_factors.weight
    expected = torch.stack([p[0], p[1] + (y[1] + y[2] + y[3]) / 3 ** 0.5, p[2] + y[3], p[3]])
    assert torch.allclose(model.user_vectors(torch.arange(4)), expected, atol=1e-6)
    batch = torch.tensor([3, 1, 1, 0])  # any order, repeats: each row its own user's vector
    assert torch.allclose(model.user_vectors(batch), expected[batch], atol=1e-6)
    assert "rated_items" not in model.state_dict()  # rebuilt from the run's state, not saved with the weights
    empty = DotProductImplicit(3, 3, n_factors=2, rated=([], []))  # nothing rated: the plain user vectors
    assert torch.equal(empty.user_vectors(torch.tensor([2, 1])), empty.user_factors(torch.tensor([2, 1])))


def test_svdpp_batch_sums_match_the_sum_over_all_ratings_in_values_and_gradients():
    import torch

    from harness.models.collab import DotProductImplicit

    gen = torch.Generator().manual_seed(1)
    users, items = torch.randint(1, 30, (400,), generator=gen), torch.randint(1, 50, (400,), generator=gen)
    model = DotProductImplicit(30, 50, n_factors=4, rated=(users, items))
    with torch.no_grad():
        model.implicit_factors.weight.normal_(generator=gen)
    batch = torch.randint(0, 30, (64,), generator=gen)
    model.user_vectors(batch).pow(2).sum().backward()
    got = model.implicit_factors.weight.grad.clone()
    model.zero_grad()
    counts = torch.bincount(users, minlength=30).clamp(min=1).float()
    full = torch.zeros(30, 4).index_add(0, users, counts[users].rsqrt().unsqueeze(1) * model.implicit_factors(items))
    expected = model.user_factors(batch) + full[batch]  # every user's sum over all of training, then the batch's
    expected.pow(2).sum().backward()
    assert torch.allclose(model.user_vectors(batch), expected, atol=1e-6)
    assert torch.allclose(got, model.implicit_factors.weight.grad, atol=1e-5)


def test_svdpp_implicit_feedback_is_the_training_pairs_or_all_pairs_to_predict_never_their_ratings():
    from harness_plugins.movielens.competition import implicit_feedback

    train = pd.DataFrame({"user": [10, 10, 20], "item": [1, 2, 2], "rating": [4.0, 3.0, 5.0]})
    valid = pd.DataFrame({"user": [20, 30], "item": [1, 1], "rating": [1.0, 2.0]})  # user 30 unseen: left out
    test = pd.DataFrame({"id": [1], "user": [10], "item": [1]})  # already a training pair: once
    users, items = np.array([10, 20]), np.array([1, 2])
    assert implicit_feedback(train, valid, test, users, items, "train") == [[1, 1, 2], [1, 2, 2]]
    assert implicit_feedback(train, valid, test, users, items, "all") == [[1, 1, 2, 2], [1, 2, 2, 1]]


def test_svdpp_trains_predicts_and_explains_from_its_saved_state(cli_run, workspace, sample_dir):
    cli_run("train", "movielens", "--data-dir", sample_dir, "--set", "model.kind=svdpp", "--set", "data.split=u1",
            "--set", "model.implicit=all", "--epochs", "3")
    run_dir, summary = _finished_run(workspace)
    base, held_out = _u1_ratings(sample_dir)
    assert summary["primary_score"] < 0.95 * _mean_baseline(base, held_out)
    sub = pd.read_csv(run_dir / "submission.csv")
    (run_dir / "submission.csv").unlink()
    cli_run("predict", "movielens", "--data-dir", sample_dir)
    assert np.allclose(pd.read_csv(run_dir / "submission.csv")["rating"], sub["rating"], atol=1e-6)
    assert "Highest item bias" in cli_run("explain", "movielens").output


@pytest.mark.parametrize("dense_limit", [10**9, 0], ids=["dense", "sparse"])
def test_autorec_reads_a_rating_from_its_items_other_ratings_never_from_the_rating_itself(dense_limit):
    import torch

    from harness.models.collab import ItemAutoRec
    from harness.models.layers import scale_to_range

    torch.manual_seed(0)
    ratings = ([1, 2, 3, 1, 2], [1, 1, 1, 2, 3], [5.0, 1.0, 3.0, 4.0, 2.0])  # item 1: users 1..3; item 2: user 1
    model = ItemAutoRec(4, 4, hidden=4, ratings=ratings, dense_limit=dense_limit)
    assert model.dense == (dense_limit > 0)
    assert set(model.state_dict()) == {"encoder.weight", "encoder.bias", "user_factors.weight", "user_bias.weight",
                                       "global_bias"}  # the ratings are rebuilt from the run's state
    with torch.no_grad():
        for p in (model.user_factors.weight, model.user_bias.weight):
            p.normal_()
    dense = torch.zeros(4, 4)  # items x users
    dense[ratings[1], ratings[0]] = torch.tensor(ratings[2])
    users, items = torch.tensor([1, 2, 3, 1, 2, 0]), torch.tensor([1, 1, 1, 2, 3, 2])  # user 0, item 0: unseen
    x = dense[items].clone()
    x[torch.arange(len(users)), users] = 0.0  # the rating being predicted is left out of its own input
    code = torch.sigmoid(model.encoder(x))
    expected = scale_to_range((model.user_factors(users) * code).sum(1) + model.user_bias(users).squeeze(1)
                              + model.global_bias, model.y_range)
    assert torch.allclose(model(users, items), expected, atol=1e-6)
    other = ItemAutoRec(4, 4, hidden=4, ratings=(ratings[0], ratings[1], [2.0, 1.0, 3.0, 4.0, 2.0]),
                        dense_limit=dense_limit)
    other.load_state_dict(model.state_dict())  # user 1's own rating of item 1 changed, nothing else
    changed = other(users, items) != model(users, items)
    assert changed.tolist() == [False, True, True, False, False, False]  # users 2 and 3 read user 1's rating
    assert torch.allclose(model.item_vectors(), torch.sigmoid(model.encoder(dense)), atol=1e-6)
    # the encoder's gradient is the reference's too (the sparse path reaches it through the embedding bag)
    grad = torch.autograd.grad(model(users, items).sum(), model.encoder.weight)[0]
    assert torch.allclose(grad, torch.autograd.grad(expected.sum(), model.encoder.weight)[0], atol=1e-6)
    assert grad.abs().sum() > 0


def test_autorec_trains_on_the_training_ratings_only_and_predicts_from_its_saved_state(cli_run, workspace, sample_dir):
    cli_run("train", "movielens", "--data-dir", sample_dir, "--set", "model.kind=autorec", "--set", "data.split=u1",
            "--set", "model.n_factors=32", "--set", "model.l2=0.05", "--epochs", "5")
    run_dir, summary = _finished_run(workspace)
    base, held_out = _u1_ratings(sample_dir)
    assert summary["primary_score"] < 0.95 * _mean_baseline(base, held_out)
    state = json.loads((run_dir / "preprocessing.json").read_text())
    assert len(state["ratings"][0]) == len(base)  # its input is u1.base, never a u1.test rating
    assert sorted(state["ratings"][2]) == sorted(base.astype(float).tolist())
    sub = pd.read_csv(run_dir / "submission.csv")
    (run_dir / "submission.csv").unlink()
    cli_run("predict", "movielens", "--data-dir", sample_dir)
    assert np.allclose(pd.read_csv(run_dir / "submission.csv")["rating"], sub["rating"], atol=1e-6)
    out = cli_run("explain", "movielens").output  # no item biases: the items' codes' principal components
    assert "Principal component 1" in out and "item bias" not in out


def test_newer_layout_ratings_csv_trains_on_its_ratings_and_titles(cli_run, workspace, tmp_path, sample_dir):
    frame = pd.read_csv(sample_dir / "u.data", sep="\t", header=None, names=["userId", "movieId", "rating", "timestamp"])
    frame.to_csv(tmp_path / "ratings.csv", index=False)
    pd.DataFrame({"movieId": [1, 2], "title": ["A (1990)", "B (1991)"], "genres": ["x", "y"]}).to_csv(
        tmp_path / "movies.csv", index=False)
    out = cli_run("train", "movielens", "--data-dir", tmp_path, "--epochs", "1").output
    assert "validation rmse" in out and "submission" not in out  # no test.csv: nothing to submit
    run_dir, summary = _finished_run(workspace)
    targets = np.load(run_dir / "valid_targets.npy")
    assert len(targets) == round(0.2 * len(frame))  # data.valid_pct of the ratings validate
    state = json.loads((run_dir / "preprocessing.json").read_text())
    assert state["titles"]["1"] == "A (1990)" and state["titles"]["3"] == "3"  # movies.csv titles, else the id
    train_mean = state["global_mean"]
    assert train_mean == pytest.approx((frame["rating"].sum() - targets.sum()) / (len(frame) - len(targets)), rel=1e-5)
    baseline = float(np.sqrt(((targets - train_mean) ** 2).mean()))
    assert np.isfinite(summary["primary_score"]) and summary["primary_score"] < baseline
    assert not (run_dir / "submission.csv").exists()


def test_resume_continues_a_killed_run(cli_run, workspace, sample_dir, monkeypatch):
    from harness.runs import runner
    from harness.train.callbacks import Callback

    class Kill(Callback):
        order = 99

        def after_epoch(self, learn):
            if learn.epoch == 1:
                raise KeyboardInterrupt

    def train_with_kill(*args, **kwargs):
        return original(*args, callbacks=[Kill()], **kwargs)

    original = runner.train
    cli_run("data", "movielens", "--from", sample_dir)
    cli_run("train", "movielens", "--epochs", "4")
    full = next((workspace / "runs" / "movielens").iterdir())
    monkeypatch.setattr(runner, "train", train_with_kill)
    assert "Aborted" in cli_run("train", "movielens", "--epochs", "4", expect=1).output
    monkeypatch.setattr(runner, "train", original)
    out = cli_run("train", "movielens", "--resume").output
    assert "resuming" in out
    import torch

    killed = sorted((workspace / "runs" / "movielens").iterdir())[-1]
    a = torch.load(full / "model.pt", weights_only=True)
    b = torch.load(killed / "model.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert len(pd.read_csv(killed / "history.csv")) == 4


def _copy(sample_dir, tmp_path):
    dest = tmp_path / "data"
    shutil.copytree(sample_dir, dest)
    return dest


def _newer_layout(data):
    """Turn an ml-100k sample folder into the newer layout: ratings.csv and movies.csv."""
    frame = pd.read_csv(data / "u.data", sep="\t", header=None, names=["userId", "movieId", "rating", "timestamp"])
    frame.to_csv(data / "ratings.csv", index=False)
    pd.DataFrame({"movieId": [1, 2], "title": ["A (1990)", "B (1991)"]}).to_csv(data / "movies.csv", index=False)
    for name in ("u.data", "u.item", "u1.base", "u1.test"):
        (data / name).unlink()


def _edit_first_line(path, change):
    lines = path.read_text(encoding="latin-1").splitlines()
    lines[0] = change(lines[0])
    path.write_text("\n".join(lines) + "\n", encoding="latin-1")


def _tab_fields(index, value):
    def change(line):
        fields = line.split("\t")
        fields[index] = value
        return "\t".join(fields)
    return change


def _assert_one_error(result, workspace, *fragments):
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in result.output, result.output
    assert not (workspace / "runs").exists()  # nothing half-written


# Every file MovieLens reads, and the settings that make it read it.
FILES = {"u.data": [], "u.item": [], "u1.base": ["--set", "data.split=u1"], "u1.test": ["--set", "data.split=u1"],
         "test.csv": [], "solution.csv": [], "ratings.csv": [], "movies.csv": []}


def _broken_file(sample_dir, tmp_path, name):
    data = _copy(sample_dir, tmp_path)
    if name in ("ratings.csv", "movies.csv"):
        _newer_layout(data)
    return data


@pytest.mark.parametrize("name", list(FILES))
@pytest.mark.parametrize("kind, message", [("directory", "is a directory"), ("empty", "is empty")])
def test_each_file_as_a_directory_or_empty_is_one_line_naming_it(cli_run, workspace, tmp_path, sample_dir, name, kind,
                                                                 message):
    data = _broken_file(sample_dir, tmp_path, name)
    (data / name).unlink()
    if kind == "directory":
        (data / name).mkdir()
    else:
        (data / name).write_bytes(b"")
    result = cli_run("train", "movielens", "--data-dir", data, *FILES[name], expect=None)
    _assert_one_error(result, workspace, f"{data / name} {message}")


RATING_OUT_OF_RANGE = "value(s) outside [0.0, 5.5], infinite or empty"


@pytest.mark.parametrize("name, damage, args, fragments", [
    ("u.data", lambda p: p.write_text("1\t2\t5\n2\t3\t4\n"), [], ["u.data has 3 column(s) per line; its format has 4"]),
    ("u.data", lambda p: _edit_first_line(p, _tab_fields(2, "-3")), [], ["u.data: column rating", RATING_OUT_OF_RANGE, "first -3 at data row 1"]),
    ("u.data", lambda p: _edit_first_line(p, _tab_fields(2, "1e9")), [], ["u.data: column rating", "first 1000000000.0 at data row 1", "model.y_range"]),
    ("u.data", lambda p: _edit_first_line(p, _tab_fields(2, "inf")), [], ["u.data: column rating", RATING_OUT_OF_RANGE, "first inf"]),
    ("u.data", lambda p: _edit_first_line(p, _tab_fields(2, "")), [], ["u.data: column rating has 1 non-numeric or empty value(s), first nan at data row 1"]),
    ("u.data", lambda p: _edit_first_line(p, _tab_fields(2, "five")), [], ["column rating has 1 non-numeric", "'five'"]),
    ("u.data", lambda p: p.write_text("1\t2\t4\t0\n1\t2\t3\t0\n2\t2\t3\t0\n"), [], ["duplicated (user, item) row(s), first (user=1, item=2)"]),
    ("u1.base", lambda p: _edit_first_line(p, _tab_fields(2, "8.8e8")), ["--set", "data.split=u1"], ["u1.base: column rating", RATING_OUT_OF_RANGE]),
    ("u1.test", lambda p: _edit_first_line(p, _tab_fields(0, "x")), ["--set", "data.split=u1"], ["u1.test: column user has 1 non-numeric"]),
    ("u.item", lambda p: _edit_first_line(p, lambda line: "one" + line[1:]), [], ["u.item: column item has 1 non-numeric", "'one'"]),
    ("u.item", lambda p: _edit_first_line(p, lambda line: "1.5" + line[1:]), [], ["u.item: column item must hold whole numbers", "first 1.5"]),
    ("test.csv", lambda p: p.write_text("id,userId\n1,2\n"), [], ["test.csv is missing column(s) movieId"]),
    ("test.csv", lambda p: p.write_text("id,userId,movieId\n1,2,3\n1,2,4\n"), [], ["test.csv: 1 duplicated (id) row(s), first (id=1)"]),
    ("solution.csv", lambda p: p.write_text(p.read_text().replace(",", ",good", 2).replace("id,goodrating", "id,rating")),
     [], ["solution.csv: column rating has 1 non-numeric", "'good"]),
    ("solution.csv", lambda p: p.write_text("\n".join(p.read_text().splitlines()[:-1]) + "\n"), [],
     ["solution.csv: 1 of test.csv's", "ids missing", "one rating per test.csv id"]),
    ("solution.csv", lambda p: p.write_text(p.read_text().replace("\n1,", "\n1,-3", 1)), [], ["solution.csv: column rating", RATING_OUT_OF_RANGE]),
    ("ratings.csv", lambda p: pd.read_csv(p).drop(columns=["rating"]).to_csv(p, index=False), [],
     ["ratings.csv is missing column(s) rating; found: userId, movieId, timestamp"]),
    ("ratings.csv", lambda p: pd.read_csv(p).assign(rating=lambda f: f["rating"].where(f.index != 4, 1e9)).to_csv(p, index=False), [],
     ["ratings.csv: column rating", RATING_OUT_OF_RANGE, "first 1000000000"]),
    ("movies.csv", lambda p: p.write_text("movieId,title\nx,A\n"), [], ["movies.csv: column movieId has 1 non-numeric"]),
], ids=lambda v: v if isinstance(v, str) and "." in v and len(v) < 14 else None)
def test_bad_values_are_one_line_naming_file_column_value_and_row(cli_run, workspace, tmp_path, sample_dir, name, damage,
                                                                  args, fragments):
    data = _broken_file(sample_dir, tmp_path, name)
    damage(data / name)
    result = cli_run("train", "movielens", "--data-dir", data, *args, expect=None)
    _assert_one_error(result, workspace, *fragments)


def test_ratings_within_a_widened_y_range_are_accepted(cli_run, workspace, tmp_path, sample_dir):
    data = _copy(sample_dir, tmp_path)
    _edit_first_line(data / "u.data", _tab_fields(2, "9"))
    result = cli_run("train", "movielens", "--data-dir", data, "--set", "model.y_range=[0.0, 10.0]", "--epochs", "1")
    assert "validation rmse" in result.output


def test_unknown_test_ids_can_be_an_error_before_training(cli_run, workspace, sample_dir):
    result = cli_run("train", "movielens", "--data-dir", sample_dir, "--epochs", "1",
                     "--set", "data.unknown_ids=error", expect=2)
    assert "never seen in training" in result.output
    assert "epoch" not in result.output  # it failed before the first epoch...
    assert not (workspace / "runs").exists()  # ...and left no run folder


@pytest.mark.parametrize("args, message", [
    (["--set", "model.n_factor=3"], "unknown key"),
    (["--set", "model.n_factors=big"], "expected a whole number like 50, got a string"),
    (["--set", "model.kind=svd"], "config: model.kind = 'svd' must be one of dot, svdpp, nn, autorec (--set)"),
])
def test_bad_settings(cli_run, workspace, sample_dir, args, message):
    result = cli_run("train", "movielens", "--data-dir", sample_dir, *args, expect=2)
    assert message in result.output
    assert not (workspace / "runs").exists()  # nothing half-written


def test_data_command_refuses_bad_folders(cli_run, tmp_path):
    (tmp_path / "empty").mkdir()
    assert "neither u.data" in cli_run("data", "movielens", "--from", tmp_path / "empty", expect=2).output
    cli_run("data", "movielens", "--sample")
    assert "already exists" in cli_run("data", "movielens", "--sample", expect=2).output
    cli_run("data", "movielens", "--sample", "--force")
