import os

import pytest
import torch
from click.testing import CliRunner

# Keep plots headless and the kaggle client away from the user's real config.
os.environ.setdefault("MPLBACKEND", "Agg")
# The tests train tiny models: on a 2-core machine a second thread costs more than it saves, and
# much more when the other core is busy.
torch.set_num_threads(1)


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    ws = tmp_path / "ws"
    monkeypatch.setenv("HARNESS_WORKSPACE", str(ws))
    return ws


@pytest.fixture
def cli_run(workspace):
    """Invoke the harness CLI in-process; returns click's Result."""
    from harness.cli import cli

    runner = CliRunner()

    def run(*args, expect=0):
        result = runner.invoke(cli, [str(a) for a in args], catch_exceptions=False)
        if expect is not None:
            assert result.exit_code == expect, f"exit {result.exit_code}:\n{result.output}"
        return result

    return run
