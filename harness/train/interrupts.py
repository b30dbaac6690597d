"""An exception that a signal handler could not raise where it landed, kept until code that may be cut asks
for it.

A budget's alarm (harness.auto.session) must not raise inside LightGBM's handle juggling (a double free), and a
signal is almost always handled right after a C call returns, i.e. inside LightGBM's own Python code. So the
handler defers its exception here, and training loops raise it at their next safe point (LightGBM's per-round
callback, between rounds), instead of waiting for a ring to land outside LightGBM by chance.
"""
from __future__ import annotations

_deferred: list[BaseException] = []


def defer(exc: BaseException) -> None:
    """Keep ``exc`` for the next safe point (replacing one kept before)."""
    _deferred[:] = [exc]


def raise_deferred() -> None:
    """Raise the kept exception, if any (once)."""
    if _deferred:
        raise _deferred.pop()


def clear() -> None:
    """Forget a kept exception (its block has ended)."""
    _deferred.clear()
