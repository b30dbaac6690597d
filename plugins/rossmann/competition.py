"""Rossmann store sales: entity embeddings on engineered tabular features (Kaggle, 2015).

Reads the Kaggle layout (train.csv or train.csv.gz, test.csv, store.csv, sample_submission.csv) and,
when present, the third-place solution's external files (store_states.csv, weather/<STATE>.csv).
The network learns log(Sales); the score is RMSPE on sales. Rows with zero sales are left out of
training and scoring, as Kaggle ignores them; closed test stores are predicted 0. The model side is the
tabular kind's (harness.kinds.tabular.TabularModels): the entity-embedding network, or LightGBM with
``--set model.kind='"gbm"'``, on the same folds, so the two blend.
"""
from __future__ import annotations

import math
from pathlib import Path

from typing import TYPE_CHECKING

import click
import numpy as np
import pandas as pd

from harness_competitions import config_path
from harness.host.competition import Predictions, Prepared
from harness.kinds.tabular import TabularModels
from harness.config.loading import config_hash, merged
from harness.config.schema import COUNT, OPTIONAL_COUNT, Choice, ListOf
from harness.scoring.tasks import get_task
from harness.data.tabular import embedding_sizes, fit_tabular, transform_tabular, cont_names
from harness.errors import HarnessError
from harness.host.hookspecs import hookimpl
from harness.scoring.submission import validate_submission
from harness_plugins.rossmann import features

# torch is imported where a model or loader is made, so that config and file errors come first.
if TYPE_CHECKING:
    from torch import nn

    from harness.data.loaders import TensorLoader

# Columns that exist only when store_states.csv and weather/ (or googletrend.csv) are present.
OPTIONAL_COLUMNS = {"State", *features.WEATHER_COLUMNS}
TREND_COLUMNS = {"trend", "trend_DE"}


class Rossmann(TabularModels):
    name = "rossmann"
    kaggle_slug = "rossmann-store-sales"
    description = "Rossmann store sales: entity embeddings on engineered features (RMSPE)"
    config_path = config_path("rossmann")
    task = get_task("regression")  # on log(Sales): registry metrics score the log scale (rmspe: exp_rmspe's own)
    config_schema = {
        **TabularModels.config_schema,
        "data.valid_days": OPTIONAL_COUNT,  # 0: no validation
        "data.events": ListOf(Choice(*features.EVENTS)),
        "data.event_window": COUNT,
        "data.event_max_days": COUNT,
        "data.event_horizon": OPTIONAL_COUNT,  # 0: every row sees every later day
        "data.recent_days": ListOf(COUNT),
        "data.recent_lag": COUNT,
        "data.recent_by": ListOf(Choice(*features.RECENT_BY)),
    }
    raw_files = ("store.csv",)

    def kind_defaults(self) -> dict:
        """A config written before the recent sales levels existed trains without them, as it did then."""
        return merged(super().kind_defaults(), {"data": {"recent_days": [], "recent_lag": 48, "recent_by": [],
                                                          "event_horizon": 0}})

    # ------------------------------------------------------------------ data
    def check_raw(self, data_dir):
        super().check_raw(data_dir)
        features.train_path(Path(data_dir))

    def load(self, data_dir, config) -> features.RossmannData:
        self.check_raw(data_dir)
        return features.load(Path(data_dir))

    def columns(self, raw: features.RossmannData, config) -> tuple[list[str], list[str]]:
        """The config's categorical and continuous columns, without the optional files' ones if absent."""
        d = config["data"]
        absent = OPTIONAL_COLUMNS if raw.weather is None else set()
        if "State" not in raw.store.columns:
            absent = absent | {"State"}
        if raw.trends is None:
            absent = absent | TREND_COLUMNS
        recent = list(features.recent_sales_windows(d["recent_days"], d["recent_by"]))
        if d["event_horizon"]:
            recent.append(features.HORIZON_COLUMN)
        dropped = [c for c in [*d["cat_cols"], *d["cont_cols"]] if c in absent]
        if dropped and "warned_optional" not in raw.cache:
            raw.cache["warned_optional"] = True
            click.echo(f"note: {raw.data_dir} lacks store_states.csv, weather/ or googletrend.csv; "
                       f"not using {', '.join(dropped)}", err=True)
        return ([c for c in d["cat_cols"] if c not in absent],
                [c for c in d["cont_cols"] if c not in absent] + [c for c in recent if c not in d["cont_cols"]])

    def features(self, raw: features.RossmannData, config) -> pd.DataFrame:
        """Train and test rows with every feature, computed once per data and feature settings."""
        d = config["data"]
        key = config_hash({k: d[k] for k in ("events", "event_window", "event_max_days", "event_horizon",
                                             "recent_days", "recent_lag", "recent_by")})
        if key not in raw.cache:
            rows = [raw.train.assign(Id=-1)]
            if raw.test is not None:
                rows.append(raw.test.assign(Sales=np.nan, Customers=np.nan))
            frame = pd.concat(rows, ignore_index=True)
            raw.cache.clear()
            raw.cache[key] = features.add_features(frame, raw, d["events"], d["event_window"], d["event_max_days"],
                                                   d["recent_days"], d["recent_lag"], d["recent_by"],
                                                   d["event_horizon"])
        return raw.cache[key]

    def split_masks(self, frame: pd.DataFrame, config) -> tuple[np.ndarray, np.ndarray]:
        """Rows with sales, split by date: the last ``valid_days`` days of train.csv validate."""
        has_sales = self.sales_mask(frame)
        days = int(config["data"]["valid_days"])
        if days <= 0:
            return has_sales, np.zeros_like(has_sales)
        dates = frame["Date"].to_numpy()
        start = dates[has_sales].max() - np.timedelta64(days - 1, "D")
        late = dates >= start
        if not (has_sales & ~late).any():
            raise HarnessError(f"data.valid_days = {days} covers all of train.csv; use fewer days")
        return has_sales & ~late, has_sales & late

    def split(self, frame: pd.DataFrame, config) -> tuple[pd.DataFrame, pd.DataFrame]:
        train, valid = self.split_masks(frame, config)
        return frame[train], frame[valid]

    # ------------------------------------------------------------------ preprocessing
    def fold_rows(self, raw, config):
        """The training rows with sales (those trained and scored on), in train.csv's order."""
        self.check_recent_lag(config, folds=True)
        frame = self.features(raw, config)
        return frame.loc[self.sales_mask(frame), ["Store", "Date", "Sales"]].reset_index(drop=True)

    @staticmethod
    def sales_mask(frame: pd.DataFrame) -> np.ndarray:
        return ((frame["Id"] == -1) & (frame["Sales"] > 0)).to_numpy()

    @staticmethod
    def check_recent_lag(config, folds: bool) -> None:
        """The recent sales levels must not read the validation window's own sales: it may be no longer
        than data.recent_lag (for time folds, valid_size plus gap, as a test after a gap would be)."""
        d, v = config["data"], config.get("validation", {})
        if not d["recent_days"]:
            return
        if folds and v.get("scheme") == "time":
            ahead, what = (v.get("valid_size") or 0) + (v.get("gap") or 0), "validation.valid_size + validation.gap"
        elif folds:
            return  # shuffled folds: a row's level is read from other days, never from the row itself
        else:
            ahead, what = d["valid_days"], "data.valid_days"
        if ahead > d["recent_lag"]:
            raise HarnessError(f"config: {what} = {ahead:g} days, but data.recent_lag = {d['recent_lag']}: the recent "
                               "sales levels (data.recent_days) would read the validation window's own sales; set "
                               f"data.recent_lag = {math.ceil(ahead)} or more, or data.recent_days = []")

    def prepare(self, raw, config, rows=None) -> Prepared:
        if rows is None:  # (K folds are checked by fold_rows, before their run folder exists)
            self.check_recent_lag(config, folds=False)
        frame = self.features(raw, config)
        if rows is None:
            train, valid = self.split_masks(frame, config)
        else:  # positions into fold_rows, i.e. into the rows with sales
            with_sales = np.flatnonzero(self.sales_mask(frame))
            train, valid = np.zeros(len(frame), dtype=bool), np.zeros(len(frame), dtype=bool)
            train[with_sales[rows[0]]], valid[with_sales[rows[1]]] = True, True
        cat_cols, cont_cols = self.columns(raw, config)
        # Fit on the training rows only, then transform every row once and cut the arrays:
        # much cheaper than copying a million-row frame per split.
        state = fit_tabular(frame, cat_cols, cont_cols, source="train.csv (with features)", rows=train,
                            scaling=self.cont_scaling(config))
        sales = frame["Sales"].to_numpy(dtype=np.float64)
        log_sales = np.log(sales[train])
        state["target"] = {"mean_log": float(log_sales.mean()),
                           "y_range": [0.0, float(np.log(1.2 * sales[train].max()))]}
        state["valid_start"] = str(frame["Date"][valid].min().date()) if valid.any() else None
        arrays = transform_tabular(frame, state)
        target = np.log(np.where(train | valid, sales, 1.0)).astype(np.float32)
        if config["model"]["kind"] == "gbm":
            return self.gbm_prepared(state, arrays, target, train, valid)
        t = config["train"]
        seed = int(config.get("seed", 0))
        import torch

        from harness.data.loaders import TensorLoader

        def loader(rows, batch_size, shuffle=False):
            inputs = (torch.from_numpy(arrays.cats[rows]), torch.from_numpy(arrays.conts[rows]))
            return TensorLoader(inputs, torch.from_numpy(target[rows]), batch_size=batch_size, shuffle=shuffle,
                                seed=seed)

        return Prepared(train_dl=loader(train, t["batch_size"], shuffle=True),
                        valid_dl=loader(valid, 8192) if valid.any() else None, state=state)

    def loader(self, frame, state, batch_size) -> TensorLoader:
        """Inputs (and log sales, where known) of ``frame``'s rows, in order, for prediction."""
        import torch

        from harness.data.loaders import TensorLoader

        arrays = transform_tabular(frame, state)
        target = None
        if "Sales" in frame and frame["Sales"].notna().all():
            target = torch.from_numpy(np.log(frame["Sales"].to_numpy(dtype=np.float64)).astype(np.float32))
        return TensorLoader((torch.from_numpy(arrays.cats), torch.from_numpy(arrays.conts)), target,
                            batch_size=batch_size)

    # ------------------------------------------------------------------ model
    def build_model(self, state, config) -> nn.Module:
        from harness.models.tabular import TabularModel

        m = config["model"]
        widths = {c: w for c, w in m.get("emb_widths", {}).items() if w and c in state["cat_cols"]}
        sizes = embedding_sizes(state, m["emb_rule"], widths, m["emb_multiplier"])
        layers = [max(1, round(size * m["layer_scale"])) for size in m["layers"]]
        dropouts = [min(0.9, p * m["dropout_scale"]) for p in m["dropouts"]]
        if len(dropouts) != len(layers):
            raise HarnessError(f"model.dropouts has {len(dropouts)} values for {len(layers)} model.layers; give one per layer")
        y_range = m["y_range"] or state["target"]["y_range"]  # the schema checks a configured [lo, hi]
        return TabularModel(sizes, len(cont_names(state)), layers, dropouts, m["emb_drop"], y_range,
                            batchnorm=m["batchnorm"], init_output=state["target"]["mean_log"],
                            emb_names=state["cat_cols"])

    def metrics(self, config):
        from harness.scoring.metrics import exp_rmspe

        return [exp_rmspe]

    # ------------------------------------------------------------------ submission
    def predict(self, learn, state, raw, config):
        if raw.test is None:
            return None
        frame = self.features(raw, config)
        test = frame[frame["Id"] != -1]
        if config["model"]["kind"] == "gbm":
            log_preds = self.gbm_outputs(learn, transform_tabular(test, state))
        else:
            log_preds = learn.predict(self.loader(test, state, 8192)).numpy().astype(np.float64)
        sales = np.where(test["Open"].to_numpy() == 0, 0.0, np.exp(log_preds))
        by_id = pd.Series(sales, index=test["Id"].to_numpy())
        ids = raw.sample["Id"].to_numpy() if raw.sample is not None else np.sort(test["Id"].to_numpy())
        submission = pd.DataFrame({"Id": ids, "Sales": by_id.reindex(ids).to_numpy()})
        return Predictions(submission, pd.Series(log_preds, index=test["Id"].to_numpy()).reindex(ids).to_numpy())

    def submission_from_outputs(self, outputs, template, valid=None, config=None):
        """Sales from log-sales outputs; stores the template predicts closed (0) stay at 0."""
        sales = np.where(template["Sales"].to_numpy() == 0, 0.0, np.exp(np.asarray(outputs, dtype=np.float64)))
        return template.assign(Sales=sales)

    def check_submission(self, submission, raw):
        sample = raw.sample if raw.sample is not None else pd.DataFrame({"Id": raw.test["Id"], "Sales": 0.0})
        validate_submission(submission, sample, id_column="Id", value_range=(0.0, math.inf),
                            name="rossmann submission")
        if not np.array_equal(submission["Id"].to_numpy(), sample["Id"].to_numpy()):
            raise HarnessError("rossmann submission: rows are not in sample_submission.csv's Id order")

    # ------------------------------------------------------------------ sample data
    def write_sample(self, data_dir, seed=0):
        from harness_plugins.rossmann.sample import write_sample

        write_sample(Path(data_dir), seed)


@hookimpl
def register_competitions(register):
    register(Rossmann())
