"""`harness data`: put a competition's files into the workspace (from a folder, Kaggle or a generated sample)."""
from __future__ import annotations

import shutil
from pathlib import Path

import click

from harness.cli.common import competition_named, config_for, workspace_of
from harness.cli.options import config_option, set_option
from harness.errors import HarnessError


@click.command("data")
@click.argument("name")
@click.option("--from", "source", help="Copy the competition files from DIR, their values checked as `harness train` "
                                      "reads them (with the config of --config/--set).")
@click.option("--sample", is_flag=True, help="Write a small generated dataset in the competition's own format.")
@click.option("--download", is_flag=True, help="Download the files from Kaggle (needs a Kaggle account; "
                                               "a second run downloads nothing).")
@click.option("--force", is_flag=True, help="Replace data already in the workspace.")
@config_option
@set_option
@click.pass_context
def data(ctx, name, source, sample, download, force, config_file, overrides):
    """Put a competition's files into the workspace (checked): from DIR, from Kaggle, or generated sample data."""
    comp = competition_named(name)
    if bool(source) + bool(sample) + bool(download) != 1:
        raise HarnessError("give exactly one of --from DIR, --sample or --download")
    if (config_file or overrides) and not source:
        raise HarnessError("--config and --set choose the config that checks the values of --from DIR; drop them")
    config = config_for(comp, config_file, overrides) if source else None
    dest = workspace_of(ctx) / "data" / name
    if download:
        from harness.kaggle.download import download_data

        download_data(comp, dest, force=force)
        return
    if dest.exists() and not force:
        raise HarnessError(f"{dest} already exists; pass --force to replace it")
    from harness.workspace import atomic_dir

    if source:
        if not Path(source).is_dir():
            what = "is a file, not a folder" if Path(source).exists() else "no such folder"
            raise HarnessError(f"--from {source}: {what}; give the folder that holds the competition's files")
        comp.check_raw(Path(source))  # before copying, so that errors name the user's folder
        # The values too, by the code `harness train` reads and checks them with, and with its messages.
        comp.check_inputs(comp.load(Path(source), config), config)
    with atomic_dir(dest) as tmp:
        if sample:
            comp.write_sample(tmp)
            comp.check_raw(tmp)
        else:
            shutil.copytree(source, tmp, dirs_exist_ok=True)
    click.echo(f"{name}: data ready in {dest}")
