"""Competition kinds: generic competitions that a TOML file configures whole, with no Python.

A TOML with a top-level ``kind`` key is a competition on its own (``harness new`` writes one); the
kind names the class that reads it. A plugin can still subclass a kind to add code (Rossmann adds its
feature engineering) and ship a TOML without ``kind``, which only its plugin registers.
"""
from __future__ import annotations

import importlib
import tomllib
from pathlib import Path

from harness.errors import HarnessError

# kind -> "module:class"; imported only when a competition of that kind is made (torch stays unloaded).
KINDS = {
    "tabular": "harness.kinds.tabular:TabularCompetition",
    "image-classification": "harness.kinds.image:ImageClassification",
    "text-classification": "harness.kinds.text:TextClassification",
}


def kind_class(kind: str, source="config"):
    """The Competition subclass of ``kind``."""
    if kind not in KINDS:
        raise HarnessError(f"{source}: kind = {kind!r} is not a competition kind; use one of {', '.join(KINDS)}")
    module_name, class_name = KINDS[kind].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def read_toml(path: Path) -> dict:
    """A TOML file as a dict, or a HarnessError naming the file."""
    try:
        return tomllib.loads(Path(path).read_text())
    except tomllib.TOMLDecodeError as exc:
        raise HarnessError(f"{path} is not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise HarnessError(f"{path} cannot be read ({exc})") from None


def competition_from_toml(path) -> object:
    """The competition a TOML with a top-level ``kind`` describes."""
    path = Path(path)
    top = read_toml(path)
    if "kind" not in top:
        raise HarnessError(f"{path} has no top-level kind = \"...\"; use one of {', '.join(KINDS)}")
    return kind_class(top["kind"], source=str(path))(config_path=path)
