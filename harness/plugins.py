"""The plugin host: built-in plugins by import, third-party ones through the ``harness`` entry-point group."""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib import metadata

import click
import pluggy

from harness import __version__, hookspecs
from harness.errors import HarnessError

BUILTIN_PLUGINS = (
    "plugins.movielens",
    "plugins.rossmann",
    "plugins.dog_breeds",
    "plugins.imdb",
)
ENTRY_POINT_GROUP = "harness"


@dataclass
class PluginInfo:
    name: str
    version: str
    source: str  # "built-in" or the distribution that provides it


pm = pluggy.PluginManager("harness")
pm.add_hookspecs(hookspecs)
_infos: dict[str, PluginInfo] = {}
_loaded = False


def _warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


def load_plugins() -> None:
    """Import the built-in plugins and every installed entry point; a broken one only warns."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module_name in BUILTIN_PLUGINS:
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:  # a broken plugin must not take the CLI down
            _warn(f"built-in plugin {module_name} failed to load ({type(exc).__name__}: {exc}); skipping it")
            continue
        register_plugin(module, name=module_name.split(".")[-1], version=__version__, source="built-in")
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = entry_point.dist
        try:
            module = entry_point.load()
        except Exception as exc:
            _warn(f"plugin {entry_point.name} ({entry_point.value}) failed to load ({type(exc).__name__}: {exc}); skipping it")
            continue
        register_plugin(
            module,
            name=entry_point.name,
            version=dist.version if dist else "?",
            source=dist.metadata["Name"] if dist else entry_point.value,
        )


def register_plugin(plugin, name: str, version: str = "?", source: str = "in-process") -> None:
    """Register a plugin object or module; tests use this to add a fake competition."""
    if pm.is_registered(plugin) or pm.has_plugin(name):
        return
    pm.register(plugin, name=name)
    _infos[name] = PluginInfo(name=name, version=version, source=source)


def unregister_plugin(name: str) -> None:
    plugin = pm.get_plugin(name)
    if plugin is not None:
        pm.unregister(plugin)
    _infos.pop(name, None)


def plugin_infos() -> list[PluginInfo]:
    load_plugins()
    return list(_infos.values())


def competitions() -> dict:
    """All registered competitions by name."""
    load_plugins()
    found = {}

    def register(competition):
        found[competition.name] = competition

    pm.hook.register_competitions(register=register)
    return found


def get_competition(name: str):
    found = competitions()
    if name not in found:
        known = ", ".join(sorted(found)) or "none installed"
        raise HarnessError(f"unknown competition {name!r}; installed competitions: {known} (see `harness list`)")
    return found[name]


def register_plugin_commands(cli) -> None:
    load_plugins()
    pm.hook.register_commands(cli=cli)


