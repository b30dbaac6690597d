"""Run folders: everything one training run leaves behind, under <workspace>/runs/<competition>/<id>/.

A run is built in ``<id>.partial/`` and renamed to ``<id>/`` only when it is complete, so a folder
without the suffix holds a finished run, unless someone renamed or copied it without its model file:
that one is listed as incomplete. A run that raised keeps its ``.partial`` folder with
``failed.json`` (the error), and can be resumed from its last checkpoint; ``--run latest`` never
picks an unfinished run.

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

from harness.config.loading import dump_config, load_config
from harness.errors import HarnessError
from harness.workspace import atomic_path, write_json, write_text

PARTIAL = ".partial"  # the suffix of a run folder still being built
FAILED_FILE = "failed.json"
# Exceptions that stop a run on purpose rather than by a fault, by class name (no optuna import here).
STOPPED_BY = {"KeyboardInterrupt": "interrupted", "TrialPruned": "pruned"}
# Summary kinds of runs that combine other runs' predictions: their models are their members'.
BLEND_KINDS = ("blend", "ensemble")


@dataclass
class Run:
    dir: Path

    @property
    def id(self) -> str:
        return self.dir.name.removesuffix(PARTIAL)

    @property
    def finished(self) -> bool:
        return not self.dir.name.endswith(PARTIAL)

    @property
    def final_dir(self) -> Path:
        """Where the run's folder will be once it is complete."""
        return self.dir.parent / self.id

    def status(self) -> str:
        """finished, or incomplete (no model.pt) for a folder renamed or copied without its model; failed
        (it raised: failed.json says why), interrupted (Ctrl-C) or pruned (a tuning trial stopped early);
        or unfinished (killed, or still running)."""
        if self.finished:
            missing = self.missing_model()
            return f"incomplete (no {missing})" if missing else "finished"
        if not self.path(FAILED_FILE).exists():
            return "unfinished"
        return STOPPED_BY.get(self.failure().get("type"), "failed")

    def missing_model(self) -> str | None:
        """The model file a run lacks, relative to its folder (``model.pt``; for a K-fold run its folds',
        ``fold-1/model.pt``), or None. The folder's name alone cannot tell: a ``.partial`` folder renamed by
        hand, or a run copied without its weights, looks finished. A blend has no model of its own."""
        summary = self.summary()
        if summary.get("kind") in BLEND_KINDS:
            return None
        if not self.path("folds.csv").is_file():
            return None if self.path("model.pt").is_file() else "model.pt"
        if "folds" not in summary:  # written last, with the fold count: the K-fold run never finished
            return "summary.json"
        models = [f"fold-{i}/model.pt" for i in range(int(summary["folds"]) * int(summary.get("repeats", 1)))]
        return next((name for name in models if not self.path(name).is_file()), None)

    def failure(self) -> dict:
        path = self.path(FAILED_FILE)
        try:
            return json.loads(path.read_text()) if path.exists() else {}
        except (OSError, ValueError):
            return {"error": f"{path} is unreadable"}

    def mark_failed(self, error: BaseException) -> None:
        """Record why the run stopped; the folder stays ``.partial`` so that it can be resumed."""
        message = str(error).splitlines()[0] if str(error) else ""
        write_json(self.path(FAILED_FILE), {"error": message, "type": type(error).__name__,
                                            "time": time.strftime("%Y-%m-%d %H:%M:%S")})

    def finish(self) -> None:
        """Rename ``<id>.partial`` to ``<id>``: from now on the run counts as complete."""
        if self.finished:
            return
        failed = self.path(FAILED_FILE)
        if failed.exists():
            failed.unlink()  # a resumed run that finished is no longer failed
        final = self.final_dir
        self.dir.rename(final)
        self.dir = final

    @property
    def competition(self) -> str:
        return self.dir.parent.name

    @property
    def workspace(self) -> Path:
        """The workspace the run lives in: <workspace>/runs/<competition>/<id>."""
        return self.dir.parent.parent.parent

    @staticmethod
    def folder(workspace: Path, competition: str) -> Path:
        """Where the runs of ``competition`` live: <workspace>/runs/<competition>."""
        return Path(workspace) / "runs" / competition

    @classmethod
    def create(cls, workspace: Path, competition: str, partial: bool = False) -> "Run":
        """A new, empty run folder named by the time; ``partial=True`` builds it as ``<id>.partial``
        (training does, and calls ``finish`` at the end)."""
        base = cls.folder(workspace, competition)
        base.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for i in range(1000):
            run_id = stamp if i == 0 else f"{stamp}-{i}"
            if (base / run_id).exists() or (base / f"{run_id}{PARTIAL}").exists():
                continue
            path = base / (run_id + (PARTIAL if partial else ""))
            try:
                path.mkdir()
                return cls(path)
            except FileExistsError:
                continue
        raise HarnessError(f"could not create a run folder under {base}")

    @classmethod
    def all(cls, workspace: Path, competition: str) -> list["Run"]:
        """Every run of ``competition``, finished or not, oldest first."""
        base = cls.folder(workspace, competition)
        folders = [p for p in base.glob("*") if p.is_dir() and not p.name.startswith(".")] if base.exists() else []
        return sorted((cls(p) for p in folders), key=lambda run: run.id)

    @classmethod
    def find(cls, workspace: Path, competition: str, run_id: str | None = "latest",
             unfinished: bool = False) -> "Run":
        """The run ``run_id`` (finished or not), or the latest finished one; with ``unfinished=True``
        "latest" is the latest run of any status (what --resume continues)."""
        base = cls.folder(workspace, competition)
        runs = cls.all(workspace, competition)
        if run_id in (None, "latest"):
            # Newest first, stopping at the first that fits: a folder copied without its model looks finished
            # by name, and "latest" would then fail to load it (checking means reading its summary).
            latest = next((r for r in reversed(runs) if unfinished or (r.finished and not r.missing_model())), None)
            if latest is None:
                hint = (f" ({len(runs)} unfinished: resume one with `harness train {competition} --resume`)"
                        if runs else "")
                raise HarnessError(f"no finished runs of {competition} in {base}{hint}; "
                                   f"train one with `harness train {competition}`")
            return latest.of(competition)
        if run_id in ("", ".", "..") or Path(run_id).name != run_id:
            raise HarnessError(f"--run {run_id!r}: give a run's id as `harness runs {competition}` lists it, "
                               "not a path")
        for path in (base / run_id, base / f"{run_id}{PARTIAL}"):
            if path.is_dir():
                if not (path / "config.toml").is_file():
                    raise HarnessError(f"{path} holds no config.toml, so it is not a run of {competition}; "
                                       f"`harness runs {competition}` lists the runs")
                return cls(path).of(competition)
        raise HarnessError(f"no run {run_id!r} of {competition} in {base}; `harness runs {competition}` lists them")

    @classmethod
    def at(cls, workspace: Path, competition: str, run_id: str) -> "Run":
        """The run ``run_id`` wherever it is (finished or ``.partial``); need not exist yet."""
        path = cls.folder(workspace, competition) / str(run_id)
        partial = path.with_name(path.name + PARTIAL)
        return cls(partial if partial.is_dir() and not path.is_dir() else path)

    # ------------------------------------------------------------ reading and writing
    def path(self, name: str) -> Path:
        return self.dir / name

    def save_config(self, config: dict) -> None:
        write_text(self.path("config.toml"), dump_config(config))

    def damaged(self, name: str, detail) -> HarnessError:
        """The error for a run file that exists but cannot be read."""
        return HarnessError(f"run {self.id} of {self.competition} is damaged: {self.path(name)} {detail}; "
                            f"train a new run with `harness train {self.competition}`")

    def config(self) -> dict:
        path = self.path("config.toml")
        if not path.is_file():
            raise HarnessError(f"{path} is missing; run {self.id} is not a complete run folder")
        try:
            config = load_config(path, check=False)  # checked, with the competition's own rules, when the run began
        except HarnessError as exc:
            raise self.damaged("config.toml", "is not a valid config") from exc
        if not config:
            raise self.damaged("config.toml", "is empty")
        return config

    def of(self, competition: str) -> "Run":
        """This run, if its config is one of ``competition`` (a config without a name is taken as one)."""
        name = self.config().get("name", competition)
        if name != competition:
            raise self.damaged("config.toml", f"is a config of competition {name!r}, not {competition!r}")
        return self

    def save_state(self, state: dict) -> None:
        write_json(self.path("preprocessing.json"), state)

    def state(self) -> dict:
        path = self.path("preprocessing.json")
        if not path.is_file():
            raise HarnessError(f"{path} is missing; the run did not finish preprocessing, train again")
        try:
            state = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise self.damaged("preprocessing.json", f"is not valid JSON ({str(exc).splitlines()[0]})") from None
        if not isinstance(state, dict):
            raise self.damaged("preprocessing.json", "does not hold a JSON object")
        return state

    def save_summary(self, summary: dict) -> None:
        write_json(self.path("summary.json"), summary)

    def summary(self) -> dict:
        path = self.path("summary.json")
        try:
            summary = json.loads(path.read_text()) if path.is_file() else {}
        except (OSError, UnicodeDecodeError, ValueError):
            return {}  # listed as unfinished; the files it describes are checked where they are read
        return summary if isinstance(summary, dict) else {}

    def save_history(self, recorder, title: str, prefix: str = "") -> list[dict]:
        """A Recorder's per-epoch history as <prefix>history.csv and its loss curves as <prefix>loss.png."""
        history = recorder.history if recorder is not None else []
        if history:
            import pandas as pd

            from harness.train.plots import plot_losses
            from harness.workspace import write_csv

            write_csv(self.path(f"{prefix}history.csv"), pd.DataFrame(history))
            plot_losses(history, recorder.batch_losses, self.path(f"{prefix}loss.png"), title=title,
                        epoch_batches=recorder.epoch_batches)
        return history

    def save_array(self, name: str, array) -> None:
        with atomic_path(self.path(name)) as tmp:
            with open(tmp, "wb") as f:
                np.save(f, np.asarray(array))

    def array(self, name: str) -> np.ndarray:
        path = self.path(name)
        if not path.is_file():
            raise HarnessError(f"{path} is missing; run {self.id} did not save it")
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:
            raise self.damaged(name, f"cannot be read ({str(exc).splitlines()[0]})") from None

    @property
    def checkpoint(self) -> Path:
        return self.path("checkpoints") / "last.pt"
