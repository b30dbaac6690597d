"""The progress file of an automated entry: what is done, what it found, and the time it took.

Each session has a folder ``<workspace>/auto/<competition>/<session id>/`` holding ``state.json`` (this
file), ``log.txt`` (the training output the progress lines summarise), ``report.md`` and its PNGs.
``state.json`` is rewritten atomically after every step, baseline fold and trial, so a session killed at
any moment resumes from its last write: ``harness auto NAME`` again continues the latest session unless
it is done (then a new session starts) or ``--restart`` abandons it.

The clock: ``spent`` is the session's wall time over all its processes, and each step's ``seconds`` its
share; both advance at every write, so a kill loses at most the time since the last one.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from harness.errors import HarnessError
from harness.workspace import write_json

STATE_FILE = "state.json"
VERSION = 1


def sessions_dir(workspace: Path, competition: str) -> Path:
    return Path(workspace) / "auto" / competition


def session_folders(workspace: Path, competition: str) -> list[Path]:
    """Every session folder of ``competition`` that has a state file, oldest first."""
    root = sessions_dir(workspace, competition)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and (p / STATE_FILE).is_file())


def read_state(folder: Path) -> dict:
    path = Path(folder) / STATE_FILE
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise HarnessError(f"{path} is unreadable ({exc}); move the folder away, or pass --restart to start a new "
                           "session") from None
    if not isinstance(data, dict) or data.get("version") != VERSION:
        raise HarnessError(f"{path} is not a harness auto state file of version {VERSION}; move the folder away, or "
                           "pass --restart to start a new session")
    return data


class Session:
    """One automated entry's state, saved to ``folder/state.json``."""

    def __init__(self, folder: Path, data: dict):
        self.folder = Path(folder)
        self.data = data
        self.current: str | None = None  # the step in progress, whose seconds the clock advances
        self.mark = time.monotonic()

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(cls, workspace: Path, competition: str, restart: bool = False) -> tuple["Session", "Session | None"]:
        """The session to work on, and the previous finished one (None: there is none).

        The latest session continues unless it is done or ``restart`` is given (it is then marked
        abandoned); otherwise a new one starts.
        """
        folders = session_folders(workspace, competition)
        latest = cls(folders[-1], read_state(folders[-1])) if folders else None
        if latest is not None and latest.status == "running" and not restart:
            latest.data["resumed"] = latest.data.get("resumed", 0) + 1
            return latest, cls.previous_done(folders[:-1])
        if latest is not None and latest.status == "running":
            latest.data["status"] = "abandoned"
            latest.save()
        root = sessions_dir(workspace, competition)
        root.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for i in range(1000):
            folder = root / (stamp if i == 0 else f"{stamp}-{i}")
            try:
                folder.mkdir()
                break
            except FileExistsError:
                continue
        else:
            raise HarnessError(f"could not create a session folder under {root}")
        data = {"version": VERSION, "competition": competition, "session": folder.name, "status": "running",
                "started": time.strftime("%Y-%m-%d %H:%M:%S"), "resumed": 0, "spent": 0.0,
                "steps": {}, "baselines": {}, "tuning": {"kinds": {}, "running": None, "wasted": []}}
        session = cls(folder, data)
        session.save()
        return session, cls.previous_done(folders)

    @classmethod
    def unfinished(cls, workspace: Path, competition: str) -> "Session | None":
        """The latest session if it is still running (what ``open`` would resume), else None."""
        folders = session_folders(workspace, competition)
        if not folders:
            return None
        latest = cls(folders[-1], read_state(folders[-1]))
        return latest if latest.status == "running" else None

    @classmethod
    def previous_done(cls, folders: list[Path]) -> "Session | None":
        for folder in reversed(folders):
            try:
                data = read_state(folder)
            except HarnessError:
                continue
            if data.get("status") == "done":
                return cls(folder, data)
        return None

    # ------------------------------------------------------------------ fields
    @property
    def id(self) -> str:
        return self.data["session"]

    @property
    def status(self) -> str:
        return self.data.get("status", "running")

    @property
    def spent(self) -> float:
        return float(self.data.get("spent", 0.0))

    def path(self, name: str) -> Path:
        return self.folder / name

    def step(self, name: str) -> dict:
        return self.data["steps"].setdefault(name, {"status": "pending", "seconds": 0.0, "note": ""})

    def done(self, name: str) -> bool:
        return self.data["steps"].get(name, {}).get("status") == "done"

    # ------------------------------------------------------------------ the clock and saving
    def tick(self) -> None:
        """Advance ``spent`` (and the current step's seconds) by the wall time since the last tick."""
        now = time.monotonic()
        delta, self.mark = now - self.mark, now
        self.data["spent"] = self.spent + delta
        if self.current is not None:
            step = self.step(self.current)
            step["seconds"] = float(step.get("seconds", 0.0)) + delta

    def save(self) -> None:
        self.tick()
        write_json(self.path(STATE_FILE), self.data)

    def begin(self, name: str) -> None:
        self.tick()  # time before now belongs to the step before
        self.current = name
        self.step(name)["status"] = "running"
        self.save()

    def end(self, name: str, note: str) -> None:
        step = self.step(name)
        step["status"], step["note"] = "done", note
        self.save()
        self.current = None

    def finish(self) -> None:
        self.data["status"] = "done"
        self.data["finished"] = time.strftime("%Y-%m-%d %H:%M:%S")
        self.save()
