"""A wrong path on the command line is one `error:` line naming it, exit 2, no usage block, nothing written."""
import pytest
from click.testing import CliRunner

from harness.cli import cli


@pytest.fixture
def a_file(tmp_path):
    path = tmp_path / "plain.txt"
    path.write_text("x")
    return path


@pytest.mark.parametrize("args, named", [
    (lambda f, d: ["train", "movielens", "--data-dir", f], "is a file"),
    (lambda f, d: ["train", "movielens", "--config", d], "is not a file"),
    (lambda f, d: ["train", "movielens", "--config", d / "missing.toml"], "does not exist"),
    (lambda f, d: ["data", "movielens", "--from", d / "missing"], "no such folder"),
    (lambda f, d: ["data", "movielens", "--from", f], "no such folder"),
    (lambda f, d: ["tune", "movielens", "--export", d], "is a folder"),
])
def test_wrong_path_is_one_error_line(tmp_path, a_file, args, named):
    folder = tmp_path / "folder"
    folder.mkdir()
    ws = tmp_path / "ws"
    result = CliRunner().invoke(cli, ["--workspace", str(ws), *map(str, args(a_file, folder))])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and named in lines[0], result.output
    assert "Usage:" not in result.output and "Traceback" not in result.output
    assert not (ws / "runs").exists()


def test_workspace_that_is_a_file_is_named(a_file):
    result = CliRunner().invoke(cli, ["--workspace", str(a_file), "runs"])
    assert result.exit_code == 2
    assert result.output.strip() == f"error: workspace {a_file} is a file; give a folder with --workspace or $HARNESS_WORKSPACE"
