"""The plugin host: a competition registered from a test runs through the CLI; broken plugins only warn."""
import sys

import numpy as np
import pandas as pd
import pytest

from harness.host import plugins
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

    monkeypatch.setitem(sys.modules, "harness_plugins.broken_for_test", None)  # import raises ImportError

    class BadEntryPoint:
        name, value, dist = "bad-ep", "nowhere.plugin:x", None

        def load(self):
            raise RuntimeError("boom")

    monkeypatch.setattr(metadata, "entry_points", lambda group: [BadEntryPoint()])
    host = plugins.PluginHost(builtins=(*plugins.BUILTIN_PLUGINS, "harness_plugins.broken_for_test"))
    found = host.competitions()
    err = capsys.readouterr().err
    assert "plugins.broken_for_test failed to load" in err
    assert "bad-ep" in err and "boom" in err
    assert "movielens" in found  # the others still work


def test_a_competition_name_two_plugins_register_is_one_warning_naming_both(capsys):
    from toy_competition import LineFit

    from harness.host.hookspecs import hookimpl

    class Impostor(LineFit):
        description = "an impostor"

    class ImpostorPlugin:
        @hookimpl
        def register_competitions(self, register):
            register(Impostor())

    host = plugins.PluginHost(builtins=())
    host.register(FakePlugin(), name="first-plugin")
    host.register(ImpostorPlugin(), name="second-plugin")
    found = host.competitions()
    err = capsys.readouterr().err
    assert err.count("warning:") == 1
    assert "competition 'line-fit' is registered by both plugin 'first-plugin' and plugin 'second-plugin'" in err
    assert type(found["line-fit"]) is LineFit  # the first registered keeps the name


def test_a_plugin_name_used_twice_is_a_warning(capsys):
    host = plugins.PluginHost(builtins=())
    assert host.register(FakePlugin(), name="same", source="dist-a")
    assert not host.register(FakePlugin(), name="same", source="dist-b")
    assert "plugin name 'same' of dist-b is taken by dist-a" in capsys.readouterr().err


@pytest.mark.parametrize("value, expected", [("movielens,imdb", {"movielens", "imdb"}), ("", set()),
                                             (" rossmann ", {"rossmann"})])
def test_load_plugins_env_chooses_which_plugins_load(monkeypatch, value, expected):
    monkeypatch.setenv(plugins.LOAD_PLUGINS_ENV, value)
    assert set(plugins.PluginHost().competitions()) == expected


def test_an_installed_distribution_loads_through_its_entry_point(tmp_path, monkeypatch):
    """The road every third-party plugin takes: a real distribution (built and installed by pip, offline)
    whose entry point in the ``harness`` group registers a competition."""
    import importlib
    import subprocess

    source = tmp_path / "src"
    (source / "tiny_harness_plugin").mkdir(parents=True)
    (source / "tiny_harness_plugin" / "__init__.py").write_text(
        "from harness.host.hookspecs import hookimpl\n"
        "from toy_competition import LineFit\n\n"
        "class Tiny(LineFit):\n    name = 'tiny-line-fit'\n\n"
        "@hookimpl\ndef register_competitions(register):\n    register(Tiny())\n")
    (source / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "tiny-harness-plugin"\nversion = "0.3.1"\n'
        '[project.entry-points.harness]\ntiny = "tiny_harness_plugin"\n')
    target = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-build-isolation",
                           "--no-deps", "--target", str(target), str(source)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    monkeypatch.syspath_prepend(str(target))
    importlib.invalidate_caches()
    host = plugins.PluginHost(builtins=())
    assert "tiny-line-fit" in host.competitions()
    info = host.infos["tiny"]
    assert (info.version, info.source) == ("0.3.1", "tiny-harness-plugin")


def test_unknown_competition_is_one_line_exit_2(cli_run):
    result = cli_run("train", "no-such-comp", expect=2)
    assert "unknown competition 'no-such-comp'" in result.output
    assert "Traceback" not in result.output


def test_a_plugin_can_add_a_cli_command(cli_run):
    import click

    from harness.host.hookspecs import hookimpl

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
