"""The readers of the text-classification kind: texts and their labels, from a CSV/TSV or folders per label.

- ``"csv"``: a CSV or TSV file (.gz and .zip read as they come; a glob such as ``train-*.csv.gz`` reads
  every part, in name order) with a text column, a label column and an id column. The test file has
  the text and id columns, and the label column too where its answers are known (they are then scored
  as the run's test_metrics). A TSV is read one row per line with no quoting rules; fields wrapped in
  quotes, with ``\\"`` inside (as Kaggle writes its TSVs), are unwrapped.
- ``"folders"``: ``train/<label>/*.txt``, one text per file, its id the file name's stem; ``test/*.txt``,
  or ``test/<label>/*.txt`` for a labelled test set.

Either layout may add unlabelled texts (``unsup``: a file or glob in the csv layout, a folder of .txt
files in the folders layout) that only the language model reads. Labels become codes 0..K-1 in the
order of the classes (declared, else sorted); test labels are -1 where unknown.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import click
import pandas as pd

from harness.data.files import plain, read_table
from harness.errors import HarnessError

LAYOUTS = ("csv", "folders")
EMPTY_TEXTS = ("skip", "error")
# What ``train = ""`` / ``test = ""`` look for in the csv layout, in this order.
CSV_SUFFIXES = (".csv", ".tsv", ".csv.gz", ".tsv.gz", ".csv.zip", ".tsv.zip")


@dataclass
class TextSource:
    """Where the texts are and how to read them. The names are relative to ``root``."""

    layout: str  # "csv" | "folders"
    root: Path
    train: str  # csv: a file or a glob of parts; folders: the folder of class folders
    test: str = ""  # "" = no test set
    unsup: str = ""  # "" = no unlabelled texts
    text: str = "text"  # csv: the columns
    label: str = "label"
    id: str | tuple[str, ...] = "id"  # "" = row numbers; several columns are joined with "_"
    classes: dict | None = None  # label value (csv) or folder name -> code; None: the sorted values
    noun: str = "text"  # what messages call one text ("review")
    empty_texts: str = "skip"  # blank training texts: skipped with a count, or an error
    name: str = ""  # the layout's name saved with a run ("aclImdb"); "" = ``layout``
    keys: bool = False  # the names come from [data]: messages then say which key to set


@dataclass
class TextData:
    train: pd.DataFrame  # id, text, label (the class code)
    test: pd.DataFrame | None  # id, text, label (-1 where unknown)
    unsup: list[str]  # unlabelled texts: language-model text only
    layout: str
    data_dir: Path
    classes: list[str] = field(default_factory=list)  # the class of each code
    warnings: list[str] = field(default_factory=list)
    sample: pd.DataFrame | None = None  # the sample submission, where the competition has one
    submission: object = None  # how the competition's submission looks (harness.kinds.text.SubmissionFormat)


def class_codes(classes) -> dict | None:
    """Declared classes (a list, as [data] gives them) as value -> code; None when none are declared."""
    if not classes:
        return None
    names = [str(c) for c in classes]
    if len(set(names)) != len(names):
        raise HarnessError(f"data.classes = {list(classes)} names a class twice; list each class once")
    return {name: i for i, name in enumerate(names)}


def names_by_code(codes: dict) -> list[str]:
    """The classes in code order."""
    return sorted(codes, key=codes.get)


def source_from_config(data_dir, data: dict, noun: str = "text") -> TextSource:
    """The source a [data] section describes, with the layout and file names it leaves out inferred."""
    root = Path(data_dir)
    if not root.is_dir():
        raise HarnessError(f"{root} does not exist or is not a folder; put the competition's files there "
                           "(`harness data NAME --from DIR`) or pass --data-dir")
    layout = data.get("layout", "")
    if layout not in ("", *LAYOUTS):
        raise HarnessError(f"data.layout = {layout!r}: use \"csv\" or \"folders\" (or \"\" to infer it from the files)")
    if not layout:
        layout = "folders" if (root / (data.get("train") or "train")).is_dir() else "csv"
    if layout == "folders":
        train = data.get("train") or "train"
        test = data.get("test") or ("test" if (root / "test").is_dir() else "")
    else:
        train = data.get("train") or first_file(root, "train")
        test = data.get("test") or first_file(root, "test")
    if not train:
        names = ", ".join(f"train{s}" for s in CSV_SUFFIXES)
        raise HarnessError(f"{root} holds no training {noun}s: expected one of {names} (columns "
                           f"{data.get('text', 'text')}, {data.get('label', 'label')}) or train/<label>/*.txt "
                           "folders; set data.train (and data.layout) to what the folder holds")
    empty = data.get("empty_texts", "skip")
    if empty not in EMPTY_TEXTS:
        raise HarnessError(f"data.empty_texts = {empty!r}: use \"skip\" or \"error\"")
    return TextSource(layout, root, train, test, data.get("unsup", ""), data.get("text", "text"),
                      data.get("label", "label"), data.get("id", "id"), class_codes(data.get("classes")), noun,
                      empty, keys=True)


def first_file(root: Path, stem: str) -> str:
    """The first of ``stem``.csv, .tsv, .csv.gz ... in ``root``, or ""."""
    for suffix in CSV_SUFFIXES:
        if (root / f"{stem}{suffix}").exists():
            return f"{stem}{suffix}"
    return ""


def check_source(source: TextSource) -> None:
    """The training texts are where the source says (what `harness data --from` checks before copying)."""
    if source.layout not in LAYOUTS:
        raise HarnessError(f"layout {source.layout!r} is not a text layout; use one of {', '.join(LAYOUTS)}")
    if source.layout == "folders":
        if not (source.root / source.train).is_dir():
            raise HarnessError(f"{source.root / source.train} is missing; the folders layout needs "
                               f"{source.train}/<label>/*.txt")
    else:
        parts(source, source.train)


def read(source: TextSource) -> TextData:
    """The texts of ``source``, checked: blank training texts skipped (or refused), test ids unique,
    at least two classes. Warnings are printed once, after reading."""
    check_source(source)
    data = (read_folders if source.layout == "folders" else read_csv)(source)
    data.train = drop_empty(data.train, data, source, "training")
    noun = source.noun
    if data.test is not None:
        dup = data.test["id"].duplicated()
        if dup.any():
            raise HarnessError(f"{source.root}: the test {noun}s have {int(dup.sum())} duplicated id(s), first "
                               f"{data.test['id'][dup].iloc[0]!r}; each test {noun} needs its own id")
        empty = data.test["text"].str.strip() == ""
        if empty.any():
            first_id = data.test["id"][empty].iloc[0]
            if source.empty_texts == "error":
                raise HarnessError(f"{source.root}: {int(empty.sum())} blank test {noun}(s) (first id {first_id!r}); "
                                   "fill them in, or set data.empty_texts = \"skip\" to predict them from no text")
            data.warnings.append(f"{int(empty.sum())} empty test {noun}(s) (first id {first_id!r}); "
                                 "they are predicted from no text")
    if data.train["label"].nunique() < 2:
        only = data.classes[data.train["label"].iloc[0]]
        raise HarnessError(f"{source.root}: the training {noun}s hold only one label ({only!r}); "
                           "a classifier needs at least two classes")
    for message in data.warnings:
        click.echo(f"warning: {message}", err=True)
    return data


def describe(source: TextSource) -> str:
    """Where the training texts are, as messages name it."""
    if source.layout == "folders":
        names = source.classes or {}
        return " and ".join(f"{source.train}/{c}" for c in names) if names else f"{source.train}/<label>/*.txt"
    return f"{source.train}, column {source.text}"


def drop_empty(frame: pd.DataFrame, data: TextData, source: TextSource, what: str) -> pd.DataFrame:
    noun = source.noun
    empty = frame["text"].str.strip() == ""
    if empty.any():
        first_id = frame["id"][empty].iloc[0]
        if source.empty_texts == "error" and not empty.all():
            raise HarnessError(f"{data.data_dir}: {int(empty.sum())} blank {what} {noun}(s) in {describe(source)} "
                               f"(first id {first_id!r}); fill them in, or set data.empty_texts = \"skip\"")
        data.warnings.append(f"{int(empty.sum())} empty {what} {noun}(s) skipped (first id {first_id!r})")
        frame = frame[~empty].reset_index(drop=True)
    if frame.empty:
        raise HarnessError(f"{data.data_dir}: every {what} {noun} is blank ({describe(source)}); "
                           f"the {noun}s' text is needed")
    return frame


# ---------------------------------------------------------------------- folders per label
def read_texts(paths: list[Path], bad: list[Path], noun: str) -> list[str]:
    texts = []
    for path in paths:
        if not path.is_file():
            raise HarnessError(f"{path} is {'a directory' if path.is_dir() else 'not a regular file'}; "
                               f"each {noun} must be one .txt file: move it away or replace it")
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


def text_files(folder: Path) -> list[Path]:
    """The .txt files of ``folder``, numbered names (``12_7.txt``) in number order, then the others by name."""
    def key(p: Path):
        head = p.stem.split("_")[0]
        return (0, int(head), p.name) if head.isdigit() else (1, 0, p.name)
    return sorted(folder.glob("*.txt"), key=key)


def subfolders(folder: Path, leave_out: Path | None = None) -> list[str]:
    return sorted_classes(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")
                          and (leave_out is None or p.resolve() != leave_out.resolve()))


def labelled_folders(split_dir: Path, codes: dict, source: TextSource, bad: list[Path], all_required: bool) -> pd.DataFrame:
    """The texts of ``split_dir/<class>/*.txt`` for each class (``all_required``: each folder must be there)."""
    noun, frames = source.noun, []
    for name, code in codes.items():
        folder = split_dir / name
        if folder.exists() and not folder.is_dir():
            raise HarnessError(f"{folder} is a file; the folders layout needs {split_dir.name}/{name} to be a folder "
                               f"of .txt {noun}s")
        if not folder.is_dir():
            if not all_required:
                continue
            raise HarnessError(f"{folder} is missing; the folders layout needs a folder per class in "
                               f"{split_dir.name}/: {', '.join(codes)}")
        files = text_files(folder)
        if not files:
            raise HarnessError(f"{folder} has no .txt {noun}s; put the class's {noun}s there (one per .txt file) "
                               "or remove the folder")
        frames.append(pd.DataFrame({"id": [p.stem for p in files], "text": read_texts(files, bad, noun), "label": code}))
    return pd.concat(frames, ignore_index=True)


def read_folders(source: TextSource) -> TextData:
    root, noun, bad = source.root, source.noun, []
    train_dir = root / source.train
    unsup_dir = root / source.unsup if source.unsup else None
    codes = source.classes
    if codes is None:
        names = subfolders(train_dir, unsup_dir)
        if not names:
            raise HarnessError(f"{train_dir} has no class folders; the folders layout needs {source.train}/<label>/*.txt, "
                               "a folder of .txt files per label")
        codes = {name: i for i, name in enumerate(names)}
    train = labelled_folders(train_dir, codes, source, bad, all_required=True)
    test = None
    if source.test:
        test_dir = root / source.test
        if not test_dir.is_dir():
            raise HarnessError(f"{test_dir} is {'a file' if test_dir.exists() else 'missing'}; the folders layout "
                               f"needs {source.test}/*.txt, or {source.test}/<label>/*.txt when the answers are known")
        labelled = subfolders(test_dir)
        unknown = [name for name in labelled if name not in codes]
        if unknown and source.classes is None:
            raise HarnessError(f"{test_dir / unknown[0]} is not a class of {train_dir} ({', '.join(codes)}); "
                               "a labelled test set has a folder per training class")
        if labelled:
            test = labelled_folders(test_dir, codes, source, bad, all_required=source.classes is not None)
        else:
            files = text_files(test_dir)
            if not files:
                raise HarnessError(f"{test_dir} has no .txt {noun}s ({source.test}/*.txt, or {source.test}/<label>/*.txt "
                                   "when the answers are known)")
            test = pd.DataFrame({"id": [p.stem for p in files], "text": read_texts(files, bad, noun), "label": -1})
    unsup = []
    if unsup_dir is not None:
        if not unsup_dir.is_dir():
            raise HarnessError(f"{unsup_dir} is {'a file' if unsup_dir.exists() else 'missing'}; it must be a folder of "
                               f"unlabelled .txt {noun}s (or absent)")
        unsup = [t for t in read_texts(text_files(unsup_dir), bad, noun) if t.strip()]
    data = TextData(train, test, unsup, source.name or "folders", root, names_by_code(codes))
    if bad:
        data.warnings.append(f"{len(bad)} {noun} file(s) are not valid UTF-8 (first {bad[0]}); "
                             "undecodable bytes were replaced with U+FFFD")
    return data


# ---------------------------------------------------------------------- CSV and TSV files
def parts(source: TextSource, name: str) -> list[Path]:
    """The files ``name`` stands for: one file, or every match of a glob, in name order."""
    if any(c in name for c in "*?["):
        found = sorted(source.root.glob(name))
        if not found:
            raise HarnessError(f"{source.root} has no file matching {name}")
        return found
    path = source.root / name
    if not path.exists():
        key = {source.train: "data.train", source.test: "data.test"}.get(name, "data.unsup")
        hint = f"; set {key} to the file's name" if source.keys else ""
        raise HarnessError(f"{path} is missing{hint}")
    return [path]


def unquote(series: pd.Series) -> pd.Series:
    """Fields wrapped in quotes, with inner quotes escaped as \\" (Kaggle's TSVs), unwrapped."""
    s = series.astype(str)
    quoted = s.str.startswith('"') & s.str.endswith('"') & (s.str.len() >= 2)
    s = s.where(~quoted, s.str[1:-1])
    return s.str.replace('\\"', '"', regex=False)


def id_columns(source: TextSource) -> list[str]:
    return [source.id] if isinstance(source.id, str) and source.id else list(source.id or ())


def read_part(path: Path, source: TextSource, data: TextData, split: str) -> pd.DataFrame:
    """One file's id, text and (raw, unchecked) label columns; ``split``: "train", "test" or "unsup"."""
    tsv = ".tsv" in path.name.lower()
    options = {"sep": "\t", "quoting": csv.QUOTE_NONE} if tsv else {}
    frame = read_table(path, dtype=str, keep_default_na=False, encoding="utf-8", encoding_errors="replace", **options)
    ids = id_columns(source)
    needed = {source.text: "data.text"}
    if split == "train":
        needed[source.label] = "data.label"
    if split == "test":
        needed.update({c: "data.id" for c in ids})
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        hint = f"; set {needed[missing[0]]} to the column that holds them" if source.keys else ""
        raise HarnessError(f"{path} is missing column(s) {', '.join(missing)}; found: "
                           f"{', '.join(map(str, frame.columns))}{hint}")
    used = [c for c in dict.fromkeys([*ids, source.text, source.label]) if c in frame.columns]
    if tsv:
        for col in used:
            frame[col] = unquote(frame[col])
    out = pd.DataFrame({"text": frame[source.text]})
    if ids and all(c in frame.columns for c in ids):
        joined = frame[ids[0]].astype(str)
        for col in ids[1:]:
            joined = joined + "_" + frame[col].astype(str)
        out.insert(0, "id", joined)
    broken = out["text"].str.contains("\ufffd", regex=False)
    if broken.any():
        where = f" (first id {out['id'][broken].iloc[0]!r})" if "id" in out else ""
        data.warnings.append(f"{path}: {int(broken.sum())} {source.noun}(s) hold bytes that are not valid UTF-8{where}; "
                             "they were replaced with U+FFFD")
    if split == "test" and ids:
        blank = out["id"].str.strip() == ""
        if blank.any():
            raise HarnessError(f"{path}: column {', '.join(ids)} is blank at data row {int(blank.idxmax()) + 1} "
                               f"({int(blank.sum())} blank id(s)); every test {source.noun} needs the id its "
                               "submission row is scored by")
    if split != "unsup" and source.label in frame.columns:
        out["label"] = frame[source.label].str.strip()
        check_labels(out["label"], path, source)
    return out


def check_labels(labels: pd.Series, path: Path, source: TextSource) -> None:
    """Every label one of the declared classes (or, with none declared, not blank)."""
    codes = source.classes
    bad = ~labels.isin(list(codes)) if codes is not None else labels == ""
    if bad.any():
        row = int(bad.to_numpy().argmax())
        if codes is None:
            rule = "must not be blank"
        else:
            rule = "must be " + (" or ".join(codes) if len(codes) <= 2 else "one of " + ", ".join(codes))
        raise HarnessError(f"{path}: column {source.label} {rule}; found {plain(labels.iloc[row])!r} "
                           f"at data row {row + 1} ({int(bad.sum())} bad value(s))")


def sorted_classes(values) -> list[str]:
    """Label values in order: as numbers when every one is a number (2 before 10), else as text."""
    values = sorted(set(values))
    try:
        return sorted(values, key=float)
    except ValueError:
        return values


def read_csv(source: TextSource) -> TextData:
    data = TextData(pd.DataFrame(), None, [], source.name or "csv", source.root)
    train = pd.concat([read_part(p, source, data, "train") for p in parts(source, source.train)], ignore_index=True)
    test = None
    test_paths = parts(source, source.test) if source.test else []
    if test_paths:
        test = pd.concat([read_part(p, source, data, "test") for p in test_paths], ignore_index=True)
        if not id_columns(source):
            test.insert(0, "id", [str(i) for i in range(len(test))])
    if "id" not in train:
        train.insert(0, "id", [str(i) for i in range(len(train))])
    codes = source.classes or {name: i for i, name in enumerate(sorted_classes(train["label"]))}
    data.classes = names_by_code(codes)
    train["label"] = train["label"].map(codes).astype(int)
    if test is not None:
        if "label" in test and test["label"].notna().all():
            unknown = ~test["label"].isin(list(codes))
            if unknown.any():
                first = test["label"][unknown].iloc[0]
                raise HarnessError(f"{source.root / source.test}: column {source.label} holds {first!r}, which no "
                                   f"training {source.noun} has (classes: {', '.join(codes)})")
            test["label"] = test["label"].map(codes).astype(int)
        else:
            test["label"] = -1
        test = test[["id", "text", "label"]]
    if source.unsup:
        unsup = pd.concat([read_part(p, source, data, "unsup") for p in parts(source, source.unsup)], ignore_index=True)
        data.unsup = [t for t in unsup["text"].tolist() if t.strip()]
    data.train, data.test = train[["id", "text", "label"]], test
    return data
