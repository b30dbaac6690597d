"""Shared model pieces."""
