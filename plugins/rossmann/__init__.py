"""Rossmann store sales (tabular, entity embeddings): competition.py (split, model, submission),
features.py (the Kaggle files, their checked joins and the lesson's features), sample.py (generated
data in Kaggle's formats)."""
from harness_plugins.rossmann.competition import Rossmann, register_competitions

__all__ = ["Rossmann", "register_competitions"]
