"""Kaggle: data download, submission and the local leaderboard's link to the public one.

The official ``kaggle`` client is imported lazily (``harness.kaggle.client``): importing it prints an
authentication help text and creates a config folder, which `harness --help` must not do.
"""
