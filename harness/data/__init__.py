"""Shared data pieces: in-memory batching, splits, preprocessing."""
