"""Validation schemes: which training rows validate each fold, fixed by ``validation.split_seed``.

``assign_folds`` turns a ``[validation]`` config section into a ``FoldPlan``: the fold that validates
each row (per repeat), from which every fold's training and validation row positions follow. It never
reads the training ``seed``: a seed sweep or a tuning trial changes the model, never the rows it is
scored on. ``save_folds`` and ``load_folds`` write and read a plan as a CSV, so that every model of a
competition can be trained on the same folds (the condition for blending and stacking).

Schemes (``validation.scheme``):

- ``holdout``: one fold; a random ``valid_pct`` of the rows validates, the others train. K fold models
  (``--folds K``, ``validation.folds``) are refused under it (``check_k_folds``): they would be one model.
- ``kfold`` / ``stratified``: ``folds`` folds, each row validated once (stratified keeps each class's
  share in every fold); ``repeats`` > 1 reshuffles and validates each row once per repeat.
- ``group``: ``folds`` folds; the rows of one value of the ``group`` column are never split between
  training and validation.
- ``time``: ``folds`` expanding windows over the ``time`` column (numbers, or dates counted in days).
  The last ``folds * valid_size`` of the period are cut into windows; fold k validates on window k and
  trains on every row at least ``gap`` before it, so no fold validates on the past. Rows before the
  first window only ever train. ``folds = 1`` is one window at the end (a holdout by date).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import (GroupKFold, KFold, RepeatedKFold, RepeatedStratifiedKFold,
                                     StratifiedKFold)

from harness.config.schema import SCHEMA, VALIDATION_SCHEMES, check_value
from harness.data.files import plain, read_table
from harness.errors import HarnessError
from harness.workspace import write_csv

NO_FOLD = -1  # a row that no fold validates: holdout's training rows, time rows before the first window

DEFAULTS = {
    "scheme": "kfold", "folds": 5, "repeats": 1, "valid_pct": 0.2, "group": None, "time": None,
    "gap": 0, "valid_size": None, "split_seed": 0,
}
REPEATABLE = ("kfold", "stratified")


@dataclass(frozen=True, eq=False)
class FoldPlan:
    """The folds of every training row.

    ``folds[r, i]`` is the fold that validates row position ``i`` in repeat ``r`` (``NO_FOLD``: none).
    Fold k trains on every row it does not validate, except under the time scheme, whose expanding
    windows are nested: there ``train_from[i]`` is the first fold whose training window holds row i
    (``n_folds``: none does), and fold k trains on the rows with ``train_from <= k``.
    """

    folds: np.ndarray
    train_from: np.ndarray | None = None
    scheme: str = "kfold"

    def __post_init__(self):
        object.__setattr__(self, "folds", np.atleast_2d(np.asarray(self.folds, dtype=np.int64)))
        if self.train_from is not None:
            object.__setattr__(self, "train_from", np.asarray(self.train_from, dtype=np.int64))

    @property
    def n_rows(self) -> int:
        return self.folds.shape[1]

    @property
    def n_folds(self) -> int:
        return int(self.folds.max()) + 1

    @property
    def n_repeats(self) -> int:
        return self.folds.shape[0]

    def check_fold(self, fold: int, repeat: int = 0) -> None:
        if not 0 <= fold < self.n_folds:
            raise HarnessError(f"fold {fold} does not exist: the {self.scheme} plan has {self.n_folds} fold(s), "
                               f"0..{self.n_folds - 1}")
        if not 0 <= repeat < self.n_repeats:
            raise HarnessError(f"repeat {repeat} does not exist: the {self.scheme} plan has {self.n_repeats} "
                               f"repeat(s), 0..{self.n_repeats - 1}")

    def valid_index(self, fold: int, repeat: int = 0) -> np.ndarray:
        """Row positions that fold ``fold`` of repeat ``repeat`` validates on, ascending."""
        self.check_fold(fold, repeat)
        return np.flatnonzero(self.folds[repeat] == fold)

    def train_index(self, fold: int, repeat: int = 0) -> np.ndarray:
        """Row positions that fold ``fold`` of repeat ``repeat`` trains on, ascending."""
        self.check_fold(fold, repeat)
        if self.train_from is not None:
            return np.flatnonzero(self.train_from <= fold)
        return np.flatnonzero(self.folds[repeat] != fold)

    def splits(self):
        """(repeat, fold, train_index, valid_index) for every fold of every repeat."""
        for repeat in range(self.n_repeats):
            for fold in range(self.n_folds):
                yield repeat, fold, self.train_index(fold, repeat), self.valid_index(fold, repeat)

    def validated(self, repeat: int = 0) -> np.ndarray:
        """Row positions that get an out-of-fold prediction in ``repeat`` (all rows, except under
        holdout and time)."""
        return np.flatnonzero(self.folds[repeat] != NO_FOLD)

    def describe(self) -> str:
        """One line for a log: ``kfold: 5 folds x 2 repeats over 1000 rows, 200 validation rows a fold``."""
        sizes = [len(self.valid_index(k)) for k in range(self.n_folds)]
        size = f"{min(sizes)}" if min(sizes) == max(sizes) else f"{min(sizes)}..{max(sizes)}"
        repeats = f" x {self.n_repeats} repeats" if self.n_repeats > 1 else ""
        return (f"{self.scheme}: {self.n_folds} fold(s){repeats} over {self.n_rows} rows, "
                f"{size} validation rows a fold")


# ---------------------------------------------------------------------------------------- config
def split_seed(config: dict) -> int:
    """The seed of a competition's own holdout split: ``validation.split_seed``, so a training-seed change
    never moves a row between training and validation. A config without ``[validation]`` (a run saved
    before it existed) splits by the training seed, as it did then, so resuming it keeps its split."""
    if "validation" not in config:
        return int(config.get("seed", 0))
    return int(config["validation"].get("split_seed", 0))


def validation_settings(section: Mapping | None) -> dict:
    """The ``[validation]`` section with defaults filled in, every key checked against its schema rule
    (so a section built in code is held to the same rules as a config file)."""
    section = {} if section is None else section
    if not isinstance(section, Mapping):
        raise HarnessError(f"config: validation = {section!r} must be a table ([validation] with scheme = ...)")
    for key, value in section.items():
        if key not in DEFAULTS:
            hint = " (the split's own seed is validation.split_seed)" if key == "seed" else ""
            raise HarnessError(f"config: validation.{key} is not a validation key{hint}; "
                               f"use {', '.join(DEFAULTS)}")
        found = check_value(SCHEMA, f"validation.{key}", value)
        if found:
            raise HarnessError(f"config: {found[0]} = {found[1]!r} {found[2]}")
    settings = {**DEFAULTS, **section}
    scheme = settings["scheme"]
    for needed in ("group", "time"):
        if scheme == needed and not settings[needed]:
            raise HarnessError(f'config: validation.scheme = "{scheme}" needs validation.{needed}, '
                               f"the name of the {needed} column")
    if settings["folds"] < 2 and scheme in ("kfold", "stratified", "group"):
        raise HarnessError(f"config: validation.folds = {settings['folds']} must be ≥ 2 with scheme = \"{scheme}\" "
                           '(one validation set is scheme = "holdout")')
    if settings["repeats"] > 1 and scheme not in REPEATABLE:
        raise HarnessError(f"config: validation.repeats = {settings['repeats']} applies to the "
                           f"{' and '.join(REPEATABLE)} schemes only; use repeats = 1 with scheme = \"{scheme}\"")
    return settings


def check_k_folds(validation: Mapping | None, k: int, asked: str | None = None) -> None:
    """K fold models need a scheme that draws K folds: a holdout has one validation split, and K fold
    models of it would be one model, reported as a K-fold run. ``asked`` says where K came from
    (``--folds 3``, ``validation.folds = 3``)."""
    scheme = (validation or {}).get("scheme", DEFAULTS["scheme"])
    if scheme == "holdout":
        raise HarnessError(f'{asked or f"{k} folds"} with validation.scheme = "holdout": a holdout has one '
                           f"validation split, not {k} folds; set validation.scheme to kfold, stratified, group or "
                           "time (e.g. --set validation.scheme=kfold), or train on the one split without K folds")


def column_of(frame: pd.DataFrame, column: str, named_by: str) -> pd.Series:
    """``frame[column]``, or an error that says who named it (``named_by``) and lists the columns."""
    if column not in frame.columns:
        raise HarnessError(f"{named_by} = {column!r} is not a column of the training data; "
                           f"its columns: {', '.join(map(str, frame.columns))}")
    return frame[column]


# ---------------------------------------------------------------------------------------- schemes
def assign_folds(frame: pd.DataFrame, validation_config: Mapping | None = None, target=None) -> FoldPlan:
    """The fold plan of ``frame``'s rows under ``validation_config`` (the ``[validation]`` section).

    ``target`` (the labels, or the name of their column) is needed by the stratified scheme only.
    """
    v = validation_settings(validation_config)
    scheme, n = v["scheme"], len(frame)
    if n == 0:
        raise HarnessError("validation: the training data has no rows to split")
    if scheme == "holdout":
        return holdout(n, v["valid_pct"], v["split_seed"])
    if scheme == "time":
        return time_folds(frame, v)
    k, repeats, seed = v["folds"], v["repeats"], v["split_seed"]
    if k > n:
        raise HarnessError(f"config: validation.folds = {k} is more than the {n} training rows; "
                           f"use at most {n} folds")
    rows = np.zeros((n, 1))
    if scheme == "kfold":
        splitter = (KFold(k, shuffle=True, random_state=seed) if repeats == 1
                    else RepeatedKFold(n_splits=k, n_repeats=repeats, random_state=seed))
        return plan_from(splitter.split(rows), k, repeats, n, scheme)
    if scheme == "stratified":
        labels = labels_of(frame, target, k)
        splitter = (StratifiedKFold(k, shuffle=True, random_state=seed) if repeats == 1
                    else RepeatedStratifiedKFold(n_splits=k, n_repeats=repeats, random_state=seed))
        return plan_from(splitter.split(rows, labels), k, repeats, n, scheme)
    if scheme == "group":
        groups = column_of(frame, v["group"], "config: validation.group")
        if groups.isna().any():
            row = int(np.flatnonzero(groups.isna().to_numpy())[0])
            raise HarnessError(f"validation.group: column {v['group']} has {int(groups.isna().sum())} empty "
                               f"value(s), first at data row {row + 1}; give every row a group")
        n_groups = groups.nunique()
        if k > n_groups:
            raise HarnessError(f"config: validation.folds = {k} is more than the {n_groups} groups of column "
                               f"{v['group']}; use at most {n_groups} folds")
        splitter = GroupKFold(k, shuffle=True, random_state=seed)
        return plan_from(splitter.split(rows, groups=groups.to_numpy()), k, 1, n, scheme)
    raise HarnessError(f"config: validation.scheme = {scheme!r} must be one of {', '.join(VALIDATION_SCHEMES)}")


def plan_from(splits, k: int, repeats: int, n: int, scheme: str) -> FoldPlan:
    """A plan from a scikit-learn splitter's (train, valid) pairs, repeat after repeat."""
    folds = np.full((repeats, n), NO_FOLD, dtype=np.int64)
    for i, (_, valid) in enumerate(splits):
        folds[i // k, valid] = i % k
    return FoldPlan(folds, scheme=scheme)


def holdout(n: int, valid_pct: float, seed: int) -> FoldPlan:
    # At least one validation row, and at least one training row left.
    n_valid = max(1, int(round(n * valid_pct)))
    if n_valid >= n:
        raise HarnessError(f"config: validation.valid_pct = {valid_pct} leaves no training rows out of {n}; "
                           "use a smaller share")
    order = np.random.default_rng(seed).permutation(n)
    folds = np.full(n, NO_FOLD, dtype=np.int64)
    folds[order[:n_valid]] = 0
    return FoldPlan(folds, scheme="holdout")


def labels_of(frame: pd.DataFrame, target, k: int) -> np.ndarray:
    """The class labels that stratify, checked: one per row, none empty, every class with ≥ k rows."""
    if target is None:
        raise HarnessError('validation.scheme = "stratified" needs the target labels; the competition '
                           'passes none (use scheme = "kfold")')
    labels = column_of(frame, target, "target") if isinstance(target, str) else pd.Series(np.asarray(target))
    if len(labels) != len(frame):
        raise HarnessError(f"validation: {len(labels)} target labels for {len(frame)} training rows; "
                           "give one label per row")
    if labels.isna().any():
        raise HarnessError(f"validation: the target has {int(labels.isna().sum())} empty label(s); "
                           "stratified folds need a class for every row")
    counts = labels.value_counts()
    if counts.min() < k:
        raise HarnessError(f"config: validation.folds = {k} is more than the {counts.min()} row(s) of the rarest "
                           f"class ({plain(counts.idxmin())!r}); use at most {counts.min()} folds, or scheme = "
                           '"kfold" (stratified needs class labels, not a continuous target)')
    return labels.to_numpy()


def time_values(frame: pd.DataFrame, column: str):
    """(values as floats, a function that shows one of them, their unit): numbers as they are, dates
    in days."""
    raw = column_of(frame, column, "config: validation.time")
    if pd.api.types.is_bool_dtype(raw):
        raise HarnessError(f"validation.time: column {column} holds true/false; give a column of numbers or dates")
    if pd.api.types.is_numeric_dtype(raw):
        values = raw.to_numpy(dtype=np.float64)
        bad = ~np.isfinite(values)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise HarnessError(f"validation.time: column {column} has {int(bad.sum())} empty or infinite "
                               f"value(s), first at data row {row + 1}; give every row a time")
        return values, lambda x: f"{x:g}", "units"
    dates = raw if pd.api.types.is_datetime64_any_dtype(raw) else pd.to_datetime(raw, errors="coerce", format="mixed")
    bad = dates.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise HarnessError(f"validation.time: column {column} has {int(bad.sum())} value(s) that are neither "
                           f"numbers nor dates, first {plain(raw.iloc[row])!r} at data row {row + 1}; "
                           "give a column of numbers or YYYY-MM-DD dates")
    origin = dates.min()
    days = ((dates - origin) / pd.Timedelta(days=1)).to_numpy(dtype=np.float64)
    return days, lambda x: str(plain(origin + pd.Timedelta(days=float(x)))), "days"


def time_folds(frame: pd.DataFrame, v: dict) -> FoldPlan:
    k, gap, column = v["folds"], v["gap"], v["time"]
    t, show, unit = time_values(frame, column)
    start, end = float(t.min()), float(t.max())
    if start == end:
        raise HarnessError(f"validation.time: column {column} holds one value ({show(start)}); "
                           "time folds need a period to cut")
    size = v["valid_size"]
    if size is None:
        # As scikit-learn's TimeSeriesSplit: k + 1 equal parts, the first one only trains. Whole days
        # or steps stay whole, and a period of whole units counts both ends (days 0..59 are 60 days).
        whole = bool(np.all(t == np.round(t)))
        size = max(1.0, (end - start + 1) // (k + 1)) if whole else (end - start) / (k + 1)
    # Window k is (lo[k], lo[k] + size]; the last one ends at the latest time.
    lo = end - (k - np.arange(k)) * size
    # A row trains for fold k when it lies at least `gap` before window k; the windows only move
    # later, so the first such fold is enough to know them all.
    train_from = np.searchsorted(lo - gap, t, side="left")
    if not (train_from == 0).any():
        raise HarnessError(f"config: validation.folds = {k}, valid_size = {size:g} and gap = {gap:g} leave time "
                           f"fold 0 no training rows: column {column} runs from {show(start)} to {show(end)} "
                           f"({end - start:g} {unit}); use fewer folds or a smaller valid_size or gap")
    folds = np.full(len(t), NO_FOLD, dtype=np.int64)
    for fold in range(k):
        inside = (t > lo[fold]) & (t <= lo[fold] + size)
        if not inside.any():
            raise HarnessError(f"validation: time fold {fold}'s window ({show(lo[fold])}, "
                               f"{show(lo[fold] + size)}] of column {column} holds no rows; "
                               "use a longer valid_size or fewer folds")
        folds[inside] = fold
    return FoldPlan(folds, train_from=train_from, scheme="time")


# ---------------------------------------------------------------------------------------- files
def fold_columns(repeats: int) -> list[str]:
    return ["fold"] if repeats == 1 else [f"fold_{r}" for r in range(repeats)]


def save_folds(plan: FoldPlan, path, frame: pd.DataFrame | None = None, id_column: str | None = None) -> None:
    """Write ``plan`` as a CSV (atomically): a ``row`` column of row positions, or ``frame``'s
    ``id_column``; ``fold`` (``fold_0``, ``fold_1`` ... with repeats), -1 for a row no fold validates;
    and under the time scheme ``train_from``, the first fold that trains on the row."""
    if id_column is None:
        table = {"row": np.arange(plan.n_rows)}
    else:
        if frame is None:
            raise HarnessError(f"save_folds: id_column = {id_column!r} needs the frame that holds it")
        ids = column_of(frame, id_column, "save_folds: id_column")
        if len(ids) != plan.n_rows:
            raise HarnessError(f"save_folds: the frame has {len(ids)} rows and the plan {plan.n_rows}")
        if ids.duplicated().any():
            raise HarnessError(f"save_folds: column {id_column} has duplicated ids, first "
                               f"{plain(ids[ids.duplicated()].iloc[0])!r}; key the folds by row position instead")
        if id_column in [*fold_columns(plan.n_repeats), "train_from"]:
            raise HarnessError(f"save_folds: id column {id_column!r} clashes with a fold column; rename it")
        table = {id_column: ids.to_numpy()}
    for repeat, name in enumerate(fold_columns(plan.n_repeats)):
        table[name] = plan.folds[repeat]
    if plan.train_from is not None:
        table["train_from"] = plan.train_from
    write_csv(path, pd.DataFrame(table))


def whole_numbers(table: pd.DataFrame, column: str, path) -> np.ndarray:
    values = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values) | (values != np.round(values))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise HarnessError(f"{path}: column {column} has {int(bad.sum())} value(s) that are not whole numbers, "
                           f"first {plain(table[column].iloc[row])!r} at data row {row + 1}; write the file again "
                           "from a fold plan")
    return values.astype(np.int64)


def load_folds(path, frame: pd.DataFrame, id_column: str | None = None, folds: int | None = None) -> FoldPlan:
    """The plan in the CSV at ``path`` (as written by ``save_folds``) for ``frame``'s rows, checked:
    every training row has a fold, no row is unknown or listed twice, and the folds run 0..K-1
    without gaps (K at most ``folds`` when given). Rows are matched by ``id_column`` of both, else by
    the ``row`` position."""
    path = check_folds_file(path)
    key = id_column or "row"
    table = read_table(path, required=[key], dtype={key: str} if id_column else None)
    names = [c for c in table.columns if c == "fold" or (c.startswith("fold_") and c[5:].isdigit())]
    if not names:
        raise HarnessError(f"{path} has no fold column; found: {', '.join(map(str, table.columns))}; "
                           "write it with save_folds")
    if names != fold_columns(len(names)):
        raise HarnessError(f"{path}: fold columns {', '.join(names)} must be fold (one repeat) or "
                           f"fold_0..fold_{len(names) - 1}, in order")
    assigned = np.stack([whole_numbers(table, c, path) for c in names])
    keys = positions(table, key, frame, id_column, path)
    # -1 marks a row no fold validates; with `folds` given, no fold may reach it.
    bad = (assigned < NO_FOLD) | ((assigned >= folds) if folds is not None else False)
    if bad.any():
        repeat, row = (int(i[0]) for i in np.nonzero(bad))
        limit = f"0..{folds - 1}" if folds is not None else "0 or more"
        raise HarnessError(f"{path}: column {names[repeat]} has fold {assigned[repeat, row]} at data row {row + 1}, "
                           f"out of range: folds are {limit}, and -1 for a row no fold validates")
    top = int(assigned.max()) + 1
    if top == 0:  # every row -1: no fold, so nothing to validate (or train K models on)
        raise HarnessError(f"{path}: every row has fold -1, so no fold validates any row; give each row its "
                           "fold 0..K-1 (-1 only for rows no fold validates), e.g. a K-fold run's folds.csv")
    for repeat, name in enumerate(names):
        empty = sorted(set(range(top)) - set(assigned[repeat].tolist()))
        if empty:
            raise HarnessError(f"{path}: column {name} has no row in fold {empty[0]}, yet folds up to {top - 1}; "
                               "folds must run 0..K-1 without gaps")
    plan_folds = np.empty((len(names), len(frame)), dtype=np.int64)
    plan_folds[:, keys] = assigned
    train_from = None
    if "train_from" in table.columns:
        if len(names) > 1:
            raise HarnessError(f"{path} has train_from (time folds) and {len(names)} repeats; time folds have one")
        train_from = np.empty(len(frame), dtype=np.int64)
        train_from[keys] = whole_numbers(table, "train_from", path)
        # A row that trains for the fold that validates it would leak its own label.
        leak = (plan_folds[0] != NO_FOLD) & (train_from <= plan_folds[0])
        if (train_from < 0).any() or (train_from > top).any() or leak.any():
            raise HarnessError(f"{path}: column train_from must lie in 0..{top} and be later than the row's own "
                               "fold; write the file again from a fold plan")
    return FoldPlan(plan_folds, train_from=train_from, scheme="time" if train_from is not None else "file")


def check_folds_file(path) -> Path:
    """``path`` if it is a non-empty file; else an error that says what it is and what to give."""
    path = Path(path)
    what = "give the CSV written by save_folds (columns row and fold)"
    if not path.exists():
        raise HarnessError(f"folds file {path} does not exist; {what}")
    if path.is_dir():
        raise HarnessError(f"folds file {path} is a directory; {what}")
    if not path.is_file():
        raise HarnessError(f"folds file {path} is not a regular file; {what}")
    if path.stat().st_size == 0:
        raise HarnessError(f"folds file {path} is empty; write it again with save_folds")
    return path


def positions(table: pd.DataFrame, key: str, frame: pd.DataFrame, id_column: str | None, path) -> np.ndarray:
    """The training-row position of each line of the folds file, checked both ways."""
    if id_column is None:
        wanted = pd.Index(np.arange(len(frame)))
        found = pd.Series(whole_numbers(table, "row", path))
    else:
        wanted = pd.Index(column_of(frame, id_column, f"load_folds({path}): id_column").astype(str))
        if wanted.has_duplicates:
            raise HarnessError(f"column {id_column} of the training data has duplicated ids; match the folds "
                               "file by row position instead")
        found = table[id_column].astype(str)
    twice = found.duplicated()
    if twice.any():
        first = found[twice].iloc[0]
        raise HarnessError(f"{path}: {key} {plain(first)!r} is listed {int((found == first).sum())} times; "
                           "list every training row once")
    where = wanted.get_indexer(found)
    if (where < 0).any():
        first = plain(found[where < 0].iloc[0])
        raise HarnessError(f"{path}: {int((where < 0).sum())} {key}(s) are not in the training data, first {first!r}; "
                           "the file was written for other data: write it again")
    missing = np.setdiff1d(np.arange(len(frame)), where)
    if len(missing):
        first = plain(wanted[missing[0]])
        raise HarnessError(f"{path}: {len(missing)} training row(s) have no fold, first {key} {first!r}; "
                           "write the file again for this data")
    return where
