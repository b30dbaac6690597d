"""The `harness` command line: the click group and main(); commands live in one module per family."""
from __future__ import annotations


import click

from harness import __version__
from harness.cli import auto, data, discover, kaggle, new, runs, train, tune
from harness.errors import HarnessError
from harness.workspace import using_workspace


class HarnessGroup(click.Group):
    """Turns HarnessError into one clear line on stderr and exit code 2, with no traceback.

    Commands that plugins add (the register_commands hook) are looked up only when a name is not a
    built-in command or the list is shown, so `harness --version` and the built-in commands do not
    import every plugin first.
    """

    def _load_plugin_commands(self):
        from harness.host.plugins import register_plugin_commands

        register_plugin_commands(self)

    def list_commands(self, ctx):
        self._load_plugin_commands()
        return super().list_commands(ctx)

    def get_command(self, ctx, name):
        command = super().get_command(ctx, name)
        if command is None:
            self._load_plugin_commands()
            command = super().get_command(ctx, name)
        return command

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except HarnessError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)


@click.group(cls=HarnessGroup)
@click.version_option(__version__, prog_name="harness")
@click.option("--workspace", envvar="HARNESS_WORKSPACE", default="harness-work",
              show_default=True, help="Folder for data, runs, checkpoints, plots and submissions "
                                      "(also $HARNESS_WORKSPACE).")
@click.pass_context
def cli(ctx, workspace):
    """A Kaggle competition harness: competitions as plugins, one PyTorch trainer."""
    ctx.ensure_object(dict)
    ctx.obj["workspace"] = workspace
    # Caches deep in a plugin (token ids, activations) use this workspace for the command's duration.
    ctx.with_resource(using_workspace(workspace))


for _command in (discover.list_competitions, discover.list_plugins, data.data, new.new,
                 train.train, train.lr_find, train.predict, train.model,
                 runs.runs, runs.explain, runs.generate,
                 tune.tune, tune.blend, kaggle.submit, kaggle.leaderboard, auto.auto):
    cli.add_command(_command)
del _command


def main():
    cli(prog_name="harness")
