"""IMDB sentiment (text): competition.py (the NB-SVM and ULMFiT routes), data.py (readers of the three
layouts), ulmfit.py (language model then classifier), sample.py (generated reviews in each layout)."""
from harness_plugins.imdb.competition import Imdb, register_competitions

__all__ = ["Imdb", "register_competitions"]
