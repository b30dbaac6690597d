"""Scoring: metrics (metrics.py) and submission checks against the sample submission (submission.py)."""
