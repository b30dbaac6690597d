"""Reading competition files with checks that name the file and column at fault."""
from __future__ import annotations

import gzip
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from harness.errors import HarnessError


def plain(value):
    """A cell as a message shows it: Python scalars (no ``np.int64(1)``), dates as YYYY-MM-DD, long text cut."""
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d") if value == value.normalize() else value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, str) and len(value) > 60:  # a binary file read as text: show its start, not a screenful
        return value[:57] + "..."
    return value


def first_key(frame: pd.DataFrame, columns, mask) -> str:
    """``(Store=1, Date=2015-01-01)``: the key columns of the first row where ``mask`` is true, each
    in its own type (a row taken whole would turn ints into floats beside a float column)."""
    position = int(np.flatnonzero(np.asarray(mask))[0])
    return "(" + ", ".join(f"{c}={plain(frame[c].iloc[position])}" for c in columns) + ")"


# What a truncated or corrupt .gz/.zip raises while it is read (EOFError: a .gz cut short).
DAMAGED_ARCHIVE = (EOFError, gzip.BadGzipFile, zlib.error, zipfile.BadZipFile)


def damaged(path, exc: BaseException) -> HarnessError:
    """The error for a compressed file that cannot be read to its end."""
    detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return HarnessError(f"{path} is truncated or damaged ({detail}); download or copy it again")


# The first bytes of files that are no text table but end up under a table's name (a download saved
# under the wrong name, an image or archive copied in its place), and what they are.
SIGNATURES = (
    (b"\x1f\x8b", "gzip-compressed data"),
    (b"PK\x03\x04", "a zip archive"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"%PDF-", "a PDF document"),
)
UTF16_MARKS = (b"\xff\xfe", b"\xfe\xff")  # byte-order marks: text, but two bytes a character
ARCHIVES = ("gzip-compressed data", "a zip archive")
# Control bytes that text holds (tab, line ends, form feed); any other, or a NUL, is rare in text and
# common in binary data (about one byte in ten).
TEXT_CONTROLS = frozenset(b"\t\n\r\f")
HEAD_BYTES = 8192


def head_of(path: Path) -> bytes:
    """The first bytes of a table's text (inside a .gz or a one-file .zip); b"" when they cannot be read,
    which reading it as a table then reports."""
    name = path.name.lower()
    try:
        if name.endswith(".gz"):
            with gzip.open(path) as f:
                return f.read(HEAD_BYTES)
        if name.endswith(".zip"):
            with zipfile.ZipFile(path) as archive:
                members = [m for m in archive.infolist() if not m.is_dir()]
                if len(members) != 1:
                    return b""
                with archive.open(members[0]) as f:
                    return f.read(HEAD_BYTES)
        with open(path, "rb") as f:
            return f.read(HEAD_BYTES)
    except (OSError, *DAMAGED_ARCHIVE):
        return b""


def check_text(path: Path) -> None:
    """A HarnessError if the table at ``path`` holds no text: a known file type by its first bytes, or
    binary data (NUL bytes, or more than 5% control bytes). Else pandas would answer with its tokenizer's
    or codec's message ("Expected 1 fields in line 5, saw 4"), which names neither what is wrong nor the fix."""
    head = head_of(path)
    if head.startswith(UTF16_MARKS):
        raise HarnessError(f"{path} is UTF-16 text; save it as UTF-8")
    what = next((kind for magic, kind in SIGNATURES if head.startswith(magic)), None)
    controls = sum(byte < 32 and byte not in TEXT_CONTROLS for byte in head)
    if what is None and (b"\x00" in head or controls > 0.05 * len(head)):
        what = "binary data"
    if what is None:
        return
    table = "TSV" if ".tsv" in path.name.lower() else "CSV"
    fix = "decompress it" if what in ARCHIVES else f"put the competition's {table} file in its place"
    raise HarnessError(f"{path} is not a {table} text file: it holds {what}; {fix}")


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


def read_frame(path: Path, **read_kwargs) -> pd.DataFrame:
    """A table by its name: Parquet, TSV, else CSV (each also inside .gz or a one-file .zip, as Kaggle ships them)."""
    name = path.name.lower()
    if name.endswith(".parquet"):
        try:
            return pd.read_parquet(path)
        except ImportError:
            raise HarnessError(f"{path}: reading Parquet needs pyarrow; pip install 'harness[parquet]'") from None
        except Exception as exc:  # pyarrow's own error types for a damaged file
            raise HarnessError(f"{path} could not be read as Parquet: {str(exc).splitlines()[0]}") from None
    if any(name.endswith(ext) for ext in (".tsv", ".tsv.gz", ".tsv.zip")):
        read_kwargs.setdefault("sep", "\t")
    return pd.read_csv(path, **read_kwargs)


def read_table(path, required=(), numeric=(), integer=(), optional_numeric=(), columns=None,
               **read_kwargs) -> pd.DataFrame:
    """Read a CSV-like file; every failure is a HarnessError naming the file (and column).

    ``required`` columns must exist; ``numeric`` ones must parse as numbers (no blanks); ``integer``
    ones must also be whole numbers; ``optional_numeric`` ones may be blank (NaN) but hold numbers
    otherwise. ``columns`` names the columns of a file without a header line (``header=None``); a
    file with another number of columns is an error (pandas would shift or fill them silently).
    """
    path = check_file(path)
    if not path.name.lower().endswith(".parquet"):
        check_text(path)
    try:
        frame = read_frame(path, **read_kwargs)
    except pd.errors.EmptyDataError:
        raise HarnessError(f"{path} is empty") from None
    except DAMAGED_ARCHIVE as exc:
        raise damaged(path, exc) from None
    except UnicodeDecodeError as exc:  # binary data without NULs, or text in another encoding
        raise HarnessError(f"{path} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} is not UTF-8); save it as "
                           "UTF-8, or put the competition's file in its place") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise HarnessError(f"{path} could not be parsed: {str(exc).splitlines()[0]}") from None
    if frame.empty:
        raise HarnessError(f"{path} has no data rows")
    if columns is not None:
        if frame.shape[1] != len(columns):
            raise HarnessError(f"{path} has {frame.shape[1]} column(s) per line; its format has {len(columns)}: "
                               f"{', '.join(columns)}")
        frame.columns = list(columns)
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
                               f"first {plain(frame[col].iloc[row])!r} at data row {row + 1}")
        fraction = (values % 1 != 0).to_numpy() if col in integer else None
        if fraction is not None and fraction.any():
            row = int(fraction.argmax())
            raise HarnessError(f"{path}: column {col} must hold whole numbers (ids); "
                               f"first {plain(frame[col].iloc[row])!r} at data row {row + 1}")
        frame[col] = values.astype("int64") if col in integer else values
    for col in optional_numeric:
        values = pd.to_numeric(frame[col], errors="coerce")
        bad = values.isna() & frame[col].notna()
        if bad.any():
            row = int(bad.to_numpy().argmax())
            raise HarnessError(f"{path}: column {col} has {int(bad.sum())} non-numeric value(s), "
                               f"first {plain(frame[col].iloc[row])!r} at data row {row + 1}")
        frame[col] = values
    return frame


def check_no_duplicates(frame: pd.DataFrame, columns: list[str], path) -> None:
    dup = frame.duplicated(subset=columns)
    if dup.any():
        first = first_key(frame, columns, dup)
        raise HarnessError(f"{path}: {int(dup.sum())} duplicated ({', '.join(columns)}) row(s), first {first}; "
                           "keep one row per key")


def check_values(frame: pd.DataFrame, column: str, path, lo=None, hi=None, allowed=None, blank_ok: bool = False,
                 hint: str = "") -> None:
    """Every value of a numeric ``column`` finite and within [lo, hi] (or one of ``allowed``); blanks
    only with ``blank_ok``. Otherwise a HarnessError naming the file, the column, the count, and the
    first bad value and its data row; ``hint`` says what the values mean or what to do."""
    raw = frame[column]
    values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
    ok = np.isfinite(values)
    if lo is not None:
        ok &= values >= lo
    if hi is not None:
        ok &= values <= hi
    if allowed is not None:
        ok &= np.isin(values, list(allowed))
    if blank_ok:
        ok |= raw.isna().to_numpy()
    if ok.all():
        return
    if allowed is not None:
        rule = "other than " + " or ".join(f"{plain(v)}" for v in allowed)
    elif lo is not None and hi is not None:
        rule = f"outside [{plain(lo)}, {plain(hi)}]"
    elif lo is not None:
        rule = "negative" if lo == 0 else f"below {plain(lo)}"
    elif hi is not None:
        rule = f"above {plain(hi)}"
    else:
        rule = "not finite"
    if allowed is None and rule != "not finite":
        rule += " or infinite" if blank_ok else ", infinite or empty"
    bad = ~ok
    row = int(bad.argmax())
    raise HarnessError(f"{path}: column {column} has {int(bad.sum())} value(s) {rule}, first "
                       f"{plain(raw.iloc[row])!r} at data row {row + 1}" + (f"; {hint}" if hint else ""))
