"""What a competition plugin provides. Subclass ``Competition`` and override what is special.

The shared flow (``harness.runs.runner``) calls these in order:

    load(data_dir, config)            -> raw data, checked (HarnessError names the file/column)
    check_inputs(raw, config)         -> checks that need no model (test ids against the sample...)
    prepare(raw, config)              -> Prepared: loaders plus fitted preprocessing state
    build_model(state, config)        -> nn.Module (rebuilt from the saved state at predict time)
    layer_groups(model)               -> parameter groups for differential rates and freezing
    loss_fn(config), metrics(config)  -> the first metric is the primary one
    train(ctx)                        -> the training recipe (default: one fit from [train]); ctx is a
                                         TrainContext: the learner, config, prepared data, run, workspace
    predict(learn, state, raw, config)-> Predictions: submission frame plus raw outputs
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.config.loading import load_config
from harness.errors import HarnessError

if TYPE_CHECKING:  # only for annotations: loading a plugin must not import torch, numpy or pandas
    import numpy as np
    import pandas as pd
    from torch import nn

    from harness.scoring.metrics import Metric


@dataclass
class Prepared:
    """The output of preprocessing: loaders, and the fitted state needed again at test time."""

    train_dl: Any
    valid_dl: Any
    state: dict  # JSON-serialisable; saved with the run as preprocessing.json
    extra: dict = field(default_factory=dict)  # anything else the plugin wants to pass along


@dataclass
class TrainContext:
    """What a competition's training recipe works with. ``learn`` trains ``prepared``'s loaders; the
    run folder ``run`` takes any extra files the recipe writes (IMDB's language model, its history)."""

    learn: Any  # harness.train.Learner
    config: dict
    prepared: Prepared
    run: Any  # harness.runs.folder.Run
    workspace: Path


@dataclass
class Predictions:
    submission: pd.DataFrame  # exactly the competition's submission format
    raw: np.ndarray  # model outputs per submission row (the scale of valid_preds.npy), which blending averages
    # Scores on test rows whose answers the data holds (e.g. aclImdb's labelled test reviews); the
    # runner saves them with the run as test_metrics.json.
    test_metrics: dict = field(default_factory=dict)


class Competition:
    name: str = ""
    kaggle_slug: str | None = None  # None: no Kaggle counterpart (scored locally)
    description: str = ""
    config_path: Path | None = None  # the default config (TOML)
    raw_files: tuple[str, ...] = ()  # files `harness data --from` copies and checks
    # How `harness submit` checks a submission against the sample submission before uploading.
    submission_range: tuple[float, float] | None = None  # allowed prediction values
    submission_probabilities: bool = False  # rows of class probabilities that must sum to 1
    solution_file: str = "solution.csv"  # held-out answers for competitions scored locally
    pretrained_key: str | None = None  # the config key `harness train --pretrained PATH` sets
    # The task its model solves (harness.scoring.tasks.get_task(...)): with it, a config's top-level
    # `metric = "roc_auc"` picks any registry metric that fits the task as the primary one.
    task = None
    # Rules for this competition's own config keys (key -> harness.config.schema rule), checked with
    # the shared ones whenever its config is read or a key is set.
    config_schema: dict = {}

    # -------------------------------------------------------------- config and data
    def default_config(self) -> dict:
        if self.config_path is None:
            raise HarnessError(f"competition {self.name} has no default config")
        return self.read_config(self.config_path)

    def read_config(self, path) -> dict:
        """A config file of this competition (its default, or a user's --config), checked."""
        return load_config(path, schema=self.config_schema)

    def check_raw(self, data_dir: Path) -> None:
        """Raise HarnessError naming the first missing file (or a folder where a file should be)."""
        from harness.data.files import check_file

        for name in self.raw_files:
            path = Path(data_dir) / name
            if not path.exists():
                raise HarnessError(f"{path} is missing; run `harness data {self.name} --sample` "
                                   f"or `harness data {self.name} --from DIR` with the competition's files")
            check_file(path)

    def write_sample(self, data_dir: Path, seed: int = 0) -> None:
        """Write a small dataset in the competition's own file format (demo and tests)."""
        raise HarnessError(f"competition {self.name} has no generated sample data; give its files with "
                           f"`harness data {self.name} --from DIR` (or --download)")

    def load(self, data_dir: Path, config: dict):
        raise NotImplementedError

    def check_inputs(self, raw, config: dict) -> None:
        """Raise HarnessError for anything that would fail after training but can be seen now (test ids
        missing from the sample submission, unknown ids with ``data.unknown_ids = "error"``), so a
        doomed run never starts."""

    # -------------------------------------------------------------- model and training
    def fold_rows(self, raw, config: dict):
        """The training rows that validation folds are cut from (a DataFrame, one row each, with any
        column a scheme may use: the target, a group, a date), or None if this competition trains on
        its own split only. With it, ``prepare`` must accept ``rows``."""
        return None

    def training_batch_size(self, config: dict) -> int | None:
        """How many of ``fold_rows``' rows one training batch takes (``train.batch_size``): K folds check it
        against every fold's training rows before the run folder exists. None: the model trains without
        batches (LightGBM, NB-SVM), so any fold size will do."""
        return config.get("train", {}).get("batch_size")

    def predefined_folds(self, raw, config: dict, rows):
        """A fold plan (harness.data.folds.FoldPlan) the data itself defines, e.g. MovieLens' u1..u5 test
        files, for ``validation.scheme = "predefined"``; None: the folds come from the [validation] scheme."""
        return None

    def prepare(self, raw, config: dict, rows=None) -> Prepared:
        """Loaders and fitted state. ``rows`` = (training positions, validation positions) into
        ``fold_rows(raw, config)`` under K folds; None: the competition's own split."""
        raise NotImplementedError

    def build_model(self, state: dict, config: dict) -> nn.Module:
        raise NotImplementedError

    def make_learner(self, prepared: Prepared, config: dict, echo: bool = True, progress=None):
        """A learner for a model that is not a torch network (the tabular kind's LightGBM), with the
        protocol of harness.train.Learner that the runner uses; None (the default): the shared Learner
        trains ``build_model``'s network. At predict time ``prepared`` holds only the saved state."""
        return None

    def layer_groups(self, model: nn.Module) -> list[list[nn.Parameter]]:
        return [list(model.parameters())]

    def loss_fn(self, config: dict):
        raise NotImplementedError

    def metrics(self, config: dict) -> list[Metric]:
        raise NotImplementedError

    def scored_by(self, config: dict) -> list[Metric]:
        """The metrics validation reports, the primary first: the config's ``metric`` (a name from the
        registry, harness.scoring.metrics.METRICS) if it sets one, then the competition's own."""
        own = self.metrics(config)
        name = config.get("metric")
        if not name:
            return own
        from harness.scoring.metrics import get_metric, learner_metric

        if self.task is None:
            raise HarnessError(f"metric = {name!r}: competition {self.name} declares no task, so only its own "
                               f"metrics ({', '.join(m.name for m in own)}) can score it; drop the metric key")
        chosen = learner_metric(get_metric(name), self.task)
        return [chosen, *[m for m in own if m.name != chosen.name]]

    def callbacks(self, config: dict) -> list:
        """Extra trainer callbacks this competition's training needs (regularisers, state resets)."""
        return []

    def train(self, ctx: TrainContext) -> None:
        """The training recipe. The default is one fit with the [train] section's schedule."""
        t = ctx.config["train"]
        ctx.learn.fit(
            t["epochs"], t["lr"], schedule=t.get("schedule", "one-cycle"),
            pct_start=t.get("pct_start", 0.25), cycle_len=t.get("cycle_len", 1), cycle_mult=t.get("cycle_mult", 1),
            **({"moms": tuple(t["moms"])} if "moms" in t else {}),  # else the Learner's default
        )

    def predict(self, learn, state: dict, raw, config: dict) -> Predictions | None:
        """Predictions for the raw data's test set, or None if it has none."""
        return None

    def submission_from_outputs(self, outputs: np.ndarray, template: pd.DataFrame, valid=None,
                                config: dict | None = None) -> pd.DataFrame:
        """A submission from test outputs (e.g. a blend's mean), shaped like ``template``, one of the
        blended runs' submissions. ``valid`` = (out-of-fold or validation outputs, their targets), from
        which a label submission chooses its threshold; ``config``: the run's. The default takes the
        outputs as the submission's values."""
        import numpy as np

        submission = template.copy()
        submission[list(template.columns[1:])] = np.asarray(outputs, dtype=np.float64).reshape(len(template), -1)
        return submission

    def data_summary(self, raw) -> str:
        """What the data holds, for `harness model` (the tabular kind's inferred column types); "" = nothing."""
        return ""

    def check_submission(self, submission: pd.DataFrame, raw) -> None:
        """Raise HarnessError if the submission does not match the competition's format."""

    # -------------------------------------------------------------- optional extras
    def search_space(self, trial, config: dict) -> dict:
        """Overrides (``section.key``: value) suggested by an Optuna trial.

        The default reads the config's [search] table, e.g.
        ``"model.dropout" = {type = "float", low = 0.0, high = 0.5}``.
        """
        from harness.config.search_space import suggest_from_config

        return suggest_from_config(trial, config)

    def explain(self, learn, run) -> None:
        """Print what the trained model ``learn`` of ``run`` learned, writing any plots into ``run.dir``."""
        raise HarnessError(f"competition {self.name} has no `explain` report")

    def generate(self, run, prompt: str, words: int = 50, temperature: float = 1.0, top_k: int = 0, seed: int = 0,
                 device=None) -> str:
        """Text from a trained run's language model, continuing ``prompt``."""
        raise HarnessError(f"competition {self.name} has no text generation")
