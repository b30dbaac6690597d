"""The lesson's ``proc_df`` as a fitted, reusable preprocessor for tabular data.

Fitted on the training rows only, then applied unchanged to validation and test rows:

- categorical columns become integer codes 1..n in sorted order of the training values; 0 is kept
  for a missing value and for a category never seen in training (its embedding row learns "unknown");
- continuous columns: a missing value becomes the training median, and a ``<col>_na`` column (0/1)
  flags it, for every column that had missing values in training; then either (x - mean) / std with
  the training statistics (``scaling="standard"``, the lesson's), or the value's quantile among the
  training values mapped to a standard normal (``"quantile"``, the "rank-gauss" of tabular Kaggle
  entries, as scikit-learn's QuantileTransformer): skewed columns and outliers then reach the network
  on one bounded scale; everything float32.

The fitted state is a plain dict of lists and numbers, so it is saved as JSON with the run.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.data.files import check_no_duplicates, first_key
from harness.errors import HarnessError


@dataclass
class TabularArrays:
    cats: np.ndarray  # (n, n_cat) int64 codes, 0 = missing or unseen
    conts: np.ndarray  # (n, n_cont) float32, normalised, then the 0/1 `_na` flags


def _as_keys(values: pd.Series, numeric: bool) -> np.ndarray:
    """Comparable category keys: floats for numeric columns (so 2013 == 2013.0), else strings;
    missing values stay NaN/None."""
    if numeric:
        if pd.api.types.is_bool_dtype(values):
            values = values.astype("float64")
        return pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")
    if pd.api.types.is_string_dtype(values) and not pd.api.types.is_object_dtype(values):
        return values.to_numpy(dtype=object, na_value=None)  # already strings: no per-value conversion
    return values.where(values.isna(), values.astype(str)).to_numpy(dtype=object)


def _check_columns(frame: pd.DataFrame, columns, source: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise HarnessError(f"{source}: missing column(s) {', '.join(missing)} that the preprocessing needs")


SCALINGS = ("standard", "quantile")
N_QUANTILES = 1000  # QuantileTransformer's default: finer steps change nothing a network can use
QUANTILE_BOUND = 1e-7  # a value beyond every training value maps to this quantile's normal score, about ±5.2


def fit_tabular(frame: pd.DataFrame, cat_cols, cont_cols, source: str = "training data", rows=None,
                scaling: str = "standard", trends=()) -> dict:
    """Learn category codes, medians and normalisation statistics from the training rows:
    all of ``frame``, or those where the boolean array ``rows`` is true (saves copying a big frame).
    ``scaling``: how continuous columns are normalised (see the module's docstring). ``trends``: columns
    that stay on the standard scaling whatever ``scaling`` says, such as a date's elapsed days, whose later
    rows all lie past the training values, where quantiles would give every one of them the same score."""
    if scaling not in SCALINGS:
        raise HarnessError(f"continuous scaling {scaling!r}: use one of {', '.join(SCALINGS)}")
    _check_columns(frame, [*cat_cols, *cont_cols], source)
    pick = (lambda a: a) if rows is None else (lambda a: a[np.asarray(rows, dtype=bool)])
    cats = {}
    for col in cat_cols:
        numeric = pd.api.types.is_numeric_dtype(frame[col]) or pd.api.types.is_bool_dtype(frame[col])
        keys = pd.Series(pick(_as_keys(frame[col], numeric)))
        levels = pd.Index(keys.dropna().unique()).sort_values()
        cats[col] = {"numeric": bool(numeric), "levels": [float(v) if numeric else str(v) for v in levels]}
    conts = {}
    for col in cont_cols:
        values = pick(pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=np.float64))
        missing = np.isnan(values)
        if missing.all():
            raise HarnessError(f"{source}: continuous column {col} has no numeric value at all")
        median = float(np.median(values[~missing]))
        filled = np.where(missing, median, values)
        std = float(filled.std())
        conts[col] = {"median": median, "na": bool(missing.any()), "mean": float(filled.mean()),
                      "std": std if std > 0 else 1.0}
        if scaling == "quantile" and col not in trends:
            levels = np.linspace(0, 1, min(N_QUANTILES, len(filled)))
            conts[col]["quantiles"] = [float(q) for q in np.quantile(filled, levels)]
    return {"cat_cols": list(cat_cols), "cont_cols": list(cont_cols), "cats": cats, "conts": conts}


def cardinalities(state: dict) -> list[int]:
    """Embedding table sizes: the training levels plus row 0 for missing/unseen."""
    return [len(state["cats"][c]["levels"]) + 1 for c in state["cat_cols"]]


def cont_names(state: dict) -> list[str]:
    """Column names of the continuous block: the columns, then their `_na` flags."""
    return [*state["cont_cols"], *[f"{c}_na" for c in state["cont_cols"] if state["conts"][c]["na"]]]


def transform_tabular(frame: pd.DataFrame, state: dict, source: str = "data") -> TabularArrays:
    """Apply a fitted state to any rows (training, validation or test) exactly as fitted."""
    _check_columns(frame, [*state["cat_cols"], *state["cont_cols"]], source)
    n = len(frame)
    cats = np.zeros((n, len(state["cat_cols"])), dtype=np.int64)
    for j, col in enumerate(state["cat_cols"]):
        spec = state["cats"][col]
        keys = _as_keys(frame[col], spec["numeric"])
        levels = pd.Index(spec["levels"], dtype="float64" if spec["numeric"] else object)
        # get_indexer gives -1 for unseen values and NaN: +1 maps those to the reserved code 0.
        cats[:, j] = levels.get_indexer(keys) + 1
    flagged = [c for c in state["cont_cols"] if state["conts"][c]["na"]]
    conts = np.empty((n, len(state["cont_cols"]) + len(flagged)), dtype=np.float32)
    for j, col in enumerate(state["cont_cols"]):
        spec = state["conts"][col]
        values = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=np.float64)
        missing = np.isnan(values)
        filled = np.where(missing, spec["median"], values)
        if "quantiles" in spec:  # states saved before quantile scaling existed have none: standard
            conts[:, j] = normal_scores(filled, np.asarray(spec["quantiles"]))
        else:
            conts[:, j] = (filled - spec["mean"]) / spec["std"]
        if spec["na"]:
            conts[:, len(state["cont_cols"]) + flagged.index(col)] = missing
    return TabularArrays(cats, conts)


def normal_scores(values: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    """Each value's quantile among the training values (``quantiles`` at evenly spaced levels), as a
    standard normal score. Interpolating up and down and averaging gives a run of tied training values
    (a capped or 0/1 column) its middle quantile, as QuantileTransformer does."""
    from scipy.special import ndtri  # the inverse of the normal CDF

    levels = np.linspace(0, 1, len(quantiles))
    up = np.interp(values, quantiles, levels)
    down = -np.interp(-values, -quantiles[::-1], -levels[::-1])
    return ndtri(np.clip((up + down) / 2, QUANTILE_BOUND, 1 - QUANTILE_BOUND))


# ---------------------------------------------------------------------- embedding sizes
EMBEDDING_RULES = ("lesson", "fastai")


def embedding_width(cardinality: int, rule: str = "lesson") -> int:
    """The lesson's ``min(50, (card + 1) // 2)``, or fastai's newer ``min(600, round(1.6 * card**0.56))``."""
    if rule == "lesson":
        return max(1, min(50, (cardinality + 1) // 2))
    if rule == "fastai":
        return max(1, min(600, round(1.6 * cardinality ** 0.56)))
    raise HarnessError(f"embedding rule {rule!r}: use one of {', '.join(EMBEDDING_RULES)}")


def embedding_sizes(state: dict, rule: str = "lesson", overrides: dict | None = None,
                    multiplier: float = 1.0) -> list[tuple[int, int]]:
    """(cardinality, width) per categorical column: the rule's width times ``multiplier``
    (at least 1), unless ``overrides`` names the column's width."""
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(state["cat_cols"]))
    if unknown:
        raise HarnessError(f"embedding width override(s) for {', '.join(unknown)}: not categorical columns; "
                           f"categorical columns are {', '.join(state['cat_cols'])}")
    sizes = []
    for col, card in zip(state["cat_cols"], cardinalities(state)):
        if col in overrides:
            width = int(overrides[col])
            if width < 1:
                raise HarnessError(f"embedding width override {col} = {width}: must be at least 1")
        else:
            width = max(1, round(embedding_width(card, rule) * multiplier))
        sizes.append((card, width))
    return sizes


# ---------------------------------------------------------------------- checked joins
def join_checked(left: pd.DataFrame, right: pd.DataFrame, on, right_name: str, left_name: str = "rows") -> pd.DataFrame:
    """``left`` left-joined with ``right`` on ``on``, or a HarnessError if the join would lose or
    duplicate rows: every left row must find exactly one right row."""
    on = [on] if isinstance(on, str) else list(on)
    check_no_duplicates(right, on, right_name)  # a duplicated key would duplicate left rows
    clash = sorted((set(right.columns) & set(left.columns)) - set(on))
    if clash:
        raise HarnessError(f"joining {right_name} on ({', '.join(on)}) would duplicate column(s) {', '.join(clash)}, "
                           f"which {left_name} has too; add them to the join's on, or remove them from one of the files")
    # Look every left key up in the right keys (a hash join), then take the right rows in that order.
    if len(on) == 1:
        indexer = pd.Index(right[on[0]]).get_indexer(left[on[0]])
    else:
        indexer = pd.MultiIndex.from_frame(right[on]).get_indexer(pd.MultiIndex.from_frame(left[on]))
    lost = indexer < 0
    if lost.any():
        first = first_key(left, on, lost)
        raise HarnessError(f"{int(lost.sum())} of {len(left)} {left_name} have no match in {right_name} on "
                           f"({', '.join(on)}), first {first}; add the missing rows to {right_name}")
    added = right.drop(columns=on).iloc[indexer].set_axis(left.index)
    return pd.concat([left, added], axis=1)
