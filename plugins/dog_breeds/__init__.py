"""Dog breed identification (images): competition.py (files, split, the precompute-then-unfreeze
recipe, TTA), sample.py (generated "breeds" in Kaggle's layout)."""
from harness_plugins.dog_breeds.competition import DogBreeds, register_competitions

__all__ = ["DogBreeds", "register_competitions"]
