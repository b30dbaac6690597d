"""The shared trainer: one Learner for every competition, extended by callbacks.

The names below load on first use, so that a torch-free module of this package (``boosting``) can be
imported without importing torch.
"""
import importlib

__all__ = ["Callback", "CancelFit", "Learner", "seed_everything"]
_WHERE = {"Callback": "harness.train.callbacks", "CancelFit": "harness.train.callbacks",
          "Learner": "harness.train.learner", "seed_everything": "harness.train.rng"}


def __getattr__(name):
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'harness.train' has no attribute {name!r}")
