"""harness: a plugin-based Kaggle competition harness.

The host (``harness.host.plugins``) loads competition plugins; each competition reuses the shared
data, model and training pieces in this package and says only what is special about itself.
"""
from harness.errors import HarnessError

__version__ = "0.1.0"
__all__ = ["HarnessError", "__version__"]
