"""The README's plugin example (a subclass of the tabular kind that adds a feature) works as written."""
import importlib
import json
import re
import sys
from pathlib import Path

import pytest

from harness.host.plugins import register_plugin, unregister_plugin
from test_tabular_kind import TITANIC, folder, titanic_like

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_block(first_line: str) -> str:
    """The fenced code block of the README whose first line is ``first_line``."""
    for block in re.findall(r"```(?:python|toml)\n(.*?)```", README.read_text(), flags=re.S):
        if block.startswith(first_line):
            return block
    raise AssertionError(f"README has no code block starting {first_line!r}")


@pytest.fixture
def titanic_plugin(tmp_path, monkeypatch):
    package = folder(tmp_path / "plugin" / "titanic_plugin")
    (package / "__init__.py").write_text(readme_block("# titanic_plugin/__init__.py"))
    (package / "titanic.toml").write_text('name = "titanic"\n' + TITANIC)  # as harness new writes it, less kind
    monkeypatch.syspath_prepend(str(tmp_path / "plugin"))
    module = importlib.import_module("titanic_plugin")
    register_plugin(module, name="titanic")
    yield module
    unregister_plugin("titanic")
    sys.modules.pop("titanic_plugin", None)


def test_the_readme_plugin_adds_its_feature_and_trains_from_the_cli(titanic_plugin, cli_run, workspace, tmp_path):
    titanic_like(folder(tmp_path / "data"))
    assert "titanic" in cli_run("list").output
    out = cli_run("train", "titanic", "--data-dir", tmp_path / "data", "--epochs", "1").output
    assert "validation accuracy" in out
    (run,) = (workspace / "runs" / "titanic").iterdir()
    state = json.loads((run / "preprocessing.json").read_text())
    assert "Title" in state["cat_cols"]  # the plugin's feature, typed like any other column
    assert "Name" not in state["cat_cols"]  # the free text it came from is left out


def test_every_competition_toml_in_the_readme_reads_and_checks(tmp_path):
    from harness.kinds import competition_from_toml

    blocks = [b for b in re.findall(r"```toml\n(.*?)```", README.read_text(), flags=re.S)
              if re.search(r'^kind = "', b, flags=re.M) and b.startswith("name = ")]
    assert len(blocks) >= 3  # tabular, image and text examples
    for i, block in enumerate(blocks):
        path = tmp_path / f"example{i}.toml"
        path.write_text(block)
        competition = competition_from_toml(path)
        config = competition.default_config()  # every key checked against the kind's rules
        assert config["metric"] and competition.task is not None
