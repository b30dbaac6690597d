"""MovieLens ratings: collaborative filtering with embeddings.

Reads the ml-100k layout (u.data, u.item and the predefined u1..u5, ua, ub splits) and the layout of
the newer releases (ratings.csv, movies.csv). An optional test.csv (id,userId,movieId) gets a
submission id,rating; its held-out answers, if known, sit in solution.csv (id,rating).
Every rating must be a finite number inside ``model.y_range``: the model cannot predict outside it,
and a value far outside (a timestamp read as a rating) means the file is not what it claims to be.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from typing import TYPE_CHECKING

import click
import numpy as np
import pandas as pd

from harness_competitions import config_path
from harness.host.competition import Competition, Predictions, Prepared
from harness.config.schema import Choice, ListOf, Num
from harness.scoring.submission import prediction_values
from harness.scoring.tasks import get_task
from harness.data.files import check_no_duplicates, check_values, read_table
from harness.errors import HarnessError
from harness.host.hookspecs import hookimpl

# torch is imported where a model or loader is made, so that config and file errors come first.
if TYPE_CHECKING:
    from torch import nn

    from harness.data.loaders import TensorLoader

PREDEFINED_SPLITS = ("u1", "u2", "u3", "u4", "u5", "ua", "ub")
FOLD_SPLITS = ("u1", "u2", "u3", "u4", "u5")  # their test files partition u.data: the five folds
ML100K_COLUMNS = ["user", "item", "rating", "timestamp"]


@dataclass
class MovieLensData:
    ratings: pd.DataFrame  # user, item, rating
    titles: dict  # item id -> title
    test: pd.DataFrame | None  # id, user, item
    data_dir: Path
    solution: pd.DataFrame | None = None  # id, rating: test.csv's held-out answers


def check_ratings(frame: pd.DataFrame, path: Path, y_range) -> None:
    """Ratings must be finite and inside model.y_range, the range the model can predict."""
    lo, hi = y_range
    check_values(frame, "rating", path, lo=lo, hi=hi,
                 hint=f"ratings must lie in model.y_range = [{lo}, {hi}]; fix the file or widen model.y_range")


def unknown_ids_message(raw: "MovieLensData", users, items) -> str | None:
    """What test.csv holds that training never saw, or None."""
    unknown_users = ~raw.test["user"].isin(users)
    unknown_items = ~raw.test["item"].isin(items)
    if not (unknown_users.any() or unknown_items.any()):
        return None
    return (f"{raw.data_dir / 'test.csv'}: {int(unknown_users.sum())} row(s) with a user and "
            f"{int(unknown_items.sum())} with a movie never seen in training")


def read_ml100k_ratings(path: Path, y_range=(0.0, 5.5)) -> pd.DataFrame:
    """u.data or a uN.base/uN.test split: four tab-separated columns, user item rating timestamp."""
    frame = read_table(path, sep="\t", header=None, columns=ML100K_COLUMNS, integer=("user", "item"),
                       numeric=("rating",))
    check_ratings(frame, path, y_range)
    check_no_duplicates(frame, ["user", "item"], path)
    return frame


def read_titles(path: Path) -> dict:
    """u.item: ``id|title|...`` per movie (latin-1), as item id -> title."""
    items = read_table(path, sep="|", header=None, encoding="latin-1", usecols=[0, 1], names=["item", "title"],
                       integer=("item",))
    check_no_duplicates(items, ["item"], path)
    return dict(zip(items["item"].tolist(), items["title"].astype(str)))


def read_solution(path: Path, test: pd.DataFrame | None, y_range) -> pd.DataFrame:
    """solution.csv: test.csv's answers (id,rating), one per test id."""
    if test is None:
        raise HarnessError(f"{path} holds answers but {path.parent / 'test.csv'} is missing; add it or remove {path.name}")
    frame = read_table(path, required=("id", "rating"), numeric=("rating",))
    check_ratings(frame, path, y_range)
    check_no_duplicates(frame, ["id"], path)
    missing = set(test["id"].tolist()) - set(frame["id"].tolist())
    extra = set(frame["id"].tolist()) - set(test["id"].tolist())
    if missing or extra:
        detail = (f"{len(missing)} of test.csv's {len(test)} ids missing (e.g. {sorted(missing, key=str)[0]!r})" if missing
                  else f"{len(extra)} id(s) not in test.csv (e.g. {sorted(extra, key=str)[0]!r})")
        raise HarnessError(f"{path}: {detail}; solution.csv needs one rating per test.csv id")
    return frame


def _codes(ids, known) -> np.ndarray:
    """Embedding rows for raw ids: 1..n for ids seen in training, 0 for the rest."""
    return pd.Index(known).get_indexer(pd.Index(ids)) + 1


def implicit_feedback(train, valid, test, users, items, which: str) -> list[list[int]]:
    """SVD++'s implicit feedback, [user codes, item codes]: the movies each user rated in training, or with
    ``which = "all"`` also the pairs to predict (validation and test.csv), whose ratings are unknown but whose
    existence (who chose to see what) is known when predicting them. Unseen ids (code 0) are left out."""
    frames = [train] + ([valid, test] if which == "all" else [])
    pairs = pd.concat([f[["user", "item"]] for f in frames if f is not None]).drop_duplicates()
    u, i = _codes(pairs["user"], users), _codes(pairs["item"], items)
    known = (u > 0) & (i > 0)
    return [u[known].tolist(), i[known].tolist()]


class MovieLens(Competition):
    name = "movielens"
    kaggle_slug = None  # scored locally against solution.csv
    description = "MovieLens ratings: embedding dot product / neural collaborative filtering (RMSE)"
    config_path = config_path("movielens")
    task = get_task("regression")  # ratings; `metric = "mae"` in a config scores by MAE instead of RMSE
    config_schema = {
        # "predefined": ml-100k's u1..u5 test files as the five folds (the standard ml-100k protocol)
        "validation.scheme": Choice("kfold", "predefined"),
        "data.split": Choice("random", *PREDEFINED_SPLITS),
        "data.unknown_ids": Choice("warn", "error"),
        "model.kind": Choice("dot", "svdpp", "nn", "autorec"),
        "model.implicit": Choice("train", "all"),
        "model.y_range": ListOf(Num(), lengths=(2,), increasing=True),
    }

    # ------------------------------------------------------------------ data
    def check_raw(self, data_dir):
        data_dir = Path(data_dir)
        if not (data_dir / "u.data").exists() and not (data_dir / "ratings.csv").exists():
            raise HarnessError(f"{data_dir} has neither u.data (ml-100k) nor ratings.csv (newer MovieLens); "
                               "run `harness data movielens --sample` or point --from at a MovieLens folder")

    def load(self, data_dir, config) -> MovieLensData:
        data_dir = Path(data_dir)
        self.check_raw(data_dir)
        y_range = config["model"]["y_range"]
        if (data_dir / "u.data").exists():
            ratings = read_ml100k_ratings(data_dir / "u.data", y_range)
            titles = read_titles(data_dir / "u.item") if (data_dir / "u.item").exists() else {}
        else:
            path = data_dir / "ratings.csv"
            ratings = read_table(path, required=("userId", "movieId", "rating"), integer=("userId", "movieId"),
                                 numeric=("rating",))
            ratings = ratings.rename(columns={"userId": "user", "movieId": "item"})
            check_ratings(ratings, path, y_range)
            check_no_duplicates(ratings, ["user", "item"], path)
            titles = {}
            if (data_dir / "movies.csv").exists():
                movies = read_table(data_dir / "movies.csv", required=("movieId", "title"), integer=("movieId",))
                check_no_duplicates(movies, ["movieId"], data_dir / "movies.csv")
                titles = dict(zip(movies["movieId"].tolist(), movies["title"].astype(str)))
        test = None
        if (data_dir / "test.csv").exists():
            path = data_dir / "test.csv"
            test = read_table(path, required=("id", "userId", "movieId"), integer=("userId", "movieId"))
            test = test.rename(columns={"userId": "user", "movieId": "item"})
            check_no_duplicates(test, ["id"], path)
        solution = None
        if (data_dir / self.solution_file).exists():
            solution = read_solution(data_dir / self.solution_file, test, y_range)
        return MovieLensData(ratings[["user", "item", "rating"]], titles, test, data_dir, solution)

    def split(self, data: MovieLensData, config) -> tuple[pd.DataFrame, pd.DataFrame]:
        split = config["data"]["split"]
        if split == "random":
            from harness.data.folds import split_seed

            rng = np.random.default_rng(split_seed(config))  # never the training seed: see split_seed
            order = rng.permutation(len(data.ratings))
            n_valid = int(round(len(order) * config["data"]["valid_pct"]))
            return data.ratings.iloc[order[n_valid:]], data.ratings.iloc[order[:n_valid]]
        base, test = data.data_dir / f"{split}.base", data.data_dir / f"{split}.test"
        if not base.exists() or not test.exists():
            raise HarnessError(f"data.split = {split!r} needs {base.name} and {test.name} in {data.data_dir} "
                               "(the ml-100k layout); use data.split = \"random\" for other data")
        y_range = config["model"]["y_range"]
        return read_ml100k_ratings(base, y_range), read_ml100k_ratings(test, y_range)

    def check_inputs(self, raw: MovieLensData, config) -> None:
        """With data.unknown_ids = "error", test ids never seen in training fail before training."""
        if raw.test is None or config["data"]["unknown_ids"] != "error":
            return
        train, _ = self.split(raw, config)
        message = unknown_ids_message(raw, train["user"].unique(), train["item"].unique())
        if message:
            raise HarnessError(message + "; set data.unknown_ids = \"warn\" to predict them from biases")

    # ------------------------------------------------------------------ preprocessing
    def fold_rows(self, raw: MovieLensData, config):
        """Every rating; K folds cut them at random (the predefined u1..u5 splits stay data.split)."""
        return raw.ratings.reset_index(drop=True)

    def predefined_folds(self, raw: MovieLensData, config, rows):
        """ml-100k's u1.test .. u5.test as the five folds: each rating is in exactly one of them."""
        if config.get("validation", {}).get("scheme") != "predefined":
            return None
        from harness.data.folds import FoldPlan

        keys = pd.MultiIndex.from_frame(rows[["user", "item"]])
        fold = np.full(len(rows), -1, dtype=np.int64)
        for i, name in enumerate(FOLD_SPLITS):
            path = raw.data_dir / f"{name}.test"
            if not path.exists():
                raise HarnessError(f"validation.scheme = \"predefined\" needs {path.name} in {raw.data_dir} "
                                   "(the ml-100k layout); use scheme = \"kfold\" for other data")
            test = read_ml100k_ratings(path, config["model"]["y_range"])
            fold[keys.get_indexer(pd.MultiIndex.from_frame(test[["user", "item"]]))] = i
        if (fold < 0).any():
            raise HarnessError(f"{raw.data_dir}: {int((fold < 0).sum())} rating(s) of u.data are in none of "
                               f"{', '.join(n + '.test' for n in FOLD_SPLITS)}; use scheme = \"kfold\"")
        return FoldPlan(fold, scheme="predefined")

    def prepare(self, raw: MovieLensData, config, rows=None) -> Prepared:
        if rows is None:
            train, valid = self.split(raw, config)
        else:
            ratings = self.fold_rows(raw, config)
            train, valid = ratings.iloc[rows[0]], ratings.iloc[rows[1]]
        users, items = np.sort(train["user"].unique()), np.sort(train["item"].unique())
        counts = train["item"].value_counts()
        state = {
            "users": users.tolist(), "items": items.tolist(), "global_mean": float(train["rating"].mean()),
            "item_counts": [int(counts.get(i, 0)) for i in items],
            "titles": {str(i): raw.titles.get(int(i), str(i)) for i in items},
        }
        if config["model"]["kind"] == "svdpp":
            state["rated"] = implicit_feedback(train, valid, raw.test, users, items, config["model"].get("implicit", "train"))
        if config["model"]["kind"] == "autorec":
            # the training ratings are the model's input; never those it is asked to predict
            state["ratings"] = [_codes(train["user"], users).tolist(), _codes(train["item"], items).tolist(),
                                train["rating"].astype(float).tolist()]
        t = config["train"]
        seed = int(config.get("seed", 0))
        return Prepared(
            train_dl=self._loader(train, state, t["batch_size"], shuffle=True, seed=seed),
            valid_dl=self._loader(valid, state, max(t["batch_size"], 4096), shuffle=False, seed=seed),
            state=state,
        )

    def _loader(self, frame, state, batch_size, shuffle=False, seed=0) -> TensorLoader:
        import torch

        from harness.data.loaders import TensorLoader

        users = torch.as_tensor(_codes(frame["user"], state["users"]), dtype=torch.long)
        items = torch.as_tensor(_codes(frame["item"], state["items"]), dtype=torch.long)
        target = torch.tensor(frame["rating"].to_numpy(dtype=np.float32)) if "rating" in frame else None
        return TensorLoader((users, items), target, batch_size=batch_size, shuffle=shuffle, seed=seed)

    # ------------------------------------------------------------------ model
    def build_model(self, state, config) -> nn.Module:
        from harness.models.collab import CollabNN, DotProductBias, DotProductImplicit, ItemAutoRec

        m = config["model"]
        n_users, n_items = len(state["users"]) + 1, len(state["items"]) + 1
        if m["kind"] == "dot":
            return DotProductBias(n_users, n_items, m["n_factors"], m["y_range"], state["global_mean"])
        if m["kind"] == "svdpp":
            return DotProductImplicit(n_users, n_items, m["n_factors"], m["y_range"], state["global_mean"],
                                      rated=state["rated"])
        if m["kind"] == "nn":
            return CollabNN(n_users, n_items, m["n_factors"], m["hidden"], m["dropout"], m["y_range"],
                            state["global_mean"])
        if m["kind"] == "autorec":
            return ItemAutoRec(n_users, n_items, m["n_factors"], m["y_range"], state["global_mean"],
                               ratings=state["ratings"])
        raise HarnessError(f"model.kind = {m['kind']!r}: use \"dot\", \"svdpp\", \"nn\" or \"autorec\"")

    def loss_fn(self, config):
        from torch import nn

        return nn.MSELoss()

    def metrics(self, config):
        from harness.scoring.metrics import rmse

        return [rmse]

    def callbacks(self, config):
        l2 = config["model"]["l2"]
        from harness.train.callbacks import Penalty

        return [Penalty(l2)] if l2 else []

    # ------------------------------------------------------------------ submission
    def predict(self, learn, state, raw: MovieLensData, config):
        if raw.test is None:
            return None
        test = raw.test
        message = unknown_ids_message(raw, state["users"], state["items"])
        if message:
            if config["data"]["unknown_ids"] == "error":
                raise HarnessError(message + "; set data.unknown_ids = \"warn\" to predict them from biases")
            click.echo(f"warning: {message}; predicted from biases and the global mean", err=True)
        preds = learn.predict(self._loader(test, state, 4096)).numpy()
        return Predictions(pd.DataFrame({"id": test["id"].to_numpy(), "rating": preds}), preds)

    def check_submission(self, submission, raw):
        if list(submission.columns) != ["id", "rating"]:
            raise HarnessError(f"submission columns {list(submission.columns)} should be id,rating")
        if raw.test is not None and len(submission) != len(raw.test):
            raise HarnessError(f"submission has {len(submission)} rows; test.csv has {len(raw.test)}")
        prediction_values(submission[["rating"]], "submission", submission["id"])

    # ------------------------------------------------------------------ sample data
    def write_sample(self, data_dir, seed=0, n_users=500, n_items=300, n_ratings=30000):
        from harness_plugins.movielens.sample import write_sample

        write_sample(Path(data_dir), seed, n_users, n_items, n_ratings)

    # ------------------------------------------------------------------ explain
    def explain(self, learn, run):
        from harness_plugins.movielens.explain import explain

        return explain(learn, run, run.dir)


@hookimpl
def register_competitions(register):
    register(MovieLens())
