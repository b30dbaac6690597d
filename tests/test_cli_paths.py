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
    (lambda f, d: ["data", "movielens", "--from", f], "is a file, not a folder"),
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


@pytest.mark.parametrize("args", [
    ["train", "movielens", "--set", "train.epochs=0"],   # a config error
    ["train", "rossmann", "--set", "train.nope=1"],      # an unknown key
    ["train", "imdb", "--data-dir", "{missing}"],        # no data
    ["list"],
])
def test_errors_and_listing_come_before_torch_is_imported(tmp_path, args):
    """torch takes seconds to import on a busy machine: a bad config or a missing folder is said first."""
    import subprocess
    import sys

    argv = [a.format(missing=tmp_path / "missing") for a in args]
    code = ("import sys\nfrom harness.cli import cli\n"
            f"try:\n    cli({['--workspace', str(tmp_path / 'ws'), *argv]!r})\n"
            "except SystemExit as exc:\n    code = exc.code\n"
            "print('torch imported' if 'torch' in sys.modules else 'torch not imported', code)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1] == f"torch not imported {0 if args == ['list'] else 2}", out.stderr
