"""The shared trainer: one Learner for every competition, extended by callbacks."""
from harness.train.callbacks import Callback, CancelFit
from harness.train.learner import Learner
from harness.train.rng import seed_everything

__all__ = ["Callback", "CancelFit", "Learner", "seed_everything"]
