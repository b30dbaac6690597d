"""Competition configs: declarative TOML files with defaults a user copies and edits.

A config is a nested dict. ``--set section.key=value`` overrides one entry; the new value must
have the type of the default (an int is accepted where a float is expected). Every value is checked
against ``harness.config.schema`` when a config is read and when a key is set, so a bad value is one
line naming the key, the value, the rule and where it came from, before anything is created.
Nothing here imports torch, numpy or pandas.
"""
from __future__ import annotations

import copy
import hashlib
import json
import tomllib
from pathlib import Path

import tomli_w

from harness.config.schema import SCHEMA, check_value, problems, rule_for, rules_for
from harness.errors import HarnessError


def config_error(key: str, value, rule: str, source) -> HarnessError:
    """``config: train.epochs = 0 must be ≥ 1 (competitions/movielens.toml)``."""
    return HarnessError(f"config: {key} = {value!r} {rule} ({source})")


def check_config(config: dict, source, schema: dict | None = None) -> dict:
    """``config`` itself if every key follows its rule (``schema``: a competition's extra rules),
    else a HarnessError for the first that does not, naming ``source`` (a file, or --set)."""
    for key, value, rule in problems(config, schema):
        raise config_error(key, value, rule, source)
    return config


def load_config(path: str | Path, schema: dict | None = None, check: bool = True) -> dict:
    """Read and check a TOML config; ``schema`` adds a competition's own rules (Competition.config_schema).
    ``check=False`` only parses it (a run's saved config, checked with its competition's rules when the run began)."""
    path = Path(path)
    if not path.exists():
        raise HarnessError(f"config file {path} does not exist; copy one from competitions/ and edit it")
    if not path.is_file():
        raise HarnessError(f"config file {path} is not a file; give a .toml file")
    try:
        config = tomllib.loads(path.read_text(encoding="utf-8-sig"))  # a byte-order mark (Windows editors) is no error
    except tomllib.TOMLDecodeError as exc:
        raise HarnessError(f"config file {path} is not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise HarnessError(f"config file {path} is not UTF-8 text; give a .toml file") from None
    return check_config(config, path, schema) if check else config


# Sections whose keys are the user's choice (the search space: any subset of the keys), so a config
# needs the section but not the default's keys in it.
FREE_SECTIONS = ("search",)


def missing_keys(config: dict, reference: dict) -> list[str]:
    """The sections of ``reference`` and the keys directly in them that ``config`` lacks."""
    missing = []
    for section, value in reference.items():
        if section not in config:
            missing.append(section)
        elif isinstance(value, dict) and section not in FREE_SECTIONS:
            if not isinstance(config[section], dict):
                missing.append(section)
                continue
            missing += [f"{section}.{key}" for key in value if key not in config[section]]
    return missing


def check_user_config(config: dict, reference: dict, competition: str, source, reference_path) -> dict:
    """A --config file must be for this competition and hold every key of its defaults (``reference``, read
    from ``reference_path``): the code reads them all, so a missing one would fail later, far from the file."""
    name = config.get("name")
    if name is not None and name != competition:
        raise HarnessError(f"config file {source} is for competition {name!r}, not {competition!r}; pass it with "
                           f"a {name} command, or copy {reference_path} and edit that")
    missing = missing_keys(config, reference)
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise HarnessError(f"config file {source} lacks {', '.join(missing[:3])}{more}; a --config file holds every "
                           f"key of {competition}'s config: copy {reference_path} and edit it, or change single keys with --set")
    return config


def merged(defaults: dict, config: dict) -> dict:
    """``config`` on top of ``defaults``: tables merge key by key, any other value replaces the default."""
    out = copy.deepcopy(defaults)
    for key, value in config.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


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


TYPE_NAMES = {bool: "true or false", int: "a whole number", float: "a number", str: "a string", list: "a list",
              dict: "a table"}


def _coerce(key: str, value, default, rule=None):
    """``value`` in the type of ``default``; ``rule`` (the key's schema rule, if any) judges a bare value
    given for a list."""
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
        # A bare value is not made a one-entry list: where one value will do (model.ps), the key's rule
        # accepts it; where it will not, the rule names the key ("must be a list"), not an entry [0].
        if isinstance(value, list) or rule is not None:
            return value
    elif isinstance(default, dict):
        raise HarnessError(f"--set {key}: {key!r} is a section; set one of its keys, e.g. {key}.{next(iter(default), 'name')}=...")
    else:
        return value
    raise HarnessError(
        f"--set {key}={value!r}: expected {TYPE_NAMES.get(type(default), type(default).__name__)} like "
        f"{str(default).lower() if isinstance(default, bool) else repr(default)}, "
        f"got {TYPE_NAMES.get(type(value), type(value).__name__)}"
    )


# Keys the host itself reads for every competition (harness.data.folds), so that --set may add them to a
# config that leaves them at their defaults; any other key must be in the competition's config already,
# which catches a typo or a setting this competition's model never reads.
HOST_KEYS = {key for key in SCHEMA if key.startswith("validation.") and "*" not in key}


def set_value(config: dict, key: str, value, rules: dict | None = None) -> None:
    """Set ``section.key`` in place, checking that the key exists (or is one of HOST_KEYS) and the type matches
    (``rules``: the schema rules, which the caller checks the value with)."""
    parts = key.split(".")
    if key in HOST_KEYS and parts[-1] not in config.get(parts[0], {}):
        config.setdefault(parts[0], {})[parts[-1]] = value  # checked against its schema rule by the caller
        return
    node = config
    for i, part in enumerate(parts[:-1]):
        if not isinstance(node.get(part), dict):
            raise HarnessError(f"--set {key}: no section {'.'.join(parts[: i + 1])!r} in the config; see the competition's .toml for valid keys")
        node = node[part]
    leaf = parts[-1]
    if leaf not in node:
        section = ".".join(parts[:-1])
        valid = ", ".join(sorted({f"{section}.{k}" for k in node} | {k for k in HOST_KEYS if k.rsplit(".", 1)[0] == section}))
        raise HarnessError(f"--set {key}: unknown key; valid keys here: {valid}")
    node[leaf] = _coerce(key, value, node[leaf], rule_for(rules, tuple(parts)) if rules else None)


def apply_overrides(config: dict, overrides: list[str] | tuple[str, ...] | dict, schema: dict | None = None,
                    source: str | None = None) -> dict:
    """A copy of ``config`` with ``key=value`` strings (or a dict of key: value) applied; each new
    value is checked against its rule (``schema``: a competition's extra rules). ``source`` names where
    the values came from in an error (default: --set, or "override" for a dict)."""
    config = copy.deepcopy(config)
    items = overrides.items() if isinstance(overrides, dict) else []
    if not isinstance(overrides, dict):
        parsed = []
        for item in overrides:
            if "=" not in item:
                raise HarnessError(f"--set {item!r}: expected key=value, e.g. --set train.lr=0.01")
            key, text = item.split("=", 1)
            if not key.strip():
                raise HarnessError(f"--set {item!r}: no key before '='; expected key=value, e.g. --set train.lr=0.01")
            parsed.append((key.strip(), _parse_literal(text.strip())))
        items = parsed
    rules = rules_for(config, schema)
    source = source or ("override" if isinstance(overrides, dict) else "--set")
    for key, value in items:
        set_value(config, key, value, rules)
        found = check_value(rules, key, get(config, key))
        if found:
            raise config_error(*found, source)
    return config


def get(config: dict, key: str, default=None):
    node = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node
