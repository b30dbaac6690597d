"""Generated movie reviews in the aclImdb folder layout or Kaggle's TSV layout (demo and tests).

Each review is a few template sentences; its sentiment shows in the adjectives and verbs it uses
(mostly, not always, of its own polarity), so a classifier can learn it but not perfectly. The text
carries the things the tokenizer must handle: <br /> tags, capitals, ALL CAPS and repeated letters.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

NOUNS = ["film", "movie", "plot", "story", "acting", "cast", "script", "ending", "soundtrack", "director",
         "dialogue", "camera work", "pacing", "villain", "hero"]
POSITIVE = ["great", "wonderful", "brilliant", "excellent", "superb", "moving", "beautiful", "clever", "fun",
            "gripping", "charming", "perfect"]
NEGATIVE = ["awful", "boring", "terrible", "dull", "stupid", "poor", "weak", "bad", "lame", "pointless",
            "clumsy", "horrible"]
VERBS_POS = ["loved", "enjoyed", "adored", "admired"]
VERBS_NEG = ["hated", "disliked", "regretted", "endured"]
NAMES = ["Smith", "Costner", "Hitchcock", "Streep", "Nolan", "Kubrick"]
TEMPLATES = [
    "The {noun} was {adj}.",
    "I {verb} the {noun}.",
    "{Name} made the {noun} {adj}, and the {noun2} was {adj2}.",
    "Honestly, the {noun} is {adj}!",
    "What a {adj} {noun}.",
    "My friends {verb} it and so did I.",
    "It was {ADJ}!!!!",
    "The {noun} felt {adj}, but the {noun2} was {adj2}.",
    "Sooooo {adj}.",
    "We watched it on a Sunday afternoon.",
]


def review(rng: np.random.Generator, positive: bool, purity: float = 0.8) -> str:
    def pick_adj():
        own = rng.random() < purity
        return str(rng.choice(POSITIVE if own == positive else NEGATIVE))

    def pick_verb():
        own = rng.random() < purity
        return str(rng.choice(VERBS_POS if own == positive else VERBS_NEG))

    sentences = []
    for _ in range(int(rng.integers(3, 9))):
        template = TEMPLATES[int(rng.integers(len(TEMPLATES)))]
        adj = pick_adj()
        sentences.append(template.format(
            noun=rng.choice(NOUNS), noun2=rng.choice(NOUNS), adj=adj, adj2=pick_adj(), ADJ=adj.upper(),
            verb=pick_verb(), Name=rng.choice(NAMES)))
    text = " ".join(sentences)
    if rng.random() < 0.5:  # break it into paragraphs as IMDB's HTML did
        words = text.split(". ")
        cut = int(rng.integers(1, max(len(words), 2)))
        text = ". ".join(words[:cut]) + ".<br /><br />" + ". ".join(words[cut:])
    return text


def _rating(rng, positive: bool) -> int:
    return int(rng.integers(7, 11)) if positive else int(rng.integers(1, 5))


def write_aclimdb(data_dir: Path, seed: int = 0, n_train: int = 800, n_test: int = 200, n_unsup: int = 100) -> None:
    rng = np.random.default_rng(seed)
    root = Path(data_dir) / "aclImdb"
    for split, n in (("train", n_train), ("test", n_test)):
        for label, positive in (("pos", True), ("neg", False)):
            folder = root / split / label
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n // 2):
                (folder / f"{i}_{_rating(rng, positive)}.txt").write_text(review(rng, positive), encoding="utf-8")
    unsup = root / "train" / "unsup"
    unsup.mkdir(parents=True, exist_ok=True)
    for i in range(n_unsup):
        (unsup / f"{i}_0.txt").write_text(review(rng, bool(rng.random() < 0.5)), encoding="utf-8")


def _tsv_quote(text: str) -> str:
    return '"' + text.replace('"', '\\"') + '"'


def write_kaggle(data_dir: Path, seed: int = 0, n_train: int = 300, n_test: int = 200, n_unsup: int = 100) -> None:
    """Kaggle's "Bag of Words Meets Bags of Popcorn" files, quoted as Kaggle quotes them."""
    rng = np.random.default_rng(seed)
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()

    def new_id(positive):
        while True:
            rid = f"{int(rng.integers(1, 12500))}_{_rating(rng, positive)}"
            if rid not in used:
                used.add(rid)
                return rid

    lines = ["id\tsentiment\treview"]
    for i in range(n_train):
        positive = i % 2 == 0
        lines.append(f"{_tsv_quote(new_id(positive))}\t{int(positive)}\t{_tsv_quote(review(rng, positive))}")
    (data_dir / "labeledTrainData.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    lines = ["id\treview"]
    answers = ["id,sentiment"]
    for i in range(n_test):
        positive = bool(rng.random() < 0.5)
        rid = new_id(positive)
        lines.append(f"{_tsv_quote(rid)}\t{_tsv_quote(review(rng, positive))}")
        answers.append(f"{rid},{int(positive)}")
    (data_dir / "testData.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    lines = ["id\treview"]
    for i in range(n_unsup):
        lines.append(f"{_tsv_quote(f'{i}_0')}\t{_tsv_quote(review(rng, bool(rng.random() < 0.5)))}")
    if n_unsup:
        (data_dir / "unlabeledTrainData.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (data_dir / "sampleSubmission.csv").write_text(
        "id,sentiment\n" + "".join(f"{line.split(',')[0]},0\n" for line in answers[1:]), encoding="utf-8")
