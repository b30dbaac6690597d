"""Competition configs: declarative TOML files with defaults a user copies and edits.

A config is a nested dict. ``--set section.key=value`` overrides one entry; the new value must
have the type of the default (an int is accepted where a float is expected).
"""
from __future__ import annotations

import copy
import hashlib
import json
import tomllib
from pathlib import Path

import tomli_w

from harness.errors import HarnessError


def load_config(path: str | Path) -> dict:
    path = Path(path)
    if not path.exists():
        raise HarnessError(f"config file {path} does not exist; copy one from competitions/ and edit it")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise HarnessError(f"config file {path} is not valid TOML: {exc}") from None


def dump_config(config: dict) -> str:
    return tomli_w.dumps(config)


def config_hash(config: dict) -> str:
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def _parse_literal(text: str):
    """Read a TOML literal (1e-3, true, [1, 2], "x"); anything else is a bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _coerce(key: str, value, default):
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
    elif isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif isinstance(default, str):
        return value if isinstance(value, str) else str(value)
    elif isinstance(default, list):
        if isinstance(value, list):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return [value]
    elif isinstance(default, dict):
        raise HarnessError(f"--set {key}: {key!r} is a section; set one of its keys, e.g. {key}.{next(iter(default), 'name')}=...")
    else:
        return value
    raise HarnessError(
        f"--set {key}={value!r}: expected a {type(default).__name__} like {default!r}, got {type(value).__name__}"
    )


def set_value(config: dict, key: str, value) -> None:
    """Set ``section.key`` in place, checking that the key exists and the type matches."""
    parts = key.split(".")
    node = config
    for i, part in enumerate(parts[:-1]):
        if not isinstance(node.get(part), dict):
            raise HarnessError(f"--set {key}: no section {'.'.join(parts[: i + 1])!r} in the config; see the competition's .toml for valid keys")
        node = node[part]
    leaf = parts[-1]
    if leaf not in node:
        valid = ", ".join(sorted(".".join(parts[:-1] + [k]) for k in node))
        raise HarnessError(f"--set {key}: unknown key; valid keys here: {valid}")
    node[leaf] = _coerce(key, value, node[leaf])


def apply_overrides(config: dict, overrides: list[str] | tuple[str, ...] | dict) -> dict:
    """A copy of ``config`` with ``key=value`` strings (or a dict of key: value) applied."""
    config = copy.deepcopy(config)
    items = overrides.items() if isinstance(overrides, dict) else []
    if not isinstance(overrides, dict):
        parsed = []
        for item in overrides:
            if "=" not in item:
                raise HarnessError(f"--set {item!r}: expected key=value, e.g. --set train.lr=0.01")
            key, text = item.split("=", 1)
            parsed.append((key.strip(), _parse_literal(text.strip())))
        items = parsed
    for key, value in items:
        set_value(config, key, value)
    return config


def get(config: dict, key: str, default=None):
    node = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node
