"""The tabular kind: one table in (CSV, CSV in .gz or .zip, TSV, Parquet), one target out.

Column types are inferred (harness.data.columns) and overridable; dates become date parts; other
tables join on declared keys (a checked join). The lesson's proc_df state (harness.data.tabular)
turns the rows into category codes and normalised numbers, which feed either the entity-embedding
network (``model.kind = "nn"``) or LightGBM (``"gbm"``), under the same folds, so the two blend.
The submission takes its shape from the sample submission (harness.scoring.sample).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from harness.config.schema import (COUNT, NON_NEGATIVE, OPTIONAL_COUNT, POSITIVE, Choice, Flag, ListOf, Num,
                                   Table, Text)
from harness.data.columns import CATEGORICAL_DATE_PARTS, ColumnTypes, infer_columns
from harness.data.files import read_table
from harness.data.dates import ELAPSED
from harness.data.tabular import SCALINGS
from harness.data.targets import TARGET_TRANSFORMS, forward_transform, inverse_transform, natural_key
from harness.errors import HarnessError
from harness.host.competition import Predictions, Prepared
from harness.kinds.base import KindCompetition
from harness.scoring.tasks import get_task
from harness.train.boosting import DEFAULTS as GBM_DEFAULTS

SUBMISSION_FORMATS = ("", "values", "labels", "probabilities", "class_probabilities")

# What a TOML of this kind may leave out. The network's defaults are fastai's tabular_learner's
# (layers 200-100, its embedding rule, batch norm) with the lesson's dropouts; LightGBM's are its own,
# with rounds chosen by early stopping on an inner split of the training rows. Chosen before any
# benchmark was run, so no benchmark's rows chose them.
DEFAULTS = {
    "metric": "",
    "seed": 0,
    "data": {"train": "train.csv", "test": "test.csv", "sample_submission": "", "id": "", "target": "",
             "target_transform": "", "drop": [], "categorical": [], "continuous": [], "dates": [],
             "max_card": 20, "joins": []},
    "submission": {"format": "", "columns": [], "id_column": "", "classes": [], "positive": "",
                   "nonnegative": False},
    "model": {"kind": "nn", "layers": [200, 100], "dropouts": [0.001, 0.01], "emb_drop": 0.04,
              "emb_rule": "fastai", "emb_multiplier": 1.0, "layer_scale": 1.0, "dropout_scale": 1.0,
              "batchnorm": True, "cont_scaling": "standard"},
    "gbm": dict(GBM_DEFAULTS),
    "train": {"epochs": 6, "lr": 0.005, "schedule": "one-cycle", "pct_start": 0.25, "wd": 0.01,
              "batch_size": 256, "clip": 0.0, "early_stopping_patience": 0, "mixed_precision": "auto"},
    "validation": {"scheme": "kfold", "valid_pct": 0.2, "split_seed": 0},
}

JOIN = Table({"file": Text(), "on": ListOf(Text(), min_len=1)}, required=("file", "on"))


@dataclass
class TabularData:
    """The competition's rows, read once: features with date parts, the target, test rows and the sample."""

    train: pd.DataFrame
    test: pd.DataFrame | None
    sample: pd.DataFrame | None
    columns: ColumnTypes
    cat_cols: list[str]
    cont_cols: list[str]
    target: np.ndarray  # per training row, on the model's scale (transformed value, 0/1, class index)
    classes: list  # the target's values per class index (binary: [negative, positive]); [] for regression
    test_ids: np.ndarray | None
    data_dir: Path
    config: dict | None = None  # the config it was read with (its submission format)


class TabularModels(KindCompetition):
    """The model side of a tabular competition, shared by the kind and by plugins that bring their own
    features (Rossmann): the entity-embedding network or LightGBM (``model.kind``) on the proc_df arrays,
    trained by the shared runner under the same folds."""

    task = get_task("regression")
    config_schema = {
        "model.kind": Choice("nn", "gbm"),
        "model.cont_scaling": Choice(*SCALINGS),
        "gbm.n_estimators": COUNT, "gbm.learning_rate": Num(0, lo_open=True), "gbm.num_leaves": Num(2, whole=True),
        "gbm.min_child_samples": OPTIONAL_COUNT, "gbm.feature_fraction": Num(0, 1, lo_open=True),
        "gbm.bagging_fraction": Num(0, 1, lo_open=True), "gbm.bagging_freq": OPTIONAL_COUNT,
        "gbm.lambda_l2": NON_NEGATIVE, "gbm.max_bin": Num(2, whole=True), "gbm.early_stopping_rounds": OPTIONAL_COUNT,
        "gbm.inner_valid_pct": Num(0, 1, lo_open=True, hi_open=True), "gbm.refit": Flag(),
        "gbm.categorical": Choice("native", "ordinal"), "gbm.num_threads": OPTIONAL_COUNT,
    }

    def kind_defaults(self) -> dict:
        """What a config written before a key existed trains with, as it did then."""
        return {"model": {"kind": "nn", "cont_scaling": "standard"}, "gbm": dict(GBM_DEFAULTS)}

    def n_outputs(self, state) -> int:
        return len(state["classes"]) if self.task.kind == "multiclass" else 1

    def layer_groups(self, model):
        return model.layer_groups()

    def loss_fn(self, config):
        return self.task.default_loss()

    def make_learner(self, prepared: Prepared, config, echo=True, progress=None):
        """LightGBM's learner for ``model.kind = "gbm"``; None: the shared torch Learner."""
        if config["model"]["kind"] != "gbm":
            return None
        from harness.data.tabular import cont_names
        from harness.train.boosting import BoostingLearner

        state = prepared.state
        return BoostingLearner(self.task, prepared.extra.get("train"), prepared.extra.get("valid"),
                               self.scored_by(config), dict(config["gbm"]), categorical=list(range(len(state["cat_cols"]))),
                               feature_names=[*state["cat_cols"], *cont_names(state)],
                               seed=int(config.get("seed", 0)), echo=echo, progress=progress,
                               n_classes=self.n_outputs(state) if self.task.kind == "multiclass" else None,
                               target_name=config["data"].get("target") or "target")

    def training_batch_size(self, config):
        return None if config["model"]["kind"] == "gbm" else super().training_batch_size(config)

    @staticmethod
    def cont_scaling(config) -> str:
        """How ``fit_tabular`` scales the continuous columns: the config's ``model.cont_scaling`` for the
        network; for LightGBM always "standard", since trees see only the order of values, which the
        quantile scaling would coarsen (1000 steps, and every value past the training range on one score)."""
        return "standard" if config["model"]["kind"] == "gbm" else config["model"]["cont_scaling"]

    @staticmethod
    def gbm_prepared(state, arrays, target, train_rows, valid_rows) -> Prepared:
        """LightGBM's training and validation matrices (no loaders: it reads them whole)."""
        X = gbm_matrix(arrays)
        return Prepared(None, None, state, extra={
            "train": (X[train_rows], target[train_rows]),
            "valid": (X[valid_rows], target[valid_rows]) if len(X[valid_rows]) else None})

    @staticmethod
    def gbm_outputs(learn, arrays) -> np.ndarray:
        return np.asarray(learn.predict(gbm_matrix(arrays)), dtype=np.float64)

    def train(self, ctx):
        if ctx.config["model"]["kind"] == "gbm":
            ctx.learn.fit()
        else:
            super().train(ctx)


class TabularCompetition(TabularModels):
    kind = "tabular"
    config_schema = {
        **TabularModels.config_schema,
        "kind": Choice("tabular"),
        "task": Choice("regression", "binary", "multiclass"),
        "description": Text(),
        "kaggle_slug": Text(),
        "data.train": Text(), "data.test": Text(), "data.sample_submission": Text(), "data.id": Text(),
        "data.target": Text(), "data.target_transform": Choice(*TARGET_TRANSFORMS),
        "data.drop": ListOf(Text()), "data.categorical": ListOf(Text()), "data.continuous": ListOf(Text()),
        "data.dates": ListOf(Text()), "data.max_card": OPTIONAL_COUNT, "data.joins": ListOf(JOIN),
        "submission.format": Choice(*SUBMISSION_FORMATS), "submission.columns": ListOf(Text()),
        "submission.id_column": Text(), "submission.classes": ListOf(Text()), "submission.positive": Text(),
        "submission.nonnegative": Flag(),
        "train.lr": POSITIVE,
    }

    def kind_defaults(self) -> dict:
        return DEFAULTS

    def read_config(self, path) -> dict:
        config = super().read_config(path)
        validation = config["validation"]
        if validation.get("scheme") == "stratified" and not validation.get("target"):
            validation["target"] = config["data"]["target"]  # stratify on the target's classes
        return config

    # ------------------------------------------------------------------ files
    def data_files(self, config) -> dict[str, str]:
        d = config["data"]
        return {"train": d["train"], "test": d["test"], "sample": d["sample_submission"],
                **{f"join {j['file']}": j["file"] for j in d["joins"]}}

    def check_raw(self, data_dir: Path) -> None:
        config = self.default_config()
        for role, name in self.data_files(config).items():
            if name and not (Path(data_dir) / name).is_file():
                raise HarnessError(f"{Path(data_dir) / name} is missing (the {role} file of {self.name}); "
                                   f"copy the competition's files there or fix data.{'sample_submission' if role == 'sample' else role} "
                                   f"in {self.config_path}")

    def load(self, data_dir, config) -> TabularData:
        data_dir = Path(data_dir)
        d = config["data"]
        if not d["target"]:
            raise HarnessError(f"config: data.target is empty ({self.config_path}); name the column to predict")
        train = read_table(data_dir / d["train"], required=[d["target"]])
        test = read_table(data_dir / d["test"]) if d["test"] else None
        sample = read_table(data_dir / d["sample_submission"]) if d["sample_submission"] else None
        for join in d["joins"]:
            from harness.data.tabular import join_checked

            other = read_table(data_dir / join["file"], required=join["on"])
            train = join_checked(train, other, join["on"], join["file"], d["train"])
            if test is not None:
                test = join_checked(test, other, join["on"], join["file"], d["test"])
        train = self.add_features(train, config)
        test = self.add_features(test, config) if test is not None else None
        raw_target = train[d["target"]]
        if raw_target.isna().any():
            row = int(raw_target.isna().to_numpy().argmax())
            raise HarnessError(f"{data_dir / d['train']}: target column {d['target']} is empty at data row {row + 1}; "
                               "fill or remove the rows without an answer")
        if d["id"] and test is not None and d["id"] not in test.columns:
            raise HarnessError(f"{data_dir / d['test']} has no id column {d['id']} (data.id); "
                               f"its columns: {', '.join(map(str, test.columns))}")
        types = infer_columns(train, test, [d["target"]], d["id"], d["drop"], d["categorical"], d["continuous"],
                              d["dates"], d["max_card"], source=str(data_dir / d["train"]))
        train, test, cat_cols, cont_cols = self.expand_dates(train, test, types,
                                                             (data_dir / d["train"], data_dir / d["test"]))
        target, classes = self.encode_target(raw_target, config, data_dir / d["train"])
        test_ids = None
        if test is not None:
            test_ids = test[d["id"]].to_numpy() if d["id"] else np.arange(len(test))
        return TabularData(train, test, sample, types, cat_cols, cont_cols, target, classes, test_ids, data_dir,
                           config)

    def add_features(self, frame: pd.DataFrame, config) -> pd.DataFrame:
        """A subclass's own features, computed on the train and the test table alike (each on its own:
        a feature that needs both, as Rossmann's event counts, belongs in an overridden ``load``).
        Its new columns are typed like any other (or declared in data.categorical / data.continuous)."""
        return frame

    @staticmethod
    def expand_dates(train, test, types: ColumnTypes, sources=("train", "test")):
        """Date columns replaced by their parts (fastai's add_datepart), typed as categories or numbers;
        ``sources`` name the two tables in an error (their files)."""
        from harness.data.dates import add_date_parts, parse_dates

        cat_cols, cont_cols = list(types.categorical), list(types.continuous)
        frames = [f for f in (train, test) if f is not None]
        frames = [f.copy() for f in frames] if types.dates else frames
        for col in types.dates:
            for f, source in zip(frames, sources):  # parsed once: the parts of train and test agree on times of day
                f[col] = parse_dates(f, col, source=source)
            with_time = any(bool((f[col] != f[col].dt.normalize()).any()) for f in frames)
            before = set(frames[0].columns)
            for f in frames:
                add_date_parts(f, col, prefix=date_prefix(col), time=with_time)
            for part in [c for c in frames[0].columns if c not in before]:
                if frames[0][part].nunique() <= 1:  # e.g. Minute of hourly rows: nothing to learn from
                    types.left_out[part] = "a date part with a single value"
                    continue
                (cat_cols if part[len(col) + 1:] in CATEGORICAL_DATE_PARTS else cont_cols).append(part)
        return frames[0], (frames[1] if len(frames) > 1 else None), cat_cols, cont_cols

    def encode_target(self, values: pd.Series, config, source) -> tuple[np.ndarray, list]:
        """The target on the model's scale, and the class values (index -> original value)."""
        kind, d, s = self.task.kind, config["data"], config["submission"]
        if kind == "regression":
            y = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
            if np.isnan(y).any():
                row = int(np.isnan(y).argmax())
                raise HarnessError(f"{source}: target {values.name} has a non-numeric value {values.iloc[row]!r} at "
                                   f"data row {row + 1}; a regression target is a number")
            transform = d["target_transform"]
            low = 0.0 if transform == "log1p" else 1e-300
            if transform and (y < (0 if transform == "log1p" else low)).any():
                raise HarnessError(f"{source}: data.target_transform = {transform!r} needs target {values.name} "
                                   f"{'≥ 0' if transform == 'log1p' else '> 0'}; found {y.min():g}")
            return forward_transform(y, transform).astype(np.float32), []
        keys = values.astype(str).to_numpy()
        found = sorted(set(keys), key=natural_key)
        if kind == "binary":
            if len(found) != 2:
                raise HarnessError(f"{source}: a binary target has two values; {values.name} has {len(found)} "
                                   f"({', '.join(found[:5])}); set task = \"multiclass\" or \"regression\"")
            positive = s["positive"] or ("1" if "1" in found else "True" if "True" in found else found[1])
            if positive not in found:
                raise HarnessError(f"submission.positive = {positive!r} is not a value of {values.name} "
                                   f"({', '.join(found)})")
            classes = [v for v in found if v != positive] + [positive]
        else:
            classes = list(s["classes"]) or found
            unknown = sorted(set(found) - set(classes))
            if unknown:
                raise HarnessError(f"{source}: target {values.name} has value(s) {', '.join(unknown[:5])} that "
                                   f"submission.classes does not list")
        if not s["classes"]:  # the saved config then holds the class order that submissions and blends need
            s["classes"] = list(classes)
        index = {c: i for i, c in enumerate(classes)}
        y = np.array([index[k] for k in keys], dtype=np.int64)
        return (y.astype(np.float32) if kind == "binary" else y), classes

    def check_inputs(self, raw: TabularData, config) -> None:
        """The sample's ids must be the test's, and the [submission] columns its columns: found now, not
        after training."""
        if raw.test is not None and raw.sample is not None and config["data"]["id"]:
            from harness.scoring.sample import rows_for

            rows_for(raw.sample[raw.sample.columns[0]], raw.test_ids)
        if raw.sample is not None:
            from harness.kinds.tabular_submission import submission_format

            fmt = submission_format(self.task, config, raw.sample)
            have = [str(c) for c in raw.sample.columns]
            for key, names in (("id_column", [fmt.id_column]), ("columns", list(fmt.columns))):
                missing = [n for n in names if n not in have]
                if missing:
                    raise HarnessError(f"submission.{key} = {config['submission'][key]!r} names {', '.join(missing)}, "
                                       f"not a column of the sample submission "
                                       f"{raw.data_dir / config['data']['sample_submission']} ({', '.join(have)}); "
                                       f"fix submission.{key} in {self.config_path}, or leave it empty to take the "
                                       "sample's")

    def fold_rows(self, raw: TabularData, config):
        """Every training row; the target as the class labels (stratified folds) or the value."""
        rows = raw.train.copy(deep=False)
        target = config["data"]["target"]
        rows[target] = raw.target if self.task.kind == "regression" else np.asarray(raw.target).astype(int)
        return rows

    def holdout_rows(self, raw: TabularData, config) -> tuple[np.ndarray, np.ndarray]:
        """A run without K folds validates on ``validation.valid_pct`` of the rows (the last window for a
        time scheme), cut by split_seed."""
        from harness.data.folds import assign_folds

        v = dict(config["validation"])
        rows = self.fold_rows(raw, config)
        if v.get("scheme") == "time":
            plan = assign_folds(rows, {**v, "folds": 1})
        else:
            plan = assign_folds(rows, {"scheme": "holdout", "valid_pct": v.get("valid_pct", 0.2),
                                       "split_seed": v.get("split_seed", 0)})
        return plan.train_index(0), plan.valid_index(0)

    # ------------------------------------------------------------------ preprocessing
    def prepare(self, raw: TabularData, config, rows=None) -> Prepared:
        from harness.data.tabular import fit_tabular, transform_tabular

        train_rows, valid_rows = rows if rows is not None else self.holdout_rows(raw, config)
        mask = np.zeros(len(raw.train), dtype=bool)
        mask[train_rows] = True
        state = fit_tabular(raw.train, raw.cat_cols, raw.cont_cols, source=str(raw.data_dir / config["data"]["train"]),
                            rows=mask, scaling=self.cont_scaling(config),
                            trends=[c for c in map(elapsed_column, raw.columns.dates) if c in raw.cont_cols])
        state["classes"] = list(raw.classes)
        if self.task.kind == "regression":
            y = raw.target[train_rows].astype(np.float64)
            span = float(y.max() - y.min()) or 1.0
            state["target"] = {"mean": float(y.mean()), "y_range": [float(y.min() - 0.05 * span),
                                                                    float(y.max() + 0.05 * span)]}
        arrays = transform_tabular(raw.train, state)  # every row once, then cut (cheaper than per split)
        has_valid = len(valid_rows) > 0
        if config["model"]["kind"] == "gbm":
            return self.gbm_prepared(state, arrays, raw.target, train_rows, valid_rows)
        t = config["train"]
        seed = int(config.get("seed", 0))
        return Prepared(train_dl=self.loader(arrays, raw.target, train_rows, t["batch_size"], shuffle=True, seed=seed),
                        valid_dl=self.loader(arrays, raw.target, valid_rows, 4096) if has_valid else None,
                        state=state)

    @staticmethod
    def loader(arrays, target, rows, batch_size, shuffle=False, seed=0):
        import torch

        from harness.data.loaders import TensorLoader

        inputs = (torch.from_numpy(arrays.cats[rows]), torch.from_numpy(arrays.conts[rows]))
        y = None if target is None else torch.from_numpy(np.asarray(target)[rows])
        return TensorLoader(inputs, y, batch_size=batch_size, shuffle=shuffle, seed=seed,
                            drop_last_single=shuffle)

    # ------------------------------------------------------------------ model
    def build_model(self, state, config):
        from harness.data.tabular import cont_names, embedding_sizes
        from harness.models.tabular import TabularModel

        m = config["model"]
        if m["kind"] == "gbm":
            raise HarnessError("a gbm model is not a network; `harness model` shows its parameters instead")
        sizes = embedding_sizes(state, m["emb_rule"], {}, m["emb_multiplier"])
        layers = [max(1, round(size * m["layer_scale"])) for size in m["layers"]]
        dropouts = [min(0.9, p * m["dropout_scale"]) for p in m["dropouts"]]
        if len(dropouts) != len(layers):
            raise HarnessError(f"model.dropouts has {len(dropouts)} values for {len(layers)} model.layers; "
                               "give one per layer")
        regression = self.task.kind == "regression"
        return TabularModel(sizes, len(cont_names(state)), layers, dropouts, m["emb_drop"],
                            y_range=state["target"]["y_range"] if regression else None,
                            batchnorm=m["batchnorm"], init_output=state["target"]["mean"] if regression else None,
                            emb_names=state["cat_cols"], n_out=self.n_outputs(state))

    def metrics(self, config):
        """The config's metric (else the task's usual one), on the target's own scale."""
        return [self.metric_on_target_scale(config.get("metric") or default_metric(self.task), config)]

    def scored_by(self, config):
        return self.metrics(config)

    def metric_on_target_scale(self, name: str, config):
        from harness.scoring.metrics import Metric, get_metric, learner_metric

        declared = get_metric(name)
        transform = config["data"]["target_transform"] if self.task.kind == "regression" else ""
        if not transform:
            return learner_metric(declared, self.task)
        return Metric(declared.name, partial(score_inverted, declared, self.task, transform), declared.higher_is_better)

    # ------------------------------------------------------------------ submission
    def predict(self, learn, state, raw: TabularData, config):
        if raw.test is None:
            return None
        from harness.data.tabular import transform_tabular

        arrays = transform_tabular(raw.test, state, source=str(raw.data_dir / config["data"]["test"]))
        if config["model"]["kind"] == "gbm":
            outputs = self.gbm_outputs(learn, arrays)
        else:
            outputs = learn.predict(self.loader(arrays, None, np.arange(len(raw.test)), 4096)).numpy().astype(np.float64)
        valid = None
        if getattr(learn, "valid_preds", None) is not None:
            valid = (np.asarray(learn.valid_preds, dtype=np.float64), np.asarray(learn.valid_targets))
        template = self.template(raw, config)
        by_id = self.outputs_by_id(outputs, raw, template, config)
        return Predictions(self.submission_from_outputs(by_id, template, valid=valid, config=config), by_id)

    def template(self, raw: TabularData, config) -> pd.DataFrame:
        """The sample submission (or, without one, the test ids with the target's column)."""
        if raw.sample is not None:
            return raw.sample
        d = config["data"]
        id_column = config["submission"]["id_column"] or d["id"] or "id"
        columns = config["submission"]["columns"] or (
            [str(c) for c in raw.classes] if self.task.kind == "multiclass" else [d["target"]])
        return pd.DataFrame({id_column: raw.test_ids, **{c: 0.0 for c in columns}})

    def outputs_by_id(self, outputs, raw: TabularData, template, config) -> np.ndarray:
        """The test outputs in the template's row order (matched by id; without an id, in file order)."""
        from harness.scoring.sample import rows_for

        if not config["data"]["id"]:
            return outputs
        return outputs[rows_for(template[template.columns[0]], raw.test_ids)]

    def submission_from_outputs(self, outputs, template, valid=None, config=None):
        """The template filled from outputs in its row order, in the sample's format."""
        from harness.kinds.tabular_submission import fill_submission

        return fill_submission(self.task, config or self.default_config(), outputs, template, valid)

    def check_submission(self, submission, raw: TabularData):
        from harness.kinds.tabular_submission import check_submission

        config = self.default_config() if raw.config is None else raw.config
        check_submission(self.task, config, submission, self.template(raw, config), f"{self.name} submission")

    # ------------------------------------------------------------------ extras
    def data_summary(self, raw: TabularData) -> str:
        return raw.columns.table()


def date_prefix(column: str) -> str:
    """The prefix of a date column's parts: ``Date`` gives ``Date_Year``, ``Date_Elapsed`` ..."""
    return f"{column}_"


def elapsed_column(column: str) -> str:
    """The date column's elapsed days (a trend, which the network extrapolates to later rows)."""
    return date_prefix(column) + ELAPSED


def default_metric(task) -> str:
    return {"regression": "rmse", "binary": "roc_auc", "multiclass": "log_loss"}[task.kind]


def score_inverted(declared, task, transform, preds, targets) -> float:
    """A regression metric on the target's own scale for a model that learns a transformed target."""
    from harness.scoring.metrics import score

    p = inverse_transform(np.asarray(to_numpy(preds), dtype=np.float64), transform)
    t = inverse_transform(np.asarray(to_numpy(targets), dtype=np.float64), transform)
    return score(declared, p, t, task)


def to_numpy(x):
    return x.detach().float().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


def gbm_matrix(arrays) -> np.ndarray:
    """Category codes then the continuous block, one float matrix for LightGBM."""
    return np.hstack([arrays.cats.astype(np.float64), arrays.conts.astype(np.float64)])
