"""Dog breed identification (images): competition.py (the image-classification kind with dog breeds'
name and words), sample.py (generated "breeds" in Kaggle's layout)."""
from harness_plugins.dog_breeds.competition import DogBreeds, register_competitions

__all__ = ["DogBreeds", "register_competitions"]
