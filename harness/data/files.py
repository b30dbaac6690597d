"""Reading competition files with checks that name the file and column at fault."""
from __future__ import annotations

import gzip
import zipfile
import zlib
from pathlib import Path

import pandas as pd

from harness.errors import HarnessError


# What a truncated or corrupt .gz/.zip raises while it is read (EOFError: a .gz cut short).
DAMAGED_ARCHIVE = (EOFError, gzip.BadGzipFile, zlib.error, zipfile.BadZipFile)


def damaged(path, exc: BaseException) -> HarnessError:
    """The error for a compressed file that cannot be read to its end."""
    detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return HarnessError(f"{path} is truncated or damaged ({detail}); download or copy it again")


def check_file(path, what: str = "file") -> Path:
    """``path`` as a Path if it is a non-empty regular file, else a HarnessError that says what it is."""
    path = Path(path)
    if not path.exists():
        raise HarnessError(f"{path} is missing")
    if path.is_dir():
        raise HarnessError(f"{path} is a directory; the competition expects a {what} there")
    if not path.is_file():
        raise HarnessError(f"{path} is not a regular {what}")
    if path.stat().st_size == 0:
        raise HarnessError(f"{path} is empty")
    return path


def read_table(path, required=(), numeric=(), integer=(), optional_numeric=(), **read_kwargs) -> pd.DataFrame:
    """Read a CSV-like file; every failure is a HarnessError naming the file (and column).

    ``required`` columns must exist; ``numeric`` ones must parse as numbers (no blanks); ``integer``
    ones must also be whole numbers; ``optional_numeric`` ones may be blank (NaN) but hold numbers
    otherwise.
    """
    path = check_file(path)
    try:
        frame = pd.read_csv(path, **read_kwargs)
    except pd.errors.EmptyDataError:
        raise HarnessError(f"{path} is empty") from None
    except DAMAGED_ARCHIVE as exc:
        raise damaged(path, exc) from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise HarnessError(f"{path} could not be parsed: {str(exc).splitlines()[0]}") from None
    if frame.empty:
        raise HarnessError(f"{path} has no data rows")
    # Columns that must be numbers must be there too.
    missing = [c for c in dict.fromkeys([*required, *numeric, *integer, *optional_numeric]) if c not in frame.columns]
    if missing:
        raise HarnessError(f"{path} is missing column(s) {', '.join(missing)}; found: {', '.join(map(str, frame.columns))}")
    for col in [*numeric, *integer]:
        values = pd.to_numeric(frame[col], errors="coerce")
        bad = values.isna()
        if bad.any():
            row = int(bad.idxmax())
            raise HarnessError(f"{path}: column {col} has {int(bad.sum())} non-numeric or empty value(s), "
                               f"first {frame[col].iloc[row]!r} at data row {row + 1}")
        if col in integer and (values % 1 != 0).any():
            raise HarnessError(f"{path}: column {col} must hold whole numbers (ids)")
        frame[col] = values.astype("int64") if col in integer else values
    for col in optional_numeric:
        values = pd.to_numeric(frame[col], errors="coerce")
        bad = values.isna() & frame[col].notna()
        if bad.any():
            row = int(bad.to_numpy().argmax())
            raise HarnessError(f"{path}: column {col} has {int(bad.sum())} non-numeric value(s), "
                               f"first {frame[col].iloc[row]!r} at data row {row + 1}")
        frame[col] = values
    return frame


def check_no_duplicates(frame: pd.DataFrame, columns: list[str], path) -> None:
    dup = frame.duplicated(subset=columns)
    if dup.any():
        first = frame.loc[dup, columns].iloc[0].to_dict()
        raise HarnessError(f"{path}: {int(dup.sum())} duplicated ({', '.join(columns)}) row(s), first {first}; "
                           "keep one row per key")
