"""Progress bars and lines printed beside them, the same way everywhere.

Bars go to stderr and only to a terminal: piped into a log file they are off, so a log never fills
with ``\\r`` frames. Lines printed while a bar is live go through tqdm's own write, so a bar is never
left half-drawn inside a table.
"""
from __future__ import annotations

import sys

import click


def stderr_is_terminal() -> bool:
    return bool(getattr(sys.stderr, "isatty", lambda: False)())


def progress_bar(iterable=None, total=None, desc: str = "", unit: str = "it", leave: bool = False,
                 disable: bool | None = None, **kwargs):
    """A tqdm bar on stderr. ``disable=None`` shows it only on a terminal; True/False force it."""
    from tqdm.auto import tqdm

    if disable is None:
        disable = not stderr_is_terminal()
    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=leave, disable=disable, file=sys.stderr,
                mininterval=0.5, dynamic_ncols=True, **kwargs)


def echo(line: str = "", err: bool = False) -> None:
    """Print one line without breaking a live progress bar."""
    from tqdm.auto import tqdm

    if getattr(tqdm, "_instances", None):
        tqdm.write(line, file=sys.stderr if err else sys.stdout)
    else:
        click.echo(line, err=err)
