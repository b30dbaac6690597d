"""The model kinds an automated entry trains, and the search space each kind's study explores.

A tabular competition (the tabular kind, or a plugin built on its models, as Rossmann) is entered with
both of its models, the entity-embedding network (``model.kind = "nn"``) and LightGBM (``"gbm"``); any
other competition with its default config. ``--kinds a,b`` names the ``model.kind`` values instead.

Each kind has its own study, so pruning compares trials of one kind with each other. A kind searches its
config's ``[search]`` table: for a tabular kind only the keys that concern it (``gbm.*`` for LightGBM, the
others for the network), else, when the table has none, the space below. These ranges are wide, generic
ones chosen before any benchmark ran (the network's around fastai's defaults, LightGBM's around its own).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from harness.config.loading import apply_overrides, check_config, get
from harness.errors import HarnessError

TABULAR_SPACES = {
    "nn": {
        "train.lr": {"type": "float", "low": 1e-3, "high": 3e-2, "log": True},
        "train.wd": {"type": "float", "low": 1e-4, "high": 0.3, "log": True},
        "model.layer_scale": {"type": "float", "low": 0.25, "high": 2.0, "log": True},
        "model.dropout_scale": {"type": "float", "low": 0.5, "high": 50.0, "log": True},
        "model.emb_drop": {"type": "float", "low": 0.0, "high": 0.5},
    },
    "gbm": {
        "gbm.learning_rate": {"type": "float", "low": 0.01, "high": 0.2, "log": True},
        "gbm.num_leaves": {"type": "int", "low": 7, "high": 255, "log": True},
        "gbm.min_child_samples": {"type": "int", "low": 5, "high": 100, "log": True},
        "gbm.feature_fraction": {"type": "float", "low": 0.5, "high": 1.0},
        "gbm.lambda_l2": {"type": "float", "low": 1e-3, "high": 10.0, "log": True},
    },
}


@dataclass(frozen=True)
class ModelKind:
    label: str  # names its baseline, its study and its rows in the report
    overrides: dict = field(default_factory=dict)  # on top of the competition's config, e.g. model.kind = "gbm"


def is_tabular(competition) -> bool:
    from harness.kinds.tabular import TabularModels

    return isinstance(competition, TabularModels)


def model_kinds(competition, config: dict, wanted: list[str] | None = None) -> list[ModelKind]:
    """The kinds to enter: ``wanted`` model.kind values, else the tabular pair, else the config as it is."""
    if wanted:
        if get(config, "model.kind") is None:
            raise HarnessError(f"--kinds {','.join(wanted)}: {competition.name}'s config has no model.kind to "
                               "choose; leave --kinds out to enter it with its default config")
        kinds = []
        for value in dict.fromkeys(wanted):
            apply_overrides(config, {"model.kind": value}, schema=competition.config_schema, source="--kinds")
            kinds.append(ModelKind(value, {"model.kind": value}))
        return kinds
    if is_tabular(competition) and get(config, "model.kind") is not None:
        return [ModelKind("nn", {"model.kind": "nn"}), ModelKind("gbm", {"model.kind": "gbm"})]
    return [ModelKind(str(get(config, "model.kind") or "default"))]


def search_space(competition, kind: ModelKind, config: dict) -> dict:
    """The ``[search]`` table of ``kind``'s study ({}: nothing to tune)."""
    own = dict(config.get("search") or {})
    default = TABULAR_SPACES.get(kind.label) if is_tabular(competition) else None
    if default is None:
        return own
    mine = {k: v for k, v in own.items() if k.startswith("gbm.") == (kind.label == "gbm")}
    return mine or {k: v for k, v in default.items() if get(config, k) is not None}


def kind_config(competition, config: dict, kind: ModelKind) -> dict:
    """The config ``kind`` trains with: its overrides applied and its search space as ``[search]``."""
    out = apply_overrides(config, kind.overrides, schema=competition.config_schema, source=f"model kind {kind.label}")
    space = search_space(competition, kind, out)
    out["search"] = space
    if not space:
        out.pop("search")
    return check_config(out, f"harness auto's config for {kind.label}", competition.config_schema)
