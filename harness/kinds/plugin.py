"""The built-in plugin that registers every TOML-only competition: the built-in ``competitions/*.toml``
with a top-level ``kind``, and the user's ``<workspace>/competitions/*.toml`` (``harness new`` writes there)."""
from __future__ import annotations

from pathlib import Path

from harness.errors import HarnessError
from harness.host.hookspecs import hookimpl
from harness.kinds import competition_from_toml, read_toml

USER_FOLDER = "competitions"


def user_competitions_dir(workspace=None) -> Path:
    """<workspace>/competitions: the TOML competitions of this workspace (the current one by default)."""
    from harness.workspace import current_workspace

    return Path(workspace if workspace is not None else current_workspace()) / USER_FOLDER


def toml_competition_files(workspace=None) -> list[Path]:
    """Built-in TOMLs that declare a ``kind`` (the others belong to a plugin), then the user's."""
    from harness_competitions import CONFIG_DIR

    builtin = [p for p in sorted(CONFIG_DIR.glob("*.toml")) if "kind" in read_toml(p)]
    user_dir = user_competitions_dir(workspace)
    return builtin + (sorted(user_dir.glob("*.toml")) if user_dir.is_dir() else [])


@hookimpl
def register_competitions(register):
    from harness.host.plugins import warn

    for path in toml_competition_files():
        try:
            register(competition_from_toml(path))
        except HarnessError as exc:  # one broken file must not hide the other competitions
            warn(f"competition file {path} skipped: {exc}")
