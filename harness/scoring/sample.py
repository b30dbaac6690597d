"""The sample submission decides a submission's format: which file it is, its columns and their order,
its id order and the kind of value each column holds.

Four formats cover the common competitions: ``values`` (a number per row: Bike Sharing's ``count``),
``labels`` (Titanic's 0/1, or class names), ``probabilities`` (Amazon's ``Action``: P(positive)) and
``class_probabilities`` (one column per class: Otto's ``Class_1..9``, dog breeds' names).
``read_format`` infers the format from the sample; ``build_submission`` turns predictions into exactly
the sample's frame; ``check_against_sample`` checks a submission before it is uploaded. The task math
(outputs -> probabilities -> labels) stays in :mod:`harness.scoring.tasks`; this module only shapes frames.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from harness.data.files import check_file, read_table
from harness.errors import HarnessError
from harness.scoring.metrics import get_metric
from harness.scoring.submission import validate_submission
from harness.scoring.tasks import get_task

FORMATS = ("values", "labels", "probabilities", "class_probabilities")
# The file endings a sample submission comes in (Kaggle ships some zipped).
SAMPLE_SUFFIXES = (".csv", ".csv.gz", ".csv.zip")
SAMPLE_WORDS = re.compile(r"sample|submission", re.IGNORECASE)
# The task a format implies when no task is given
FORMAT_TASKS = {"values": "regression", "probabilities": "binary", "class_probabilities": "multiclass"}


# ---------------------------------------------------------------------------- values as text

def plain(value):
    """A cell as a Python scalar (np.int64(1) -> 1), so TOML files and messages show plain values."""
    return value.item() if isinstance(value, np.generic) else value


def as_text(value) -> str:
    """A target value as text, to compare with column names: 1.0 -> "1" (a float column of labels)."""
    value = plain(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def distinct(values) -> list:
    """The distinct non-blank values, sorted (by text where the types do not compare)."""
    series = pd.Series(values).dropna()
    found = [plain(v) for v in series.unique()]
    try:
        return sorted(found)
    except TypeError:
        return sorted(found, key=as_text)


def match_names(wanted, names) -> dict:
    """{each wanted text: the name in ``names`` it matches}, case-sensitive first, then ignoring case;
    the wanted texts that match nothing are left out."""
    names = [str(n) for n in names]
    lower = {}
    for n in names:
        lower.setdefault(n.lower(), n)
    found = {}
    for w in wanted:
        w = str(w)
        if w in names:
            found[w] = w
        elif w.lower() in lower:
            found[w] = lower[w.lower()]
    return found


# ---------------------------------------------------------------------------- finding the file

def is_sample_name(name: str) -> bool:
    lower = name.lower()
    return bool(SAMPLE_WORDS.search(lower)) and lower.endswith(SAMPLE_SUFFIXES)


def find_sample(folder, declared: str = "") -> Path | None:
    """The sample submission in ``folder`` whatever it is called: the ``declared`` name (``submission``
    in the TOML, or --sample), else the one file named like *sample* or *submission* (.csv, .csv.gz or
    .csv.zip: sample_submission.csv, sampleSubmission.csv, gender_submission.csv, sampleEntry.csv);
    None when there is none. Several candidates are an error: only a declared name settles them."""
    folder = Path(folder)
    if declared:
        path = Path(declared) if Path(declared).is_absolute() else folder / declared
        if not path.exists():
            raise HarnessError(f"sample submission {declared}: no such file in {folder}; give a file of that folder")
        return check_file(path, "sample submission file")
    found = sorted(p for p in folder.iterdir() if p.is_file() and is_sample_name(p.name))
    if len(found) > 1:
        raise HarnessError(f"{folder} has several sample submission candidates ({', '.join(p.name for p in found)}); "
                           "declare the one to use (sample_submission = ... in the TOML, or --sample FILE)")
    return found[0] if found else None


def read_sample(path, nrows: int | None = None) -> pd.DataFrame:
    """The sample submission as a frame (a .gz or .zip is read through), every failure a HarnessError."""
    frame = read_table(path, nrows=nrows)
    if frame.shape[1] < 2:
        raise HarnessError(f"{path} has {frame.shape[1]} column; a sample submission has an id column and "
                           "at least one prediction column")
    return frame


# ---------------------------------------------------------------------------- the format

@dataclass
class SampleFormat:
    """What a submission holds, read from the sample: its ``[submission]`` table in a competition TOML.

    ``classes``: for class_probabilities, the target value each column stands for (in column order);
    for labels, the target value of each integer label (in label order), so labels map back to the
    target's own values. The TOML holds them as text ("0", "Class_1"); values are compared as text. ``positive``: binary, the target value that is the positive class ("" = 1 / true).
    ``nonnegative``: values are clipped at 0 (the target is never negative).
    """

    id_column: str  # "" = no id column: rows in the sample's order
    columns: list = field(default_factory=list)
    format: str = "values"
    classes: list = field(default_factory=list)
    positive: str = ""
    nonnegative: bool = False

    def __post_init__(self):
        if self.format not in FORMATS:
            raise HarnessError(f"submission format {self.format!r} is not one of {', '.join(FORMATS)}")
        self.columns = [str(c) for c in self.columns]
        self.classes = [plain(c) for c in self.classes]
        if self.format == "class_probabilities" and self.classes and len(self.classes) != len(self.columns):
            raise HarnessError(f"submission: {len(self.classes)} classes for {len(self.columns)} class columns; "
                               "give one class per column")

    @property
    def task_kind(self) -> str:
        """The task kind a format implies (labels: binary with two classes, else multiclass)."""
        if self.format == "labels":
            return "binary" if len(self.classes) <= 2 else "multiclass"
        return FORMAT_TASKS[self.format]

    def to_config(self) -> dict:
        return {"format": self.format, "columns": list(self.columns), "id_column": self.id_column,
                "classes": [as_text(c) for c in self.classes], "positive": self.positive, "nonnegative": bool(self.nonnegative)}

    @classmethod
    def from_config(cls, table: dict) -> "SampleFormat":
        known = {"format", "columns", "id_column", "classes", "positive", "nonnegative"}
        unknown = sorted(set(table) - known)
        if unknown:
            raise HarnessError(f"[submission] has unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(id_column=str(table.get("id_column", "")), columns=list(table.get("columns", [])),
                   format=str(table.get("format", "values")), classes=list(table.get("classes", [])),
                   positive=str(table.get("positive", "")), nonnegative=bool(table.get("nonnegative", False)))


def guess_task(target_values, metric=None) -> tuple[str, str]:
    """(task kind, why) from a target's values: two distinct values are binary; text is multiclass;
    fractions, or integers without a label metric, are regression; integers under a metric that scores
    classes (accuracy, log_loss...) are multiclass."""
    values = distinct(target_values)
    if len(values) < 2:
        raise HarnessError(f"the target holds {len(values)} distinct value(s) ({values[:3]}); nothing to predict")
    if len(values) == 2:
        return "binary", f"2 distinct values ({as_text(values[0])}, {as_text(values[1])})"
    numeric = pd.to_numeric(pd.Series(values), errors="coerce")
    if numeric.isna().any():
        return "multiclass", f"{len(values)} distinct non-numeric values"
    whole = bool((numeric % 1 == 0).all())
    if not whole:
        return "regression", f"numbers with fractions ({len(values)} distinct values)"
    if metric is not None and "regression" not in get_metric(metric).kinds:
        return "multiclass", f"{len(values)} distinct integers, and {get_metric(metric).name} scores classes"
    return "regression", f"{len(values)} distinct integers (no metric that scores classes)"


def binary_positive(values) -> str:
    """The ``positive`` a binary target needs: "" when 1 / true is one of its values, else the later
    value in sorted order (yes over no, Y over N)."""
    values = distinct(values)
    if any(as_text(v).lower() in ("1", "true") for v in values):
        return ""
    return as_text(values[-1])


def class_columns(columns, target_values) -> list | None:
    """The target value each sample column stands for, when the columns are exactly the target's values
    (compared as text, case-sensitive first, then ignoring case); else None."""
    values = distinct(target_values)
    by_text = {as_text(v): v for v in values}
    matched = match_names(columns, by_text)  # column -> the target value's text
    if len(matched) != len(columns) or len(set(matched.values())) != len(values):
        return None
    return [by_text[matched[str(c)]] for c in columns]


def read_format(sample_frame: pd.DataFrame, target_values=None, task=None, metric=None,
                id_column: str | None = None) -> SampleFormat:
    """The format of a sample submission.

    ``id_column``: the sample's id column (None: its first column; "": none). ``target_values``: the
    train target's values (they say the classes and whether the target is ever negative); ``task`` and
    ``metric`` say what a single column holds: a label metric (accuracy, f1, mcc, qwk) takes labels, a
    probability metric (roc_auc, log_loss) P(positive). Several columns that are the target's values
    (Otto's Class_1..9) are class probabilities.
    """
    if id_column is None:
        id_column = str(sample_frame.columns[0])
    if id_column and id_column not in sample_frame.columns:
        raise HarnessError(f"the sample submission has no id column {id_column!r}; its columns: "
                           f"{', '.join(map(str, sample_frame.columns))}")
    columns = [str(c) for c in sample_frame.columns if str(c) != id_column]
    if not columns:
        raise HarnessError("the sample submission has no prediction column besides its id")
    metric = get_metric(metric) if metric is not None else None
    kind = get_task(task).kind if task is not None else None

    if len(columns) > 1:
        classes = class_columns(columns, target_values) if target_values is not None else list(columns)
        if classes is None:
            values = distinct(target_values)
            shown = ", ".join(as_text(v) for v in values[:8]) + (", ..." if len(values) > 8 else "")
            raise HarnessError(f"the sample submission's columns {', '.join(columns[:8])} are not the target's "
                               f"values ({shown}); one column per class needs one column per target value")
        if kind not in (None, "multiclass", "binary"):
            raise HarnessError(f"the sample submission has one column per class ({', '.join(columns[:4])}...), "
                               f"which a {kind} task does not predict")
        return SampleFormat(id_column, columns, "class_probabilities", classes=classes)

    if kind is None:
        if metric is not None and "regression" in metric.kinds:
            kind = "regression"
        elif target_values is not None:
            kind = guess_task(target_values, metric)[0]
        else:
            kind = "regression" if metric is None else "binary"
    if kind == "regression":
        nonnegative = False
        if target_values is not None:
            numeric = pd.to_numeric(pd.Series(target_values), errors="coerce").dropna()
            nonnegative = bool(len(numeric)) and bool((numeric >= 0).all())
        return SampleFormat(id_column, columns, "values", nonnegative=nonnegative)

    takes = metric.takes if metric is not None else sample_takes(sample_frame[columns[0]])
    if takes == "probabilities" and kind == "multiclass":
        raise HarnessError(f"the sample submission has one prediction column ({columns[0]}), but "
                           f"{metric.name if metric else 'a probability metric'} scores a multiclass task on one "
                           "probability column per class; choose a label metric (--metric accuracy)")
    if takes == "probabilities":
        positive = binary_positive(target_values) if target_values is not None else ""
        return SampleFormat(id_column, columns, "probabilities", positive=positive)
    classes, positive = [], ""
    if target_values is not None:
        classes = distinct(target_values)
        if kind == "binary" and len(classes) == 2:
            positive = binary_positive(classes)
            classes = label_order(classes, positive)
    return SampleFormat(id_column, columns, "labels", classes=classes, positive=positive)


def sample_takes(column: pd.Series) -> str:
    """What a sample's single classification column holds, with no metric to say: fractions in [0, 1]
    are probabilities, anything else labels."""
    numeric = pd.to_numeric(column, errors="coerce")
    if numeric.notna().all() and ((numeric % 1) != 0).any() and numeric.between(0, 1).all():
        return "probabilities"
    return "labels"


# ---------------------------------------------------------------------------- labels <-> target values

def label_order(values, positive: str = "") -> list:
    """A binary target's two values as [negative, positive]; ``positive`` ("" = 1 / true) names the
    positive one as text."""
    values = distinct(values)
    if len(values) != 2:
        raise HarnessError(f"a binary target holds 2 values, not {len(values)} ({values[:4]})")
    texts = [as_text(v).lower() for v in values]
    if positive:
        wanted = [i for i, v in enumerate(values) if as_text(v) == positive] or \
                 [i for i, t in enumerate(texts) if t == positive.lower()]
    else:
        wanted = [i for i, t in enumerate(texts) if t in ("1", "true")]
    if len(wanted) != 1:
        raise HarnessError(f"the positive class {positive or '1 / true'!r} is not one of the target's values "
                           f"{as_text(values[0])}, {as_text(values[1])}; set submission.positive to one of them")
    return [values[1 - wanted[0]], values[wanted[0]]]


def target_classes(fmt: SampleFormat, target_values, task=None) -> list:
    """The target's values in label order (integer label i means classes[i]), as the model must learn them
    so its outputs line up with the sample: binary [negative, positive]; class probabilities in the
    sample's column order; other labels as the format lists them, else sorted."""
    kind = get_task(task).kind if task is not None else fmt.task_kind
    values = distinct(target_values)
    if kind == "regression" or fmt.format == "values":
        raise HarnessError("a regression target has no classes")
    if kind == "binary" and fmt.format != "class_probabilities":
        return label_order(values, fmt.positive)
    classes = list(fmt.classes) or values
    unknown = sorted(set(map(as_text, values)) - set(map(as_text, classes)))
    if unknown:
        raise HarnessError(f"target value(s) {', '.join(unknown[:5])} have no column or label in the sample "
                           f"submission's format (classes {', '.join(map(as_text, classes[:8]))}); "
                           "add them to submission.classes")
    return classes


def encode_labels(target_values, classes) -> np.ndarray:
    """Integer labels (positions in ``classes``) for a target's values; an unknown value is an error."""
    position = {as_text(c): i for i, c in enumerate(classes)}
    texts = [as_text(v) for v in target_values]
    bad = [t for t in texts if t not in position]
    if bad:
        raise HarnessError(f"target value {bad[0]!r} ({len(bad)} row(s)) is not one of the classes "
                           f"{', '.join(position)}")
    return np.array([position[t] for t in texts], dtype=np.int64)


# ---------------------------------------------------------------------------- building a submission

GIVEN = ("outputs", "values", "labels", "probabilities")


def prediction_array(fmt: SampleFormat, predictions, given: str = "outputs", task=None,
                     threshold: float = 0.5) -> np.ndarray:
    """The predictions as the format holds them (values, integer labels, P(positive) or class
    probabilities). ``given`` says what they are: raw model ``outputs`` on the task's output scale
    (mapped through the task), or already ``values``, ``labels`` or ``probabilities``."""
    if given not in GIVEN:
        raise HarnessError(f"predictions given as {given!r}; use one of {', '.join(GIVEN)}")
    task = get_task(task if task is not None else fmt.task_kind)
    x = np.asarray(predictions)
    if fmt.format == "values":
        if given not in ("outputs", "values"):
            raise HarnessError(f"a values submission takes values, not {given}")
        return task.check_outputs(x)
    if fmt.format == "labels":
        if given == "labels":
            return x.reshape(-1)
        if given == "values":
            raise HarnessError("a labels submission takes labels, probabilities or outputs, not values")
        probabilities = x if given == "probabilities" else task.to_probabilities(x)
        return task.labels_from_probabilities(probabilities, threshold)
    if given in ("labels", "values"):
        raise HarnessError(f"a {fmt.format} submission takes probabilities or outputs, not {given}")
    p = np.asarray(x, dtype=np.float64) if given == "probabilities" else task.to_probabilities(x)
    if fmt.format == "probabilities" and p.ndim == 2 and p.shape[1] == 2:
        p = p[:, 1]  # two class columns: the positive class's
    return p


def rows_for(sample_ids, ids) -> np.ndarray:
    """For each sample id (in the sample's order), the position of its prediction in ``ids``.

    Ids are matched as they are, else as text (a test id parsed as a date, the sample's as a string);
    an id predicted twice, a sample id with no prediction, or a prediction for an id the sample lacks
    is an error."""
    ids = [plain(i) for i in ids]
    sample_ids = [plain(i) for i in sample_ids]
    if len(set(ids)) != len(ids):
        dup = pd.Series(ids)[pd.Series(ids).duplicated()].iloc[0]
        raise HarnessError(f"the predictions hold id {dup!r} more than once; predict each test row once")
    for key in (lambda v: v, as_text):
        position = {key(v): i for i, v in enumerate(ids)}
        wanted = [key(v) for v in sample_ids]
        if all(w in position for w in wanted):
            break
    missing = [w for w in wanted if w not in position]
    if missing:
        raise HarnessError(f"{len(missing)} id(s) of the sample submission have no prediction (e.g. {missing[0]!r}); "
                           "predict every test row (the test file and the sample must list the same ids)")
    extra = len(ids) - len(set(wanted))
    if extra:
        unknown = sorted(set(position) - set(wanted), key=str)[0]
        raise HarnessError(f"{extra} predicted id(s) are not in the sample submission (e.g. {unknown!r}); "
                           "the test file and the sample must list the same ids")
    return np.array([position[w] for w in wanted], dtype=np.int64)


def build_submission(fmt: SampleFormat, sample_frame: pd.DataFrame, ids, predictions, given: str = "outputs",
                     task=None, classes=None, threshold: float = 0.5) -> pd.DataFrame:
    """The submission, shaped exactly as the sample: its columns in its order, its ids in its order.

    ``ids``: the test id of each prediction row (None when the format has no id column: the rows are in
    the sample's order). ``given``: what the predictions are (see :func:`prediction_array`).
    ``classes``: the target value each integer label / class output stands for, in label order (as
    :func:`target_classes` gives them); by default the format's. Labels are written as the target's own
    values, probabilities clipped to [0, 1], class probability rows renormalised to sum to 1, and values
    clipped at 0 when the format says the target is never negative.
    """
    array = prediction_array(fmt, predictions, given, task, threshold)
    n = len(sample_frame)
    if fmt.id_column:
        if ids is None:
            raise HarnessError(f"the sample submission has an id column {fmt.id_column!r}; give the test ids")
        if len(ids) != len(array):
            raise HarnessError(f"{len(ids)} ids for {len(array)} prediction rows")
        rows = rows_for(sample_frame[fmt.id_column], ids)
    else:
        if len(array) != n:
            raise HarnessError(f"{len(array)} prediction rows for the sample submission's {n} rows; "
                               "predict every test row, in the test file's order")
        rows = np.arange(n)
    array = array[rows]
    out = pd.DataFrame(index=range(n))
    for col in sample_frame.columns:
        if str(col) == fmt.id_column:
            out[col] = sample_frame[col].to_numpy()
    classes = list(classes) if classes is not None else list(fmt.classes)
    if fmt.format == "values":
        values = array.reshape(n, -1)
        if fmt.nonnegative:
            values = np.clip(values, 0, None)
        for j, col in enumerate(fmt.columns):
            out[col] = values[:, j]
    elif fmt.format == "probabilities":
        out[fmt.columns[0]] = np.clip(array.reshape(-1), 0.0, 1.0)
    elif fmt.format == "labels":
        labels = np.asarray(array).reshape(-1)
        if classes:
            if np.issubdtype(labels.dtype, np.floating) and np.any(labels != np.round(labels)):
                raise HarnessError("labels must be whole numbers (positions in the classes)")
            codes = labels.astype(np.int64)
            if codes.min(initial=0) < 0 or codes.max(initial=0) >= len(classes):
                raise HarnessError(f"labels range over [{codes.min()}, {codes.max()}]; there are {len(classes)} "
                                   "classes (labels 0.." f"{len(classes) - 1})")
            values = pd.Series([plain(classes[c]) for c in codes])
            if pd.api.types.is_numeric_dtype(sample_frame[fmt.columns[0]]):  # TOML classes are text: "0", "1"
                numbers = pd.to_numeric(values, errors="coerce")
                if numbers.notna().all():
                    values = numbers.astype(np.int64) if (numbers % 1 == 0).all() else numbers
            out[fmt.columns[0]] = values.to_numpy()
        else:
            out[fmt.columns[0]] = labels
    else:
        p = np.clip(np.asarray(array, dtype=np.float64), 0.0, 1.0)
        if p.ndim != 2 or p.shape[1] != len(fmt.columns):
            raise HarnessError(f"class probabilities have shape {p.shape}; the sample has {len(fmt.columns)} class columns")
        if classes and fmt.classes:  # the model's class order -> the sample's column order
            position = {as_text(c): i for i, c in enumerate(classes)}
            missing = [as_text(c) for c in fmt.classes if as_text(c) not in position]
            if missing:
                raise HarnessError(f"class {missing[0]!r} of the sample submission is not among the model's classes")
            p = p[:, [position[as_text(c)] for c in fmt.classes]]
        sums = p.sum(axis=1, keepdims=True)
        p = np.where(sums > 0, p / np.where(sums > 0, sums, 1), 1.0 / p.shape[1])
        for j, col in enumerate(fmt.columns):
            out[col] = p[:, j]
    return out[list(sample_frame.columns)]


# ---------------------------------------------------------------------------- checking one

def check_against_sample(submission: pd.DataFrame, sample_frame: pd.DataFrame, fmt: SampleFormat,
                         name: str = "submission", classes=None) -> None:
    """Raise HarnessError unless ``submission`` matches the sample and its format: the sample's columns
    in order and its ids (validate_submission), labels among the known labels (``classes``, else the
    format's), probabilities in [0, 1], class probability rows summing to 1, values never negative
    when the format says so."""
    sample, id_column = sample_frame, fmt.id_column
    if not id_column:  # no id: rows in order, compared by their position
        if list(submission.columns) != list(sample.columns):
            raise HarnessError(f"{name}: columns {list(submission.columns)[:6]} differ from the sample submission's "
                               f"{list(sample.columns)[:6]}; use the sample's columns in its order")
        if len(submission) != len(sample):
            raise HarnessError(f"{name}: {len(submission)} rows; the sample submission has {len(sample)}")
        id_column = "row"
        while id_column in sample.columns:
            id_column += "_"
        submission = submission.assign(**{id_column: range(len(submission))})[[id_column, *submission.columns]]
        sample = sample.assign(**{id_column: range(len(sample))})[[id_column, *sample.columns]]
    if fmt.format == "labels":
        known = list(classes) if classes is not None else list(fmt.classes)
        if known and list(submission.columns) == list(sample.columns):
            position = {as_text(c): i for i, c in enumerate(known)}
            submission = submission.copy()
            for col in fmt.columns:
                texts = submission[col].map(as_text)
                bad = ~texts.isin(position)
                if bad.any():
                    row = int(bad.to_numpy().argmax())
                    raise HarnessError(f"{name}: column {col} has {int(bad.sum())} value(s) that are not a label "
                                       f"({', '.join(list(position)[:8])}), first {plain(submission[col].iloc[row])!r} "
                                       f"at data row {row + 1}")
                submission[col] = texts.map(position)
        validate_submission(submission, sample, id_column=id_column, name=name)
    elif fmt.format == "probabilities":
        validate_submission(submission, sample, id_column=id_column, value_range=(0.0, 1.0), name=name)
    elif fmt.format == "class_probabilities":
        validate_submission(submission, sample, id_column=id_column, value_range=(0.0, 1.0), probabilities=True,
                            name=name)
    else:
        validate_submission(submission, sample, id_column=id_column, name=name)
        if fmt.nonnegative:
            values = submission[fmt.columns].to_numpy(dtype=np.float64)
            if (values < 0).any():
                raise HarnessError(f"{name}: {int((values < 0).sum())} negative value(s) in {', '.join(fmt.columns)} "
                                   f"(first {values[values < 0][0]:.4g}); the target is never negative: clip at 0")
