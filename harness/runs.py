"""Run folders: everything one training run leaves behind, under <workspace>/runs/<competition>/<id>/.

    config.toml         the exact config used
    preprocessing.json  fitted preprocessing state (reapplied at predict time)
    model.pt            final weights             checkpoints/last.pt, best.pt
    history.csv         per-epoch metrics         loss.png
    summary.json        final validation scores, timings, device
    valid_preds.npy, valid_targets.npy, test_preds.npy, submission.csv
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.config import dump_config, load_config
from harness.errors import HarnessError
from harness.workspace import atomic_path, write_json, write_text


@dataclass
class Run:
    dir: Path

    @property
    def id(self) -> str:
        return self.dir.name

    @property
    def competition(self) -> str:
        return self.dir.parent.name

    @staticmethod
    def folder(workspace: Path, competition: str) -> Path:
        """Where the runs of ``competition`` live: <workspace>/runs/<competition>."""
        return Path(workspace) / "runs" / competition

    @classmethod
    def at(cls, workspace: Path, competition: str, run_id: str) -> "Run":
        return cls(cls.folder(workspace, competition) / str(run_id))

    @classmethod
    def create(cls, workspace: Path, competition: str) -> "Run":
        base = cls.folder(workspace, competition)
        base.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for i in range(1000):
            path = base / (stamp if i == 0 else f"{stamp}-{i}")
            try:
                path.mkdir()
                return cls(path)
            except FileExistsError:
                continue
        raise HarnessError(f"could not create a run folder under {base}")

    @classmethod
    def find(cls, workspace: Path, competition: str, run_id: str | None = "latest") -> "Run":
        base = cls.folder(workspace, competition)
        runs = sorted(p for p in base.glob("*") if p.is_dir()) if base.exists() else []
        if not runs:
            raise HarnessError(f"no runs of {competition} in {base}; train one with `harness train {competition}`")
        if run_id in (None, "latest"):
            return cls(runs[-1])
        path = base / run_id
        if not path.is_dir():
            raise HarnessError(f"no run {run_id!r} of {competition} in {base}; `harness runs {competition}` lists them")
        return cls(path)

    # ------------------------------------------------------------ reading and writing
    def path(self, name: str) -> Path:
        return self.dir / name

    def save_config(self, config: dict) -> None:
        write_text(self.path("config.toml"), dump_config(config))

    def config(self) -> dict:
        return load_config(self.path("config.toml"))

    def save_state(self, state: dict) -> None:
        write_json(self.path("preprocessing.json"), state)

    def state(self) -> dict:
        path = self.path("preprocessing.json")
        if not path.exists():
            raise HarnessError(f"{path} is missing; the run did not finish preprocessing, train again")
        return json.loads(path.read_text())

    def save_summary(self, summary: dict) -> None:
        write_json(self.path("summary.json"), summary)

    def summary(self) -> dict:
        path = self.path("summary.json")
        return json.loads(path.read_text()) if path.exists() else {}

    def save_array(self, name: str, array) -> None:
        with atomic_path(self.path(name)) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, np.asarray(array))

    def array(self, name: str) -> np.ndarray:
        return np.load(self.path(name))

    @property
    def checkpoint(self) -> Path:
        return self.path("checkpoints") / "last.pt"
