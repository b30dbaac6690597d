"""Where run artifacts live, and how they are written without ever leaving half a file."""
from __future__ import annotations

import contextlib
import contextvars
import json
import os
import shutil
import tempfile
from pathlib import Path

from harness.errors import HarnessError

DEFAULT_WORKSPACE = "harness-work"
WORKSPACE_ENV = "HARNESS_WORKSPACE"
# The workspace of the command or run in progress, for caches deep in a plugin (token ids, CNN
# activations). Set by `using_workspace` (the CLI, runner.train and runner.predict), never by the environment.
CURRENT_WORKSPACE: contextvars.ContextVar[Path | None] = contextvars.ContextVar("harness_workspace", default=None)


def workspace_dir(override: str | os.PathLike | None = None) -> Path:
    """The workspace folder: an explicit option, else $HARNESS_WORKSPACE, else ./harness-work."""
    path = Path(override or os.environ.get(WORKSPACE_ENV) or DEFAULT_WORKSPACE)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise HarnessError(f"workspace {path} is a file; give a folder with --workspace or $HARNESS_WORKSPACE") from None
    return path


def data_dir_for(workspace: Path, competition, data_dir: str | Path | None) -> Path:
    """An explicit --data-dir, else the workspace copy made by `harness data`."""
    path = Path(data_dir) if data_dir else Path(workspace) / "data" / competition.name
    if path.exists() and not path.is_dir():
        raise HarnessError(f"--data-dir {path} is a file; give the folder that holds {competition.name}'s files")
    if not path.exists():
        raise HarnessError(f"no data for {competition.name} at {path}; run `harness data {competition.name} --sample` "
                           f"(demo data) or `harness data {competition.name} --from DIR`, or pass --data-dir")
    competition.check_raw(path)
    return path


@contextlib.contextmanager
def using_workspace(path):
    """Make ``path`` the workspace that ``cache_dir`` uses inside the block."""
    token = CURRENT_WORKSPACE.set(Path(path))
    try:
        yield Path(path)
    finally:
        CURRENT_WORKSPACE.reset(token)


def current_workspace() -> Path:
    """The workspace of the command or run in progress, else $HARNESS_WORKSPACE or ./harness-work."""
    return CURRENT_WORKSPACE.get() or workspace_dir()


def cache_dir(kind: str) -> Path:
    """<workspace>/cache/<kind>: caches that outlive a run (token ids, CNN activations)."""
    return current_workspace() / "cache" / kind


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; rename it into place only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike):
    """Yield an empty temporary folder beside ``path``; it replaces ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        tmp.rename(path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def write_text(path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path, obj) -> None:
    write_text(path, json.dumps(obj, indent=2, default=str) + "\n")


def write_csv(path, frame, **kwargs) -> None:
    kwargs.setdefault("index", False)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, **kwargs)


def torch_save(obj, path) -> None:
    with atomic_path(path) as tmp:
        import torch  # here, so that importing the workspace helpers (every CLI start) stays cheap

        torch.save(obj, tmp)


def save_figure(fig, path) -> None:
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
