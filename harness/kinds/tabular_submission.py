"""A tabular competition's submission from model outputs, in the sample submission's format
(harness.scoring.sample): values on the target's own scale, labels with the threshold chosen on
out-of-fold or validation predictions for a label metric, P(positive), or one probability per class."""
from __future__ import annotations

import numpy as np
import pandas as pd

from harness.data.targets import inverse_transform
from harness.scoring.sample import SampleFormat, build_submission, check_against_sample


def submission_format(task, config: dict, template: pd.DataFrame) -> SampleFormat:
    """The [submission] table, its blanks filled from the task, the metric and the template's columns."""
    table = dict(config["submission"])
    if not table["format"]:
        table["format"] = default_format(task, config.get("metric"), template)
    table["id_column"] = table["id_column"] or str(template.columns[0])
    table["columns"] = table["columns"] or [str(c) for c in template.columns if str(c) != table["id_column"]]
    if table["format"] not in ("labels", "class_probabilities"):
        table["classes"] = []
    elif table["format"] == "class_probabilities" and len(table["classes"]) != len(table["columns"]):
        table["classes"] = list(table["columns"])  # columns named after the classes (Otto's Class_1 ...)
    return SampleFormat.from_config(table)


def default_format(task, metric, template: pd.DataFrame) -> str:
    if task.kind == "regression":
        return "values"
    if task.kind == "multiclass":
        return "class_probabilities" if template.shape[1] > 2 else "labels"
    from harness.scoring.metrics import get_metric

    return "labels" if metric and get_metric(metric).takes == "labels" else "probabilities"


def fill_submission(task, config: dict, outputs, template: pd.DataFrame, valid=None) -> pd.DataFrame:
    """``template`` (the sample, or a run's submission) filled from ``outputs`` given in its row order."""
    fmt = submission_format(task, config, template)
    outputs = np.asarray(outputs, dtype=np.float64)
    ids = template[fmt.id_column].to_numpy() if fmt.id_column in template.columns else None
    classes = [str(c) for c in config["submission"]["classes"]] or None  # the model's class order
    if fmt.format == "values":
        values = inverse_transform(outputs.reshape(len(template)), config["data"]["target_transform"])
        return build_submission(fmt, template, ids, values, given="values", task=task)
    return build_submission(fmt, template, ids, outputs, given="outputs", task=task, classes=classes,
                            threshold=label_threshold(task, config, valid))


def check_submission(task, config: dict, submission: pd.DataFrame, template: pd.DataFrame, name: str) -> None:
    fmt = submission_format(task, config, template)
    check_against_sample(submission, template, fmt, name=name,
                         classes=[str(c) for c in config["submission"]["classes"]] or None)


def label_threshold(task, config: dict, valid) -> float:
    """0.5, or for a binary label metric the threshold that scores best on ``valid`` (out-of-fold or
    validation outputs and targets: never the test rows)."""
    from harness.scoring.metrics import choose_threshold, get_metric

    metric = config.get("metric")
    if task.kind != "binary" or valid is None or not metric or get_metric(metric).takes != "labels":
        return 0.5
    outputs, targets = valid
    threshold, _ = choose_threshold(metric, task.to_probabilities(outputs), targets, task)
    return threshold
