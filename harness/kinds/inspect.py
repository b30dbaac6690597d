"""Guessing a tabular competition's TOML from its files (what `harness new NAME --from DIR` writes).

Which file is train, test and the sample submission; the id (the column test and the sample share);
the target (in train and in the sample, not in test; or, for one column per class, the train-only
column whose values are the sample's columns); the task from the target's values; the metric
(--metric, a known Kaggle slug, else a default for the task, said out loud). Every guess comes with a
reason; where the files leave a choice open the answer is a one-line error naming the flag that settles it.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from harness.data.files import check_file, read_table
from harness.errors import HarnessError
from harness.scoring.metrics import get_metric, metrics_for
from harness.scoring.sample import (class_columns, distinct, find_sample, guess_task, match_names, read_format,
                                    read_sample)

TABLE_SUFFIXES = (".csv", ".csv.gz", ".csv.zip", ".parquet", ".tsv")
HEAD_ROWS = 1000  # rows read from the test and sample files: enough to see their kind of values

# Kaggle slug -> its metric, for competitions whose metric is in the registry.
KNOWN_METRICS = {
    "bike-sharing-demand": "rmsle",
    "amazon-employee-access-challenge": "roc_auc",
    "otto-group-product-classification-challenge": "log_loss",
    "titanic": "accuracy",
    "spaceship-titanic": "accuracy",
    "house-prices-advanced-regression-techniques": "rmsle",
    "rossmann-store-sales": "rmspe",
    "santander-customer-transaction-prediction": "roc_auc",
    "santander-customer-satisfaction": "roc_auc",
    "santander-value-prediction-challenge": "rmsle",
    "home-credit-default-risk": "roc_auc",
    "ieee-fraud-detection": "roc_auc",
    "GiveMeSomeCredit": "roc_auc",
    "allstate-claims-severity": "mae",
    "mercari-price-suggestion-challenge": "rmsle",
    "restaurant-revenue-prediction": "rmse",
    "forest-cover-type-prediction": "accuracy",
    "digit-recognizer": "accuracy",
    "leaf-classification": "log_loss",
    "sf-crime": "log_loss",
    "dog-breed-identification": "log_loss",
    "prudential-life-insurance-assessment": "qwk",
    "petfinder-adoption-prediction": "qwk",
    "costa-rican-household-poverty-prediction": "f1",
}
# The metric a task gets when neither --metric nor a known slug names one.
DEFAULT_METRICS = {"regression": "rmse", "binary": "roc_auc", "multiclass": "accuracy"}
TRANSFORMS = {"rmsle": "log1p", "rmspe": "log"}


@dataclass
class Guess:
    """The TOML that `harness new` writes (``config``), why each part was guessed (``reasons``) and the
    role of each file in the folder (``files``: name -> train, test, sample submission or not used)."""

    config: dict
    reasons: list = field(default_factory=list)
    files: dict = field(default_factory=dict)


# ---------------------------------------------------------------------------- files

def table_suffix(name: str) -> str:
    lower = name.lower()
    return next((s for s in TABLE_SUFFIXES if lower.endswith(s)), "")


def pick_file(folder: Path, prefix: str, declared: str | None, flag: str) -> Path:
    """The one table named ``prefix``* in ``folder`` (or the ``declared`` one)."""
    if declared:
        path = Path(declared) if Path(declared).is_absolute() else folder / declared
        if not path.exists():
            raise HarnessError(f"{flag} {declared}: no such file in {folder}")
        return check_file(path)
    found = sorted(p for p in folder.iterdir()
                   if p.is_file() and p.name.lower().startswith(prefix) and table_suffix(p.name))
    if not found:
        raise HarnessError(f"{folder} has no {prefix} file ({prefix}*.csv, .csv.gz, .csv.zip, .parquet or .tsv); "
                           f"pass {flag} FILE")
    if len(found) > 1:
        raise HarnessError(f"{folder} has several {prefix} files ({', '.join(p.name for p in found)}); "
                           f"pass {flag} FILE to choose one")
    return found[0]


def read_part(path: Path, nrows: int | None = None, usecols=None) -> pd.DataFrame:
    """Some rows or columns of a table (CSV, CSV in .gz/.zip, TSV or Parquet)."""
    if table_suffix(path.name) == ".parquet":
        try:
            frame = pd.read_parquet(path, columns=usecols)
        except ImportError:
            raise HarnessError(f"{path}: reading Parquet needs pyarrow; pip install pyarrow, or give a CSV") from None
        except (OSError, ValueError) as exc:
            raise HarnessError(f"{path} could not be read as Parquet: {str(exc).splitlines()[0]}") from None
        return frame.head(nrows) if nrows else frame
    sep = "\t" if table_suffix(path.name) == ".tsv" else ","
    return read_table(path, nrows=nrows, usecols=usecols, sep=sep)


def looks_like_dates(column: pd.Series) -> bool:
    """Text that parses as dates throughout (Bike's datetime): a feature, not an id to drop."""
    if pd.api.types.is_numeric_dtype(column) or column.empty:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(column.astype(str), errors="coerce", format="mixed")
    return bool(parsed.notna().all())


def in_columns(name: str, columns, flag: str, file: str) -> str:
    """``name`` as ``columns`` spell it (case-sensitive first, then ignoring case), or an error."""
    found = match_names([name], columns)
    if name not in found:
        raise HarnessError(f"{flag} {name}: {file} has no such column; its columns: "
                           f"{', '.join(map(str, list(columns)[:12]))}{', ...' if len(columns) > 12 else ''}")
    return found[name]


# ---------------------------------------------------------------------------- the guess

def inspect_folder(folder, name: str, target: str | None = None, id: str | None = None, metric: str | None = None,
                   sample: str | None = None, train: str | None = None, test: str | None = None,
                   slug: str | None = None) -> Guess:
    """Guess the tabular TOML of the competition whose files are in ``folder``.

    ``target``, ``id``, ``metric``, ``sample``, ``train``, ``test`` and ``slug`` settle what the files
    leave open (``id=""``: no id column, rows in order). Only headers, the target's columns and the
    first rows of the test and sample files are read.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise HarnessError(f"--from {folder}: no such folder; give the folder that holds the competition's files")
    reasons = []
    train_path = pick_file(folder, "train", train, "--train")
    test_path = pick_file(folder, "test", test, "--test")
    sample_path = find_sample(folder, sample or "")
    reasons.append(f"train: {train_path.name}, test: {test_path.name}, sample submission: "
                   f"{sample_path.name if sample_path else '(none)'}")

    train_columns = [str(c) for c in read_part(train_path, nrows=5).columns]
    test_head = read_part(test_path, nrows=HEAD_ROWS)
    test_columns = [str(c) for c in test_head.columns]
    sample_frame = read_sample(sample_path, nrows=HEAD_ROWS) if sample_path else None
    sample_columns = [str(c) for c in sample_frame.columns] if sample_frame is not None else []
    test_lower = {c.lower() for c in test_columns}
    train_only = [c for c in train_columns if c.lower() not in test_lower]

    # ---- the id: the column test and the sample share
    if id is not None:
        data_id = in_columns(id, test_columns, "--id", test_path.name) if id else ""
        sample_id = data_id  # without a sample, the submission names the id as test does
        if data_id and sample_path:
            sample_id = in_columns(id, sample_columns, "--id", sample_path.name)
        elif not data_id and sample_path:
            raise HarnessError(f"--id '': {sample_path.name} has an id column ({sample_columns[0]}); "
                               "give --id COL, the column test and the sample share")
        reasons.append(f"id: {data_id or '(none: rows in order)'} (--id)")
    elif sample_path:
        shared = match_names(sample_columns, test_columns)  # sample column -> test column
        if not shared:
            raise HarnessError(f"{test_path.name} and {sample_path.name} share no column to be the id; "
                               "pass --id COL (the test column the sample's ids come from)")
        if len(shared) > 1:
            raise HarnessError(f"{test_path.name} and {sample_path.name} share several columns "
                               f"({', '.join(shared.values())}); pass --id COL to say which is the id")
        sample_id, data_id = next(iter(shared.items()))
        spelled = f" ({sample_id} in {sample_path.name})" if sample_id != data_id else ""
        reasons.append(f"id: {data_id}{spelled} (the column {test_path.name} and {sample_path.name} share)")
    else:
        named = [c for c in test_columns if c.lower() == "id"]
        data_id = sample_id = named[0] if named else ""
        reasons.append(f"id: {data_id} (named id; no sample submission)" if data_id else
                       "id: none (no sample submission and no column named id): rows in test order; --id COL sets one")

    # ---- the target: in train and in the sample, not in test
    prediction_columns = [c for c in sample_columns if c != sample_id]
    target_values, class_target = None, False
    if target is not None:
        target = in_columns(target, train_columns, "--target", train_path.name)
        if target.lower() in test_lower:
            raise HarnessError(f"--target {target}: {test_path.name} has that column too; the target is the column "
                               "that train has and test lacks")
        reasons.append(f"target: {target} (--target)")
    else:
        candidates = [c for c in train_only if c.lower() in {p.lower() for p in prediction_columns}]
        if len(candidates) > 1:
            raise HarnessError(f"several target candidates ({', '.join(candidates)}: in {train_path.name} and the sample, "
                               f"not in {test_path.name}); pass --target COL")
        if candidates:
            target = candidates[0]
            reasons.append(f"target: {target} (in {train_path.name} and {sample_path.name}, not in {test_path.name})")
        elif not sample_path:
            if len(train_only) != 1:
                raise HarnessError(f"no sample submission, and {len(train_only)} columns of {train_path.name} are not in "
                                   f"{test_path.name} ({', '.join(train_only[:6]) or 'none'}); pass --target COL")
            target = train_only[0]
            reasons.append(f"target: {target} (the one column of {train_path.name} not in {test_path.name})")
    only_values = read_part(train_path, usecols=train_only) if train_only else pd.DataFrame()
    if target is None and len(prediction_columns) > 1:
        # one column per class (Otto): the train-only column whose values are the sample's columns
        classes = [c for c in train_only if class_match(prediction_columns, only_values[c])]
        if len(classes) > 1:
            raise HarnessError(f"several columns of {train_path.name} hold the sample's classes ({', '.join(classes)}); "
                               "pass --target COL")
        if classes:
            target, class_target = classes[0], True
            reasons.append(f"target: {target} (its values are {sample_path.name}'s columns "
                           f"{', '.join(prediction_columns[:3])}{', ...' if len(prediction_columns) > 3 else ''}; "
                           f"not in {test_path.name})")
    if target is None:
        raise HarnessError(f"no target: no column of {train_path.name} outside {test_path.name} "
                           f"({', '.join(train_only[:6]) or 'none'}) is in {sample_path.name} "
                           f"({', '.join(prediction_columns[:6])}) or holds its columns as values; pass --target COL")
    target_values = only_values[target] if target in only_values else read_part(train_path, usecols=[target])[target]
    blanks = int(target_values.isna().sum())
    target_values = target_values.dropna()
    if blanks:
        reasons.append(f"note: {blanks} row(s) of {train_path.name} have no {target}")

    # ---- task and metric
    slug = slug or next((s for s in (folder.name, name) if s in KNOWN_METRICS), "")
    hint = metric or KNOWN_METRICS.get(slug)
    if hint:
        get_metric(hint)  # an unknown name is an error naming the known ones
    if class_target:  # one probability column per class: softmax over them, even for two classes
        task = "multiclass"
        task_why = f"one sample column per class ({len(prediction_columns)} classes)"
    else:
        task, task_why = guess_task(target_values, hint)
    reasons.append(f"task: {task} ({target}: {task_why})")
    if metric:
        metric_why = "--metric"
    elif hint:
        metric_why = f"Kaggle's metric for {slug}"
    else:
        hint = "log_loss" if task == "multiclass" and class_target else DEFAULT_METRICS[task]
        others = [m for m in metrics_for(task) if m != hint]
        metric_why = f"the default for a {task} task; --metric NAME chooses another: {', '.join(others)}"
    metric = get_metric(hint).name
    if metric not in metrics_for(task):
        raise HarnessError(f"metric {metric} does not score a {task} task ({target}: {task_why}); "
                           f"pass --metric with one of {', '.join(metrics_for(task))}")
    reasons.append(f"metric: {metric} ({metric_why})")

    # ---- the submission's format
    # no sample: the submission is the id and the target, as train spells them
    shape = sample_frame if sample_frame is not None else pd.DataFrame(columns=[c for c in (data_id, target) if c])
    fmt = read_format(shape, target_values, task=task, metric=metric, id_column=sample_id)
    reasons.append(format_reason(fmt, target))

    # ---- target scale, columns never used as features, validation
    transform = TRANSFORMS.get(metric, "") if task == "regression" else ""
    numeric = pd.to_numeric(target_values, errors="coerce") if task == "regression" else None
    if transform == "log" and (numeric <= 0).any():
        transform = "log1p"
        reasons.append(f"target_transform: log1p ({metric} is scored on ratios; {target} has values <= 0, "
                       "which log cannot take)")
    elif transform:
        reasons.append(f"target_transform: {transform} (the model learns {target} on the scale {metric} scores)")
    drop = [c for c in train_only if c != target]
    if drop:
        reasons.append(f"drop: {', '.join(drop)} (not in {test_path.name} (would leak))")
    if data_id and data_id.lower() in {c.lower() for c in train_columns}:
        train_id = match_names([data_id], train_columns)[data_id]
        if looks_like_dates(test_head[data_id]):
            reasons.append(f"kept: {train_id} is the id but holds dates, a feature (expanded into date parts)")
        else:
            drop.append(train_id)
            reasons.append(f"drop: {train_id} (the id, not a feature)")
    scheme = "stratified" if task in ("binary", "multiclass") else "kfold"
    reasons.append(f"validation: {scheme}, 5 folds, split_seed 0")

    config = {
        "name": name,
        "kind": "tabular",
        "description": f"{(slug or name).replace('-', ' ').replace('_', ' ').title()} ({task}, {metric})",
        "kaggle_slug": slug,
        "task": task,
        "metric": metric,
        "seed": 0,
        "data": {
            "train": train_path.name,
            "test": test_path.name,
            "sample_submission": sample_path.name if sample_path else "",
            "id": data_id,
            "target": target,
            "target_transform": transform,
            "drop": drop,
            "categorical": [],
            "continuous": [],
            "dates": [],
            "max_card": 20,
        },
        "submission": fmt.to_config(),
        "validation": {"scheme": scheme, "folds": 5, "split_seed": 0},
    }
    if not slug:
        reasons.append("kaggle_slug: none known for this folder; set kaggle_slug (or pass --slug) to submit to Kaggle")
    roles = {train_path.name: "train", test_path.name: "test"}
    if sample_path:
        roles[sample_path.name] = "sample submission"
    files = {p.name: roles.get(p.name, "not used") for p in sorted(folder.iterdir()) if not p.name.startswith(".")}
    for path in (train_path, test_path, sample_path):
        if path is not None and path.parent != folder:  # a declared file outside the folder
            files[str(path)] = roles[path.name]
    return Guess(config, reasons, files)


def class_match(columns, values: pd.Series) -> bool:
    """Are the sample's ``columns`` exactly the distinct values of a train column?"""
    found = distinct(values)
    return len(found) == len(columns) and class_columns(columns, found) is not None


def format_reason(fmt, target: str) -> str:
    where = ", ".join(fmt.columns[:4]) + (", ..." if len(fmt.columns) > 4 else "")
    if fmt.format == "values":
        clip = f", clipped at 0 ({target} is never negative)" if fmt.nonnegative else ""
        return f"submission: values in {where}{clip}"
    if fmt.format == "labels":
        shown = ", ".join(map(str, fmt.classes[:6])) + (", ..." if len(fmt.classes) > 6 else "")
        return f"submission: labels in {where} (the metric scores labels; {target}'s values: {shown})"
    if fmt.format == "probabilities":
        return f"submission: P({target} = {fmt.positive or 1}) in {where} (the metric scores probabilities)"
    return f"submission: one probability per class in {len(fmt.columns)} columns ({where})"
