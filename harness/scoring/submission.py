"""Checking a submission against the competition's sample submission before anything is uploaded,
and checking the held-out answers (solution.csv) of a competition scored locally."""
from __future__ import annotations

import numpy as np
import pandas as pd

from harness.errors import HarnessError


def plain(value):
    """A numpy scalar as the Python value it holds, so messages say 1, not np.int64(1)."""
    return value.item() if isinstance(value, np.generic) else value


def first(values) -> object:
    """The first of a set of ids in a stable order, for a message's example."""
    return plain(sorted(values, key=str)[0])


def id_set_difference(got, expected) -> tuple[set, set]:
    """(ids of ``expected`` missing from ``got``, ids of ``got`` not in ``expected``)."""
    got, expected = set(map(plain, got)), set(map(plain, expected))
    return expected - got, got - expected


def validate_submission(submission: pd.DataFrame, sample: pd.DataFrame, id_column: str = "id",
                        value_range: tuple[float, float] | None = None, probabilities: bool = False,
                        name: str = "submission", reference: str = "the sample submission",
                        numeric: bool = True) -> None:
    """Raise HarnessError unless ``submission`` matches ``sample``'s format.

    Same columns in the same order; the same set of ids, none duplicated; (``numeric``) no NaN or infinity;
    values inside ``value_range``; with ``probabilities``, every row's values sum to 1. ``reference``
    says in messages what ``sample`` is (e.g. solution.csv for a competition scored locally).
    """
    if list(submission.columns) != list(sample.columns):
        raise HarnessError(f"{name}: columns {list(submission.columns)[:6]}... differ from {reference}'s "
                           f"{list(sample.columns)[:6]}...; use the sample's columns in its order")
    ids = submission[id_column]
    dup = ids.duplicated()
    if dup.any():
        raise HarnessError(f"{name}: {int(dup.sum())} duplicated {id_column}(s), first {plain(ids[dup].iloc[0])!r}")
    missing, extra = id_set_difference(ids.tolist(), sample[id_column].tolist())
    if missing or extra:
        detail = []
        if missing:
            detail.append(f"{len(missing)} missing (e.g. {first(missing)!r})")
        if extra:
            detail.append(f"{len(extra)} not in {reference} (e.g. {first(extra)!r})")
        raise HarnessError(f"{name}: the {id_column} set differs from {reference}'s: {'; '.join(detail)}")
    values = submission.drop(columns=[id_column])
    if not numeric:  # labels such as class names: the columns and ids are all there is to check
        if values.isna().any().any():
            raise HarnessError(f"{name}: {int(values.isna().any(axis=1).sum())} row(s) have no prediction")
        return
    array = prediction_values(values, name, ids)
    if value_range is not None:
        lo, hi = value_range
        if (array < lo).any() or (array > hi).any():
            raise HarnessError(f"{name}: values must lie in [{lo}, {hi}]; found {array.min():.4g} to {array.max():.4g}")
    if probabilities:
        sums = array.sum(axis=1)
        off = np.abs(sums - 1) > 1e-3
        if off.any():
            raise HarnessError(f"{name}: {int(off.sum())} row(s) of probabilities do not sum to 1 "
                               f"(first sums to {sums[off][0]:.4f})")


def prediction_values(values: pd.DataFrame, name: str = "submission", ids: pd.Series | None = None) -> np.ndarray:
    """The prediction columns ``values`` as floats, or a HarnessError naming the first column with a value
    that is not a finite number, its data row (and id, from ``ids``) and the value."""
    for col in values.columns:
        column = values[col]
        numbers = pd.to_numeric(column, errors="coerce")
        text = (numbers.isna() & column.notna()).to_numpy()  # not a number at all, e.g. "abc"
        bad = text | ~np.isfinite(numbers.to_numpy(dtype=np.float64))
        if bad.any():
            rows = text if text.any() else bad
            row = int(rows.argmax())
            where = f"data row {row + 1}" + (f" ({ids.name} {plain(ids.iloc[row])!r})" if ids is not None else "")
            fault = (f"non-numeric prediction values in {[col]}: {int(rows.sum())} row(s)" if text.any() else
                     f"{int(rows.sum())} row(s) hold NaN or infinity in column {col}")
            raise HarnessError(f"{name}: {fault}, first {plain(column.iloc[row])!r} at {where}; write a finite "
                               "number in every row (predict again with `harness predict`)")
    return values.to_numpy(dtype=np.float64)


def check_answers(answers: pd.DataFrame, name: str, columns: list | None = None, test_ids=None,
                  hint: str = "fix the file or restore the original") -> None:
    """Raise HarnessError, naming the answers file ``name``, unless it can score submissions.

    The answers (a locally scored competition's solution.csv) need the submission's ``columns``
    (when known), one row per id with no id blank or repeated, a finite number for every answer and,
    when the test set's ids are known (``test_ids``), exactly those ids. Its faults are its own: a
    short solution.csv must not read as a submission that has too many rows. ``hint`` says what to do.
    """
    fix = f"; {hint}"
    if columns is not None and list(answers.columns) != list(columns):
        raise HarnessError(f"{name}: columns {list(answers.columns)[:6]} should be the submission's "
                           f"{list(columns)[:6]}{fix}")
    if len(answers.columns) < 2:
        raise HarnessError(f"{name} needs an id column and at least one answer column; found "
                           f"{list(answers.columns)}{fix}")
    id_column = answers.columns[0]
    ids = answers[id_column]
    if ids.isna().any():
        raise HarnessError(f"{name}: {int(ids.isna().sum())} row(s) without an {id_column}, first at data row "
                           f"{int(ids.isna().to_numpy().argmax()) + 1}{fix}")
    dup = ids.duplicated()
    if dup.any():
        raise HarnessError(f"{name}: {int(dup.sum())} duplicated {id_column}(s), first {plain(ids[dup].iloc[0])!r}; "
                           f"keep one answer per {id_column}{fix}")
    for col in answers.columns[1:]:
        values = pd.to_numeric(answers[col], errors="coerce")
        bad = ~np.isfinite(values.to_numpy(dtype=np.float64))
        if bad.any():
            row = int(bad.argmax())
            raise HarnessError(f"{name}: column {col} has {int(bad.sum())} value(s) that are not finite numbers, "
                               f"first {plain(answers[col].iloc[row])!r} at data row {row + 1}{fix}")
    if test_ids is not None:
        missing, extra = id_set_difference(ids.tolist(), test_ids)
        if missing or extra:
            detail = []
            if missing:
                detail.append(f"{len(missing)} test {id_column}(s) have no answer (e.g. {first(missing)!r})")
            if extra:
                detail.append(f"{len(extra)} answer(s) for {id_column}s not in the test set (e.g. {first(extra)!r})")
            raise HarnessError(f"{name} does not answer the test set: {'; '.join(detail)}{fix}")
