"""IMDB sentiment (text), a thin layer over the text-classification kind (harness.kinds.text):
competition.py (the competition), data.py (its three layouts as the kind's sources), sample.py
(generated reviews in each layout)."""
from harness_plugins.imdb.competition import Imdb, register_competitions

__all__ = ["Imdb", "register_competitions"]
