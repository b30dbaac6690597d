"""Declarative search spaces: the config's [search] table turned into Optuna suggestions."""
from __future__ import annotations

from harness.errors import HarnessError


def suggest_from_config(trial, config: dict) -> dict:
    overrides = {}
    for key, spec in config.get("search", {}).items():
        kind = spec.get("type", "float")
        if kind == "float":
            overrides[key] = trial.suggest_float(key, spec["low"], spec["high"], log=spec.get("log", False))
        elif kind == "int":
            overrides[key] = trial.suggest_int(key, spec["low"], spec["high"], log=spec.get("log", False))
        elif kind == "categorical":
            overrides[key] = trial.suggest_categorical(key, spec["choices"])
        else:
            raise HarnessError(f"[search] {key}: unknown type {kind!r}; use float, int or categorical")
    return overrides
