"""Reading IMDB reviews in any of three layouts, with the checks the issue asks for.

- Stanford ``aclImdb/``: ``train/pos``, ``train/neg`` (and optional ``train/unsup``), ``test/pos``,
  ``test/neg``; one review per ``<id>_<rating>.txt`` file. Test labels are known: accuracy is reported.
- Kaggle "Bag of Words Meets Bags of Popcorn": ``labeledTrainData.tsv`` (id, sentiment, review),
  ``unlabeledTrainData.tsv`` (id, review), ``testData.tsv`` (id, review); submission ``id,sentiment``.
- Gzipped CSV parts ``train-*.csv.gz`` / ``test-*.csv.gz`` with columns ``split,label,id,rating,text``
  (how the public copy in shared/data/imdb is stored).

Every review gets an id: the Kaggle id, else ``<id>_<rating>`` as in the file names.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import click
import pandas as pd

from harness.data.files import read_table
from harness.errors import HarnessError

LABELS = {"neg": 0, "pos": 1}
KAGGLE_FILES = ("labeledTrainData.tsv", "unlabeledTrainData.tsv", "testData.tsv")


@dataclass
class ImdbData:
    train: pd.DataFrame  # id, text, label (0 = negative, 1 = positive)
    test: pd.DataFrame | None  # id, text, label (-1 where unknown, as in Kaggle's testData.tsv)
    unsup: list[str]  # unlabelled reviews: language-model text only
    layout: str  # "aclImdb", "kaggle" or "csv"
    data_dir: Path
    warnings: list[str] = field(default_factory=list)


def find_layout(data_dir: Path) -> tuple[str, Path]:
    data_dir = Path(data_dir)
    if (data_dir / "labeledTrainData.tsv").exists():
        return "kaggle", data_dir
    for root in (data_dir / "aclImdb", data_dir):
        if (root / "train").is_dir():
            return "aclImdb", root
    if sorted(data_dir.glob("train-*.csv*")):
        return "csv", data_dir
    raise HarnessError(f"{data_dir} holds no IMDB reviews: expected aclImdb/ (train/pos, train/neg, test/...), "
                       "Kaggle's labeledTrainData.tsv, or train-*.csv.gz parts; run `harness data imdb --sample` "
                       "or point --from/--data-dir at one of these")


def load(data_dir: Path) -> ImdbData:
    layout, root = find_layout(data_dir)
    reader = {"aclImdb": _load_aclimdb, "kaggle": _load_kaggle, "csv": _load_csv_parts}[layout]
    data = reader(root)
    data.train = _drop_empty(data.train, data, "training")
    if data.test is not None:
        dup = data.test["id"].duplicated()
        if dup.any():
            raise HarnessError(f"{root}: the test reviews have {int(dup.sum())} duplicated id(s), first "
                               f"{data.test['id'][dup].iloc[0]!r}; each test review needs its own id")
        empty = data.test["text"].str.strip() == ""
        if empty.any():
            data.warnings.append(f"{int(empty.sum())} empty test review(s) (first id {data.test['id'][empty].iloc[0]!r}); "
                                 "they are predicted from no text")
    if data.train["label"].nunique() < 2:
        raise HarnessError(f"{root}: the training reviews hold only one label; both positive and negative are needed")
    for message in data.warnings:
        click.echo(f"warning: {message}", err=True)
    return data


def _drop_empty(frame: pd.DataFrame, data: ImdbData, what: str) -> pd.DataFrame:
    empty = frame["text"].str.strip() == ""
    if empty.any():
        data.warnings.append(f"{int(empty.sum())} empty {what} review(s) skipped (first id {frame['id'][empty].iloc[0]!r})")
        frame = frame[~empty].reset_index(drop=True)
    if frame.empty:
        source = {"kaggle": "labeledTrainData.tsv, column review", "csv": "train-*.csv* parts, column text",
                  "aclImdb": "train/pos and train/neg"}[data.layout]
        raise HarnessError(f"{data.data_dir}: every {what} review is blank ({source}); the reviews' text is needed")
    return frame


# ---------------------------------------------------------------------- aclImdb folders
def _read_texts(paths: list[Path], bad: list[Path]) -> list[str]:
    texts = []
    for path in paths:
        if not path.is_file():
            raise HarnessError(f"{path} is {'a directory' if path.is_dir() else 'not a regular file'}; "
                               "each aclImdb review must be one .txt file: move it away or replace it")
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise HarnessError(f"{path} cannot be read ({exc.strerror or type(exc).__name__}); "
                               "check its permissions or copy the data again") from None
        try:
            texts.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            bad.append(path)
            texts.append(raw.decode("utf-8", errors="replace"))
    return texts


def _review_files(folder: Path) -> list[Path]:
    def key(p: Path):
        head = p.stem.split("_")[0]
        return (0, int(head), p.name) if head.isdigit() else (1, 0, p.name)
    return sorted(folder.glob("*.txt"), key=key)


def _load_aclimdb(root: Path) -> ImdbData:
    bad: list[Path] = []

    def labelled(split: str) -> pd.DataFrame:
        frames = []
        for label, value in LABELS.items():
            folder = root / split / label
            if folder.exists() and not folder.is_dir():
                raise HarnessError(f"{folder} is a file; the aclImdb layout needs {split}/{label} to be a folder "
                                   "of .txt reviews")
            if not folder.is_dir():
                raise HarnessError(f"{folder} is missing; the aclImdb layout needs {split}/pos and {split}/neg folders")
            files = _review_files(folder)
            frames.append(pd.DataFrame({"id": [p.stem for p in files], "text": _read_texts(files, bad), "label": value}))
        frame = pd.concat(frames, ignore_index=True)
        if frame.empty:
            raise HarnessError(f"{root / split} has no .txt reviews in pos/ or neg/")
        return frame

    train = labelled("train")
    test = labelled("test") if (root / "test").is_dir() else None
    unsup_dir = root / "train" / "unsup"
    if unsup_dir.exists() and not unsup_dir.is_dir():
        raise HarnessError(f"{unsup_dir} is a file; it must be a folder of unlabelled .txt reviews (or absent)")
    unsup = [t for t in _read_texts(_review_files(unsup_dir), bad) if t.strip()] if unsup_dir.is_dir() else []
    data = ImdbData(train, test, unsup, "aclImdb", root)
    if bad:
        data.warnings.append(f"{len(bad)} review file(s) are not valid UTF-8 (first {bad[0]}); "
                             "undecodable bytes were replaced with U+FFFD")
    return data


# ---------------------------------------------------------------------- Kaggle TSVs
def _unquote(series: pd.Series) -> pd.Series:
    """Kaggle's TSVs wrap ids and reviews in quotes and escape inner quotes as \\"."""
    s = series.astype(str)
    quoted = s.str.startswith('"') & s.str.endswith('"') & (s.str.len() >= 2)
    s = s.where(~quoted, s.str[1:-1])
    return s.str.replace('\\"', '"', regex=False)


def _read_tsv(path: Path, required: tuple[str, ...], data: ImdbData) -> pd.DataFrame:
    frame = read_table(path, required=required, sep="\t", quoting=csv.QUOTE_NONE, dtype=str,
                       keep_default_na=False, encoding="utf-8", encoding_errors="replace")
    for col in ("id", "review"):
        frame[col] = _unquote(frame[col])
    bad = frame["review"].str.contains("\ufffd", regex=False)
    if bad.any():
        data.warnings.append(f"{path}: {int(bad.sum())} review(s) hold bytes that are not valid UTF-8 "
                             f"(first id {frame['id'][bad].iloc[0]!r}); they were replaced with U+FFFD")
    return frame


def _load_kaggle(root: Path) -> ImdbData:
    data = ImdbData(pd.DataFrame(), None, [], "kaggle", root)
    path = root / "labeledTrainData.tsv"
    frame = _read_tsv(path, ("id", "sentiment", "review"), data)
    labels = pd.to_numeric(frame["sentiment"], errors="coerce")
    bad = ~labels.isin([0, 1])
    if bad.any():
        row = int(bad.idxmax())
        raise HarnessError(f"{path}: column sentiment must be 0 or 1; found {frame['sentiment'].iloc[row]!r} "
                           f"at data row {row + 1} ({int(bad.sum())} bad value(s))")
    data.train = pd.DataFrame({"id": frame["id"], "text": frame["review"], "label": labels.astype(int)})
    if (root / "testData.tsv").exists():
        test = _read_tsv(root / "testData.tsv", ("id", "review"), data)
        blank = test["id"].str.strip() == ""
        if blank.any():
            raise HarnessError(f"{root / 'testData.tsv'}: column id is blank at data row {int(blank.idxmax()) + 1} "
                               f"({int(blank.sum())} blank id(s)); every test review needs the id Kaggle scores it by")
        data.test = pd.DataFrame({"id": test["id"], "text": test["review"], "label": -1})
    if (root / "unlabeledTrainData.tsv").exists():
        unsup = _read_tsv(root / "unlabeledTrainData.tsv", ("id", "review"), data)
        data.unsup = [t for t in unsup["review"].tolist() if t.strip()]
    return data


# ---------------------------------------------------------------------- gzipped CSV parts
def _read_parts(root: Path, split: str, data: ImdbData) -> pd.DataFrame | None:
    parts = sorted(root.glob(f"{split}-*.csv*"))
    if not parts:
        return None
    frames = []
    for path in parts:
        frame = read_table(path, required=("label", "id", "rating", "text"), dtype={"text": str, "label": str},
                           keep_default_na=False, encoding="utf-8", encoding_errors="replace")
        bad = ~frame["label"].isin(list(LABELS))
        if bad.any():
            row = int(bad.idxmax())
            raise HarnessError(f"{path}: column label must be pos or neg; found {frame['label'].iloc[row]!r} "
                               f"at data row {row + 1} ({int(bad.sum())} bad value(s))")
        broken = frame["text"].str.contains("\ufffd", regex=False)
        if broken.any():
            data.warnings.append(f"{path}: {int(broken.sum())} review(s) hold bytes that are not valid UTF-8; "
                                 "they were replaced with U+FFFD")
        frames.append(pd.DataFrame({"id": frame["id"].astype(str) + "_" + frame["rating"].astype(str),
                                    "text": frame["text"], "label": frame["label"].map(LABELS).astype(int)}))
    return pd.concat(frames, ignore_index=True)


def _load_csv_parts(root: Path) -> ImdbData:
    data = ImdbData(pd.DataFrame(), None, [], "csv", root)
    data.train = _read_parts(root, "train", data)
    data.test = _read_parts(root, "test", data)
    return data
