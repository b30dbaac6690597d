"""Which columns of a table are categorical, continuous or dates, inferred and overridable.

The rules, in order (a config's ``categorical``, ``continuous`` and ``dates`` lists win over all of them):

- only columns of train that the test also has are features: a train-only column (Bike Sharing's
  ``casual``, ``registered``) would leak the answer;
- the id column is never a feature, unless it holds dates (Bike Sharing's ``datetime``): then its
  date parts are;
- a column with one value carries nothing; a text column unique in more than half the rows (a name,
  a ticket number) is free text, not a category: both are left out, saying why;
- text: dates if its first values parse as dates, else categorical; true/false: categorical;
- whole numbers: categorical with at most ``max_card`` distinct values; also when they look like codes
  (sparse: the range is over ten times the count of distinct values, and nine in ten test values were
  seen in train, as Amazon's ids); else continuous, as are fractional numbers.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from harness.errors import HarnessError

# Date parts (harness.data.dates.add_date_parts) that are categories; the others (Dayofyear, Elapsed) are numbers.
CATEGORICAL_DATE_PARTS = ("Year", "Month", "Week", "Day", "Dayofweek", "Hour", "Minute",
                          "Is_month_end", "Is_month_start", "Is_quarter_end", "Is_quarter_start",
                          "Is_year_end", "Is_year_start")


@dataclass
class ColumnTypes:
    categorical: list[str] = field(default_factory=list)
    continuous: list[str] = field(default_factory=list)
    dates: list[str] = field(default_factory=list)
    left_out: dict[str, str] = field(default_factory=dict)  # column -> why it is not a feature
    reasons: dict[str, str] = field(default_factory=dict)  # feature column -> why it has its type

    def table(self) -> str:
        """The inferred types as a table to print (`harness model`, `harness new`)."""
        rows = [(c, "categorical", self.reasons.get(c, "")) for c in self.categorical]
        rows += [(c, "continuous", self.reasons.get(c, "")) for c in self.continuous]
        rows += [(c, "date", self.reasons.get(c, "")) for c in self.dates]
        rows += [(c, "left out", why) for c, why in self.left_out.items()]
        width = max([len(r[0]) for r in rows] + [6])
        return "\n".join([f"{'column':<{width}}  {'type':<11}  why", *(f"{c:<{width}}  {t:<11}  {w}" for c, t, w in rows)])


def looks_like_dates(values: pd.Series) -> bool:
    """Text whose first non-blank values all parse as dates and contain digits with - / or :."""
    head = values.dropna().astype(str).head(200)
    if head.empty or not head.str.contains(r"\d[-/:]\d|\d{4}[-/]").all():
        return False
    parsed = pd.to_datetime(head, errors="coerce", format="mixed")
    return bool(parsed.notna().all())


def infer_columns(train: pd.DataFrame, test: pd.DataFrame | None, targets, id_column: str = "", drop=(),
                  categorical=(), continuous=(), dates=(), max_card: int = 20, source: str = "train") -> ColumnTypes:
    """The feature columns of ``train`` by type (see the module's rules)."""
    forced = {**{c: "categorical" for c in categorical}, **{c: "continuous" for c in continuous},
              **{c: "date" for c in dates}}
    for col in [*forced, *drop]:  # a typo would otherwise be silently ignored
        if col not in train.columns:
            declared = forced.get(col, "to drop")
            raise HarnessError(f"{source}: column {col} (declared {declared} in the config) is not in the file; "
                               f"its columns: {', '.join(map(str, train.columns))}")
    types = ColumnTypes()
    targets = set(targets)
    for col in train.columns:
        if col in targets:
            continue
        if col in drop:
            types.left_out[col] = "listed in data.drop"
            continue
        if col in forced:
            kind = forced[col]
            getattr(types, {"categorical": "categorical", "continuous": "continuous", "date": "dates"}[kind]).append(col)
            types.reasons[col] = "declared in the config"
            continue
        if test is not None and col not in test.columns:
            types.left_out[col] = "not in the test file (it would leak the answer)"
            continue
        values = train[col]
        if col == id_column:
            if not pd.api.types.is_numeric_dtype(values) and looks_like_dates(values):
                types.dates.append(col)
                types.reasons[col] = "the id, holding dates: its date parts are features"
            else:
                types.left_out[col] = "the id column"
            continue
        kind, why = column_kind(values, None if test is None else test[col], max_card, len(train))
        if kind == "left out":
            types.left_out[col] = why
        else:
            getattr(types, {"categorical": "categorical", "continuous": "continuous", "date": "dates"}[kind]).append(col)
            types.reasons[col] = why
    if not (types.categorical or types.continuous or types.dates):
        raise HarnessError(f"{source}: no feature columns left ({'; '.join(f'{c}: {w}' for c, w in types.left_out.items())}); "
                           "list columns under data.categorical or data.continuous")
    return types


def column_kind(values: pd.Series, test_values: pd.Series | None, max_card: int, n_rows: int) -> tuple[str, str]:
    """("categorical" | "continuous" | "date" | "left out", why) for one column."""
    distinct = values.nunique(dropna=True)
    if distinct <= 1:
        return "left out", "a single value (nothing to learn from)"
    if pd.api.types.is_bool_dtype(values):
        return "categorical", "true/false"
    if not pd.api.types.is_numeric_dtype(values):
        if looks_like_dates(values):
            return "date", "text that parses as dates"
        if distinct > 0.5 * n_rows:
            return "left out", f"free text: {distinct} distinct values in {n_rows} rows"
        return "categorical", f"text, {distinct} distinct values"
    numbers = values.dropna().to_numpy(dtype=np.float64)
    if not np.all(numbers == np.round(numbers)):
        return "continuous", "fractional numbers"
    if distinct <= max_card:
        return "categorical", f"whole numbers, {distinct} distinct (≤ data.max_card = {max_card})"
    spread = (numbers.max() - numbers.min() + 1) / distinct
    if spread > 10 and test_values is not None:
        seen = float(test_values.dropna().isin(values.unique()).mean()) if test_values.notna().any() else 0.0
        if seen >= 0.9:
            return "categorical", (f"codes: {distinct} sparse whole numbers, {seen:.0%} of test values seen in train")
    return "continuous", f"whole numbers, {distinct} distinct"
