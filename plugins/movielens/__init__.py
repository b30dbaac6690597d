"""MovieLens ratings (collaborative filtering): competition.py says what is special about it (files,
splits, the dot-product and neural models), sample.py writes generated data in its layout, explain.py
prints and plots what a trained model learned."""
from harness_plugins.movielens.competition import MovieLens, MovieLensData, register_competitions

__all__ = ["MovieLens", "MovieLensData", "register_competitions"]
