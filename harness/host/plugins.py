"""The plugin host: built-in plugins by import, third-party ones through the ``harness`` entry-point group.

One ``PluginHost`` (``host``) serves the CLI; the module-level functions below are its public face.
``$HARNESS_LOAD_PLUGINS`` (comma-separated plugin names, as llm's ``LLM_LOAD_PLUGINS``) loads only the
named plugins, built-in or installed; set to an empty string it loads none. A plugin that fails to import,
a plugin name used twice and a competition name registered by two plugins each give one warning.
"""
from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from importlib import metadata

import click
import pluggy

from harness import __version__
from harness.host import hookspecs
from harness.errors import HarnessError

BUILTIN_PLUGINS = (
    "harness_plugins.movielens",
    "harness_plugins.rossmann",
    "harness_plugins.dog_breeds",
    "harness_plugins.imdb",
    "harness.kinds.plugin",  # TOML-only competitions (built-in and the workspace's), as plugin "kinds"
)
ENTRY_POINT_GROUP = "harness"
LOAD_PLUGINS_ENV = "HARNESS_LOAD_PLUGINS"


@dataclass
class PluginInfo:
    name: str
    version: str
    source: str  # "built-in" or the distribution that provides it


def warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


def wanted_plugins() -> set[str] | None:
    """The plugin names $HARNESS_LOAD_PLUGINS allows, or None when it is unset (load all)."""
    value = os.environ.get(LOAD_PLUGINS_ENV)
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def plugin_name(module_name: str) -> str:
    """harness_plugins.movielens -> movielens; a package's ``plugin`` module takes the package's name."""
    parts = module_name.split(".")
    return parts[-2] if parts[-1] == "plugin" and len(parts) > 1 else parts[-1]


class PluginHost:
    """A pluggy plugin manager with the harness's hooks, the plugins' versions and sources, and the
    competitions they register."""

    def __init__(self, builtins=BUILTIN_PLUGINS, group: str = ENTRY_POINT_GROUP):
        self.builtins, self.group = tuple(builtins), group
        self.pm = pluggy.PluginManager("harness")
        self.pm.add_hookspecs(hookspecs)
        self.infos: dict[str, PluginInfo] = {}
        self.loaded = False

    def load(self) -> None:
        """Import the built-in plugins and every installed entry point (once); a broken one only warns."""
        if self.loaded:
            return
        self.loaded = True
        wanted = wanted_plugins()
        for module_name in self.builtins:
            name = plugin_name(module_name)
            if wanted is not None and name not in wanted:
                continue
            try:
                module = importlib.import_module(module_name)
            except Exception as exc:  # a broken plugin must not take the CLI down
                warn(f"built-in plugin {module_name} failed to load ({type(exc).__name__}: {exc}); skipping it")
                continue
            self.register(module, name=name, version=__version__, source="built-in")
        for entry_point in metadata.entry_points(group=self.group):
            if wanted is not None and entry_point.name not in wanted:
                continue
            dist = entry_point.dist
            try:
                module = entry_point.load()
            except Exception as exc:
                warn(f"plugin {entry_point.name} ({entry_point.value}) failed to load "
                     f"({type(exc).__name__}: {exc}); skipping it")
                continue
            self.register(module, name=entry_point.name, version=dist.version if dist else "?",
                          source=dist.metadata["Name"] if dist else entry_point.value)

    def register(self, plugin, name: str, version: str = "?", source: str = "in-process") -> bool:
        """Register a plugin object or module under ``name``; False (with a warning) if the name is taken."""
        if self.pm.is_registered(plugin):
            return False
        if self.pm.has_plugin(name):
            taken = self.infos.get(name)
            warn(f"plugin name {name!r} of {source} is taken by {taken.source if taken else 'another plugin'}; "
                 f"skipping the second one")
            return False
        self.pm.register(plugin, name=name)
        self.infos[name] = PluginInfo(name=name, version=version, source=source)
        return True

    def unregister(self, name: str) -> None:
        plugin = self.pm.get_plugin(name)
        if plugin is not None:
            self.pm.unregister(plugin)
        self.infos.pop(name, None)

    def competitions(self) -> dict:
        """All registered competitions by name. Each plugin's hook is called on its own, so that a name two
        plugins register is one warning naming both (the first registered plugin keeps it)."""
        self.load()
        found, owner = {}, {}
        # get_hookimpls() is in registration order (a hook call would go last-registered first).
        for impl in self.pm.hook.register_competitions.get_hookimpls():
            plugin_name = self.pm.get_name(impl.plugin)

            def register(competition, plugin_name=plugin_name):
                name = competition.name
                if name in found:
                    first, second = source_of(owner[name], found[name]), source_of(plugin_name, competition)
                    warn(f"competition {name!r} is registered by both {first} and {second}; using the first "
                         f"(rename or remove one, uninstall a plugin, or choose plugins with ${LOAD_PLUGINS_ENV})")
                    return
                found[name], owner[name] = competition, plugin_name

            impl.function(register=register)
        return found


def source_of(plugin_name: str, competition) -> str:
    """``plugin 'kinds' (/ws/competitions/tab1.toml)``: the plugin, and the file that configures the
    competition, since one plugin (kinds) registers many files."""
    path = getattr(competition, "config_path", None)
    return f"plugin {plugin_name!r}" + (f" ({path})" if path else "")


host = PluginHost()


def load_plugins() -> None:
    host.load()


def register_plugin(plugin, name: str, version: str = "?", source: str = "in-process") -> bool:
    """Register a plugin object or module (tests add a fake competition this way)."""
    return host.register(plugin, name=name, version=version, source=source)


def unregister_plugin(name: str) -> None:
    host.unregister(name)


def plugin_infos() -> list[PluginInfo]:
    host.load()
    return list(host.infos.values())


def competitions() -> dict:
    return host.competitions()


def get_competition(name: str):
    found = competitions()
    if name not in found:
        known = ", ".join(sorted(found)) or "none installed"
        raise HarnessError(f"unknown competition {name!r}; installed competitions: {known} (see `harness list`)")
    return found[name]


def register_plugin_commands(cli) -> None:
    host.load()
    host.pm.hook.register_commands(cli=cli)
