"""`harness list` and `harness plugins`: the competitions and plugins installed."""
from __future__ import annotations

import click


@click.command("list")
def list_competitions():
    """List the competitions that installed plugins provide."""
    from harness.host.plugins import competitions

    for name, comp in sorted(competitions().items()):
        slug = comp.kaggle_slug or "(scored locally)"
        click.echo(f"{name:<16} {slug:<32} {comp.description}")


@click.command("plugins")
def list_plugins():
    """List installed plugins with their versions."""
    from harness.host.plugins import plugin_infos

    for info in plugin_infos():
        click.echo(f"{info.name:<20} {info.version:<10} {info.source}")
