"""A toy competition for tests of the host, the CLI and the leaderboard: learn y = 3x + 1."""
import numpy as np
import pandas as pd
import torch
from torch import nn

from harness.host.competition import Competition, Predictions, Prepared
from harness.data.files import read_table
from harness.data.loaders import TensorLoader
from harness.host.hookspecs import hookimpl
from harness.scoring.metrics import rmse


class LineFit(Competition):
    """A toy competition: learn y = 3x + 1 from train.csv, predict test.csv."""

    name = "line-fit"
    kaggle_slug = None
    description = "toy regression registered by a test"
    raw_files = ("train.csv", "test.csv")

    def default_config(self):
        return {"seed": 0, "train": {"epochs": 4, "lr": 0.05, "schedule": "one-cycle", "wd": 0.0, "batch_size": 16}}

    def write_sample(self, data_dir, seed=0):
        rng = np.random.default_rng(seed)
        x = rng.normal(size=200)
        pd.DataFrame({"x": x, "y": 3 * x + 1}).to_csv(data_dir / "train.csv", index=False)
        pd.DataFrame({"id": range(5), "x": np.arange(5.0)}).to_csv(data_dir / "test.csv", index=False)

    def load(self, data_dir, config):
        test = data_dir / "test.csv"
        return {"train": read_table(data_dir / "train.csv", numeric=("x", "y")),
                "test": read_table(test, numeric=("x",)) if test.exists() else None}

    def prepare(self, raw, config):
        df = raw["train"]
        x, y = torch.tensor(df[["x"]].to_numpy(np.float32)), torch.tensor(df["y"].to_numpy(np.float32))
        bs, cut = config["train"]["batch_size"], int(len(df) * 0.8)
        return Prepared(TensorLoader(x[:cut], y[:cut], bs, shuffle=True), TensorLoader(x[cut:], y[cut:], 64), {})

    def build_model(self, state, config):
        return nn.Sequential(nn.Linear(1, 1), nn.Flatten(0))

    def loss_fn(self, config):
        return nn.MSELoss()

    def metrics(self, config):
        return [rmse]

    def predict(self, learn, state, raw, config):
        if raw["test"] is None:
            return None
        x = torch.tensor(raw["test"][["x"]].to_numpy(np.float32))
        preds = learn.predict(TensorLoader(x, batch_size=64)).numpy()
        return Predictions(pd.DataFrame({"id": raw["test"]["id"], "y": preds}), preds)


class FakePlugin:
    @hookimpl
    def register_competitions(self, register):
        register(LineFit())
