"""The plugin host: a competition registered from a test runs through the CLI; broken plugins only warn."""
import sys
import types

import numpy as np
import pandas as pd
import pytest

from harness import plugins
from toy_competition import FakePlugin


@pytest.fixture
def fake_plugin():
    plugins.register_plugin(FakePlugin(), name="fake-line-fit", version="9.9", source="test")
    yield
    plugins.unregister_plugin("fake-line-fit")


def test_fake_competition_runs_through_the_cli(fake_plugin, cli_run, workspace):
    assert "line-fit" in cli_run("list").output
    assert "fake-line-fit" in cli_run("plugins").output and "9.9" in cli_run("plugins").output
    cli_run("data", "line-fit", "--sample")
    out = cli_run("train", "line-fit", "--epochs", "20", "--lr", "0.3").output
    assert "validation rmse" in out
    run_dir = next((workspace / "runs" / "line-fit").iterdir())
    sub = pd.read_csv(run_dir / "submission.csv")
    # the toy model really learned the line
    assert np.allclose(sub["y"], 3 * np.arange(5) + 1, atol=0.3)
    for name in ("config.toml", "model.pt", "history.csv", "loss.png", "summary.json", "checkpoints/last.pt"):
        assert (run_dir / name).exists(), name
    cli_run("predict", "line-fit", "--run", run_dir.name)
    assert "line-fit" in cli_run("runs").output


def test_builtin_and_entry_point_failures_only_warn(monkeypatch, capsys):
    from importlib import metadata

    broken = types.ModuleType("plugins.broken_for_test")
    monkeypatch.setitem(sys.modules, "plugins.broken_for_test", None)  # import raises ImportError
    monkeypatch.setattr(plugins, "BUILTIN_PLUGINS", (*plugins.BUILTIN_PLUGINS, "plugins.broken_for_test"))

    class BadEntryPoint:
        name, value, dist = "bad-ep", "nowhere.plugin:x", None

        def load(self):
            raise RuntimeError("boom")

    monkeypatch.setattr(metadata, "entry_points", lambda group: [BadEntryPoint()])
    monkeypatch.setattr(plugins, "_loaded", False)
    monkeypatch.setattr(plugins, "_infos", {})
    monkeypatch.setattr(plugins, "pm", _fresh_pm())
    plugins.load_plugins()
    err = capsys.readouterr().err
    assert "plugins.broken_for_test failed to load" in err
    assert "bad-ep" in err and "boom" in err
    assert "movielens" in plugins.competitions()  # the others still work
    del broken


def _fresh_pm():
    import pluggy

    from harness import hookspecs

    pm = pluggy.PluginManager("harness")
    pm.add_hookspecs(hookspecs)
    return pm


def test_unknown_competition_is_one_line_exit_2(cli_run):
    result = cli_run("train", "no-such-comp", expect=2)
    assert "unknown competition 'no-such-comp'" in result.output
    assert "Traceback" not in result.output


def test_a_plugin_can_add_a_cli_command(cli_run):
    import click

    from harness.hookspecs import hookimpl

    class CommandPlugin:
        @hookimpl
        def register_commands(self, cli):
            @cli.command("hello-plugin")
            def hello():
                """A command from a plugin."""
                click.echo("hello from a plugin")

    plugins.register_plugin(CommandPlugin(), name="command-plugin")
    try:
        assert "hello from a plugin" in cli_run("hello-plugin").output
        assert "hello-plugin" in cli_run("--help").output
    finally:
        plugins.unregister_plugin("command-plugin")
        from harness.cli import cli

        cli.commands.pop("hello-plugin", None)
