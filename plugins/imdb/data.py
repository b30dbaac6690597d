"""IMDB's three layouts, as sources of the text-classification kind's readers (harness.kinds.text_data).

- Stanford ``aclImdb/``: the "folders" reader with the classes neg and pos: ``train/pos``,
  ``train/neg`` (and optional ``train/unsup``, unlabelled reviews), ``test/pos``, ``test/neg``; one
  review per ``<id>_<rating>.txt`` file. Test labels are known: accuracy is reported.
- Kaggle "Bag of Words Meets Bags of Popcorn": the "csv" reader on ``labeledTrainData.tsv`` (id,
  sentiment 0/1, review), ``unlabeledTrainData.tsv`` (id, review), ``testData.tsv`` (id, review).
- Gzipped CSV parts ``train-*.csv.gz`` / ``test-*.csv.gz`` with columns ``split,label,id,rating,text``
  (how the public copy in shared/data/imdb is stored): the "csv" reader on the parts, labels pos/neg.

Every review gets an id: the Kaggle id, else ``<id>_<rating>`` as in the file names.
"""
from __future__ import annotations

from pathlib import Path

from harness.errors import HarnessError
from harness.kinds.text_data import TextData, TextSource, read

LABELS = {"neg": 0, "pos": 1}
KAGGLE_FILES = ("labeledTrainData.tsv", "unlabeledTrainData.tsv", "testData.tsv")


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


def source(data_dir: Path) -> TextSource:
    """The reader settings of the layout ``data_dir`` holds; optional files only where they are."""
    layout, root = find_layout(data_dir)

    def present(name: str) -> str:
        return name if (root / name).exists() else ""

    if layout == "aclImdb":
        return TextSource("folders", root, "train", test="test" if (root / "test").is_dir() else "",
                          unsup=present("train/unsup"), classes=dict(LABELS), noun="review", name=layout)
    if layout == "kaggle":
        return TextSource("csv", root, "labeledTrainData.tsv", test=present("testData.tsv"),
                          unsup=present("unlabeledTrainData.tsv"), text="review", label="sentiment", id="id",
                          classes={"0": 0, "1": 1}, noun="review", name=layout)
    has_test = bool(sorted(root.glob("test-*.csv*")))
    return TextSource("csv", root, "train-*.csv*", test="test-*.csv*" if has_test else "", text="text", label="label",
                      id=("id", "rating"), classes={"pos": 1, "neg": 0}, noun="review", name=layout)


def load(data_dir: Path) -> TextData:
    return read(source(data_dir))
