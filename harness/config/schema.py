"""The type and allowed values of every config key, declared once and checked when a config is read.

``SCHEMA`` holds the keys whose meaning is the same in every competition (learning rates, epochs,
dropouts ...). The keys whose allowed values belong to one competition (a model kind, a split name)
are declared by its plugin, as ``Competition.config_schema`` (passed in here as ``extra``), with the
rule types below. Keys no rule names are allowed: plugins have their own.

A key is a dotted path; a ``*`` segment matches any one segment (``model.emb_widths.*``). Exact keys
win over patterns. This module imports neither torch, numpy nor pandas: a bad config is reported in
a fraction of a second.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fnmatch import fnmatchcase


class Rule:
    """One key's rule: ``problem(value)`` is None when the value is fine, else what is wrong with it."""

    def problem(self, key: str, value) -> tuple[str, object, str] | None:
        """None, or (the key or entry at fault, its value, "must be ..."): entries of lists and tables
        are named as ``key[2]`` or ``key[0].lr_mult``."""
        raise NotImplementedError


def _number_kind(value) -> str | None:
    """What is not a number about ``value`` (bools are not numbers), or None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "is not a number"
    return None


@dataclass(frozen=True)
class Num(Rule):
    """A finite number, optionally whole, within bounds (open or closed)."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    whole: bool = False

    def text(self) -> str:
        kind = "a whole number" if self.whole else "a number"
        lo, hi = self.number(self.lo), self.number(self.hi)
        if self.lo is not None and self.hi is not None:
            return f"in {'(' if self.lo_open else '['}{lo}, {hi}{')' if self.hi_open else ']'}"
        if self.lo is not None:
            return f"{'>' if self.lo_open else '≥'} {lo}"
        if self.hi is not None:
            return f"{'<' if self.hi_open else '≤'} {hi}"
        return kind

    def number(self, bound) -> str:
        """A bound as written: whole bounds in full (4294967295, not 4.29497e+09)."""
        if bound is None:
            return ""
        return str(int(bound)) if self.whole and float(bound).is_integer() else f"{bound:g}"

    def problem(self, key, value):
        if _number_kind(value) or (self.whole and not isinstance(value, int)):
            return key, value, f"must be {'a whole number' if self.whole else 'a number'}"
        if not math.isfinite(value):
            return key, value, "must be a finite number"
        too_low = self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo)
        too_high = self.hi is not None and (value >= self.hi if self.hi_open else value > self.hi)
        if too_low or too_high:
            return key, value, f"must be {self.text()}"
        return None


@dataclass(frozen=True)
class Choice(Rule):
    values: tuple

    def __init__(self, *values):
        object.__setattr__(self, "values", tuple(values))

    def problem(self, key, value):
        if value not in self.values or isinstance(value, bool) != isinstance(self.values[0], bool):
            return key, value, f"must be one of {', '.join(v if v else repr(v) for v in map(str, self.values))}"
        return None


@dataclass(frozen=True)
class Text(Rule):
    def problem(self, key, value):
        return None if isinstance(value, str) else (key, value, "must be a string (in quotes)")


@dataclass(frozen=True)
class Flag(Rule):
    def problem(self, key, value):
        return None if isinstance(value, bool) else (key, value, "must be true or false")


@dataclass(frozen=True)
class ListOf(Rule):
    """A list whose entries each follow ``item``; ``lengths`` the allowed lengths (None: any);
    ``scalar`` also accepts one bare value (e.g. one dropout for every layer)."""

    item: Rule
    lengths: tuple[int, ...] | None = None
    min_len: int = 0
    increasing: bool = False
    scalar: bool = False

    def problem(self, key, value):
        if self.scalar and not isinstance(value, list):
            return self.item.problem(key, value)
        if not isinstance(value, list):
            return key, value, "must be a list" + (" or one value" if self.scalar else "")
        if self.lengths is not None and len(value) not in self.lengths:
            counts = " or ".join(map(str, self.lengths))
            return key, value, f"must be a list of {counts} value(s)"
        if len(value) < self.min_len:
            return key, value, f"must have at least {self.min_len} entr{'y' if self.min_len == 1 else 'ies'}"
        for i, entry in enumerate(value):
            found = self.item.problem(f"{key}[{i}]", entry)
            if found:
                return found
        if self.increasing and any(a >= b for a, b in zip(value, value[1:])):
            return key, value, "must be increasing (e.g. [lo, hi] with lo < hi)"
        return None


@dataclass(frozen=True)
class Table(Rule):
    """An inline table with these keys (``required`` ones must be there; no others)."""

    rules: dict
    required: tuple = ()

    def problem(self, key, value):
        if not isinstance(value, dict):
            return key, value, f"must be a table like {{ {', '.join(f'{k} = ...' for k in self.rules)} }}"
        for name in self.required:
            if name not in value:
                return key, value, f"must set {name}"
        for name, entry in value.items():
            if name not in self.rules:
                return key, value, f"may set only {', '.join(self.rules)}; drop {name}"
            found = self.rules[name].problem(f"{key}.{name}", entry)
            if found:
                return found
        return None


DROPOUT = Num(0, 1, hi_open=True)  # a dropout probability of 1 drops everything
FRACTION = Num(0, 1, lo_open=True, hi_open=True)
POSITIVE = Num(0, lo_open=True)
NON_NEGATIVE = Num(0)
COUNT = Num(1, whole=True)  # at least one
OPTIONAL_COUNT = Num(0, whole=True)  # 0 turns the feature off
SEED = Num(0, 2**32 - 1, whole=True)  # what numpy's and torch's generators take
# As harness.train.schedules.SCHEDULES (not imported: it imports torch); a test keeps them equal.
SCHEDULE = Choice("constant", "one-cycle", "sgdr")
# The [validation] schemes of harness.data.folds, which reads this tuple.
VALIDATION_SCHEMES = ("holdout", "kfold", "stratified", "group", "time")

SCHEMA: dict[str, Rule] = {
    "name": Text(),
    "seed": SEED,
    "metric": Text(),  # a registry metric (harness.scoring.metrics.METRICS), checked against the task
    # Every fit: [train], and sections such as IMDB's [lm] that configure another fit.
    "*.epochs": COUNT,
    "*.lr": POSITIVE,
    "*.schedule": SCHEDULE,
    "*.pct_start": FRACTION,
    "*.cycle_len": COUNT,
    "*.cycle_mult": COUNT,
    "*.wd": NON_NEGATIVE,
    "*.clip": NON_NEGATIVE,  # 0 turns clipping off
    "*.betas": ListOf(DROPOUT, lengths=(2,)),  # Adam's betas lie in [0, 1)
    "*.moms": ListOf(DROPOUT, lengths=(3,)),  # one-cycle's beta1 at the start, the peak and the end
    "*.valid_pct": Num(0, 1, hi_open=True),  # 0: no validation
    "*.batch_size": COUNT,
    "*.bs": COUNT,
    "train.early_stopping_patience": OPTIONAL_COUNT,
    "train.mixed_precision": Choice("auto", "bf16", "fp16", "none", "fp32"),
    "train.frozen_epochs": OPTIONAL_COUNT,
    "train.unfreeze_cycles": OPTIONAL_COUNT,
    "train.unfreeze_lrs": ListOf(POSITIVE, min_len=1),
    "train.lr_div": POSITIVE,
    "train.stages": ListOf(Table({"freeze_to": Num(whole=True), "lr_mult": POSITIVE, "epochs": COUNT},
                                 required=("freeze_to",)), min_len=1),
    "predict.tta": OPTIONAL_COUNT,
    # Data.
    "data.image_size": Num(0, lo_open=True, whole=True),
    "data.min_scale": Num(0, 1, lo_open=True),
    "data.num_workers": OPTIONAL_COUNT,
    "data.cache_dir": Text(),
    "data.max_train": OPTIONAL_COUNT,
    "data.cat_cols": ListOf(Text()),
    "data.cont_cols": ListOf(Text()),
    # Model sizes and regularisation.
    "model.n_factors": COUNT,
    "model.hidden": ListOf(COUNT),
    "model.layers": ListOf(COUNT),
    "model.xtra_fc": ListOf(COUNT),
    "model.dropout": DROPOUT,
    "model.dropouts": ListOf(DROPOUT),
    "model.ps": ListOf(DROPOUT, scalar=True),
    "model.emb_drop": DROPOUT,
    "model.l2": NON_NEGATIVE,
    "model.batchnorm": Flag(),
    "model.layer_scale": POSITIVE,
    "model.dropout_scale": NON_NEGATIVE,
    "model.emb_multiplier": POSITIVE,
    "model.emb_rule": Choice("lesson", "fastai"),
    "model.emb_widths.*": OPTIONAL_COUNT,  # 0: the rule's width
    "model.y_range": ListOf(Num(), lengths=(0, 2), increasing=True),
    # Validation (harness.data.folds): which rows score a model, fixed by split_seed, never by seed.
    "validation.scheme": Choice(*VALIDATION_SCHEMES),
    "validation.folds": COUNT,  # ≥ 2 for kfold, stratified and group; time may have one window
    "validation.repeats": COUNT,
    "validation.valid_pct": FRACTION,  # holdout: the share of rows that validate
    "validation.group": Text(),  # a column: rows of one group are never split
    "validation.time": Text(),  # a column of numbers or dates
    "validation.target": Text(),  # the column of class labels the stratified scheme keeps in every fold
    "validation.gap": NON_NEGATIVE,  # in the time column's units (days for dates)
    "validation.valid_size": POSITIVE,  # the same units
    "validation.split_seed": SEED,
}

SEARCH_TYPES = ("float", "int", "categorical")


def rules_for(config: dict, extra: dict | None = None) -> dict[str, Rule]:
    """The rules that apply to ``config``: the shared ones, then its competition's (``extra``)."""
    return {**SCHEMA, **(extra or {})}


def rule_for(rules: dict[str, Rule], path: tuple[str, ...]) -> Rule | None:
    """The rule of one key: an exact match first, then the first pattern that matches."""
    exact = rules.get(".".join(path))
    if exact is not None:
        return exact
    for pattern, rule in rules.items():
        parts = pattern.split(".")
        if "*" in pattern and len(parts) == len(path) and all(fnmatchcase(p, q) for p, q in zip(path, parts)):
            return rule
    return None


def problems(config: dict, extra: dict | None = None):
    """Yield (key, value, "must be ...") for each key of ``config`` that breaks its rule."""
    rules = rules_for(config, extra)

    def walk(node: dict, path: tuple):
        for name, value in node.items():
            here = (*path, str(name))
            if here == ("search",) and isinstance(value, dict):
                yield from search_problems(value, rules)
                continue
            rule = rule_for(rules, here)
            if rule is not None:
                found = rule.problem(".".join(here), value)
                if found:
                    yield found
            elif isinstance(value, dict):
                yield from walk(value, here)

    yield from walk(config, ())


def check_value(rules: dict[str, Rule], key: str, value):
    """(key, value, "must be ...") if ``value`` breaks ``key``'s rule, else None."""
    rule = rule_for(rules, tuple(key.split(".")))
    return rule.problem(key, value) if rule is not None else None


def search_problems(search: dict, rules: dict[str, Rule]):
    """The [search] table: each entry a known type with low < high (low > 0 on a log scale), and its
    bounds or choices allowed values of the key it searches."""
    for key, spec in search.items():
        where = f"search.{key!r}" if "." in key else f"search.{key}"
        if not isinstance(spec, dict):
            yield where, spec, 'must be a table like { type = "float", low = 0.001, high = 0.1 }'
            continue
        kind = spec.get("type", "float")
        if kind not in SEARCH_TYPES:
            yield f"{where}.type", kind, f"must be one of {', '.join(SEARCH_TYPES)}"
            continue
        if kind == "categorical":
            choices = spec.get("choices")
            if not isinstance(choices, list) or not choices:
                yield f"{where}.choices", choices, "must be a non-empty list"
                continue
            bounds = [("choices", c) for c in choices]
        else:
            missing = [b for b in ("low", "high") if b not in spec]
            if missing:
                yield where, spec, f"must set {' and '.join(missing)}"
                continue
            low, high = spec["low"], spec["high"]
            number = Num(whole=kind == "int")
            bad = number.problem(f"{where}.low", low) or number.problem(f"{where}.high", high)
            if bad:
                yield bad
                continue
            if low >= high:
                yield f"{where}.low", low, f"must be below high ({high!r})"
                continue
            if not isinstance(spec.get("log", False), bool):
                yield f"{where}.log", spec["log"], "must be true or false"
                continue
            if spec.get("log") and low <= 0:
                yield f"{where}.low", low, "must be > 0 with log = true"
                continue
            bounds = [("low", low), ("high", high)]
        for bound, value in bounds:
            found = check_value(rules, key, value)
            if found:
                yield f"{where}.{bound}", value, f"searches {key}, which {found[2]}"
                break
