"""The local leaderboard: every run and every submission, in one SQLite file in the workspace.

    runs         competition, run id, config (TOML) and its hash, git commit, data fingerprint,
                 validation metric and score, when the run started and when it was recorded
    submissions  competition, run id, Kaggle ref, message, file hash, status (pending, scored, failed,
                 local), public and private scores when known, error, when submitted and scored

`harness leaderboard NAME` shows both as one table and plots validation against public score, so a
user sees whether the validation split tracks the leaderboard.
"""
from __future__ import annotations

import functools
import sqlite3
import subprocess
import time
from contextlib import closing
from pathlib import Path

import click
import numpy as np

from harness.errors import HarnessError
from harness.runs.folder import Run

DB_NAME = "leaderboard.sqlite"
SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    competition TEXT NOT NULL, run_id TEXT NOT NULL, config TEXT, config_hash TEXT, git_commit TEXT,
    data_fingerprint TEXT, metric TEXT, direction TEXT, validation_score REAL, started TEXT, recorded TEXT,
    PRIMARY KEY (competition, run_id)
);
CREATE TABLE IF NOT EXISTS submissions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, competition TEXT NOT NULL, run_id TEXT NOT NULL,
    kaggle_ref INTEGER, message TEXT, file_sha256 TEXT, status TEXT NOT NULL,
    public_score REAL, private_score REAL, error TEXT, submitted TEXT, scored TEXT
);
"""
SUBMISSION_FIELDS = {"kaggle_ref", "status", "public_score", "private_score", "error", "scored"}
# Columns added since the first schema: added to an older database when it is opened.
RUN_COLUMNS_ADDED = {"scheme": "TEXT", "folds": "INTEGER", "cv_sd": "REAL"}


def now() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S")


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The harness checkout's commit ("-dirty" with uncommitted changes), or None outside a git checkout."""
    root = Path(__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True, text=True,
                              timeout=5)
        if head.returncode:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("-dirty" if dirty else "")


class Leaderboard:
    def __init__(self, workspace):
        self.path = Path(workspace) / DB_NAME

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.is_dir():
            raise HarnessError(f"{self.path} is a directory; the leaderboard keeps its database file there: "
                               "move the folder away")
        try:
            db = sqlite3.connect(self.path, timeout=30)
            db.row_factory = sqlite3.Row
            db.executescript(SCHEMA)
            have = {row["name"] for row in db.execute("PRAGMA table_info(runs)")}
            for table, needed in (("runs", {"competition", "run_id", "validation_score"}),
                                  ("submissions", {"competition", "run_id", "status"})):
                found = {row["name"] for row in db.execute(f"PRAGMA table_info({table})")}
                if not needed <= found:  # another program's database that happens to have such a table
                    raise HarnessError(f"{self.path} is not a harness leaderboard (its {table} table has no "
                                       f"{', '.join(sorted(needed - found))} column); move it away and the next run "
                                       "or submission starts a new one")
            for column, kind in RUN_COLUMNS_ADDED.items():
                if column not in have:
                    db.execute(f"ALTER TABLE runs ADD COLUMN {column} {kind}")
        except sqlite3.DatabaseError as exc:  # not SQLite, or cut short
            raise HarnessError(f"{self.path} is not a readable leaderboard database ({exc}); move it away and "
                               "the next run or submission starts a new one") from None
        return db

    # ------------------------------------------------------------------ writing
    def record_run(self, run: Run, data_fingerprint: str | None = None) -> None:
        """Insert or update a run from its folder (config, summary); tolerant of runs without them (blends)."""
        from harness.config.loading import config_hash, dump_config

        summary = run.summary()
        config = run.config() if run.path("config.toml").exists() else None
        row = {
            "competition": run.competition, "run_id": run.id,
            "config": dump_config(config) if config is not None else None,
            "config_hash": summary.get("config_hash") or (config_hash(config) if config is not None else None),
            "git_commit": git_commit(), "data_fingerprint": data_fingerprint,
            "metric": summary.get("primary_metric"), "direction": summary.get("direction"),
            "validation_score": _number(summary.get("primary_score")),
            # A K-fold run: its scheme, folds and the sd of its fold scores (validation_score is the CV score).
            "scheme": summary.get("scheme", "holdout"), "folds": summary.get("folds"),
            "cv_sd": _number(summary.get("fold_sd")),
            "started": summary.get("started"), "recorded": now(),
        }
        with closing(self._connect()) as db, db:
            old = db.execute("SELECT git_commit, data_fingerprint FROM runs WHERE competition=? AND run_id=?",
                             (row["competition"], row["run_id"])).fetchone()
            if old is not None:  # keep what the training recorded; a later submit fills only the gaps
                row["git_commit"] = old["git_commit"] or row["git_commit"]
                row["data_fingerprint"] = old["data_fingerprint"] or row["data_fingerprint"]
            db.execute(f"INSERT OR REPLACE INTO runs ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                       tuple(row.values()))

    def add_submission(self, competition: str, run_id: str, status: str, message: str | None = None,
                       file_sha256: str | None = None, **fields) -> int:
        row = {"competition": competition, "run_id": run_id, "status": status, "message": message,
               "file_sha256": file_sha256, "submitted": now(), **fields}
        with closing(self._connect()) as db, db:
            cursor = db.execute(f"INSERT INTO submissions ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                                tuple(row.values()))
            return int(cursor.lastrowid)

    def update_submission(self, submission_id: int, **fields) -> None:
        unknown = set(fields) - SUBMISSION_FIELDS
        if unknown:
            raise ValueError(f"unknown submission fields {sorted(unknown)}")
        with closing(self._connect()) as db, db:
            db.execute(f"UPDATE submissions SET {', '.join(f'{k}=?' for k in fields)} WHERE id=?",
                       (*fields.values(), submission_id))

    # ------------------------------------------------------------------ reading
    def runs(self, competition: str) -> list[dict]:
        with closing(self._connect()) as db:
            return [dict(r) for r in db.execute("SELECT * FROM runs WHERE competition=? ORDER BY started, run_id",
                                                (competition,))]

    def submissions(self, competition: str) -> list[dict]:
        with closing(self._connect()) as db:
            return [dict(r) for r in db.execute("SELECT * FROM submissions WHERE competition=? ORDER BY id",
                                                (competition,))]

    def table(self, competition: str) -> list[dict]:
        """One row per run beside its validation score: its latest scored submission (else its latest one)
        and how many submissions it had."""
        shown, counts = {}, {}
        for sub in self.submissions(competition):  # in submission order: later ones win
            counts[sub["run_id"]] = counts.get(sub["run_id"], 0) + 1
            old = shown.get(sub["run_id"])
            if old is None or sub["public_score"] is not None or old["public_score"] is None:
                shown[sub["run_id"]] = sub
        keys = ("status", "public_score", "private_score", "kaggle_ref", "submitted")
        rows = [{**run, **{k: shown.get(run["run_id"], {}).get(k) for k in keys},
                 "submissions": counts.get(run["run_id"], 0)} for run in self.runs(competition)]
        recorded = {r["run_id"] for r in rows}
        for run_id, sub in shown.items():  # submissions of runs recorded nowhere else
            if run_id not in recorded:
                rows.append({"competition": competition, "run_id": run_id, **{k: sub[k] for k in keys},
                             "submissions": counts[run_id]})
        return rows


def record_run(workspace, run: Run, data_dir) -> None:
    """Record a finished training run; called by the runner, so it is cheap and never fatal."""
    try:
        from harness.data.fingerprint import data_fingerprint, workspace_cache

        fingerprint = data_fingerprint(data_dir, workspace_cache(workspace)) if data_dir else None
        Leaderboard(workspace).record_run(run, fingerprint)
    except Exception as exc:  # the leaderboard is a record, not a reason to lose a trained run
        click.echo(f"warning: could not record run {run.id} in the leaderboard ({type(exc).__name__}: {exc})", err=True)


def _number(value):
    return float(value) if isinstance(value, (int, float)) and np.isfinite(value) else None


def _fmt(value, width: int, digits: int = 5) -> str:
    if value is None:
        return f"{'-':>{width}}"
    if isinstance(value, float):
        return f"{value:>{width}.{digits}f}"
    return f"{str(value):>{width}}"


def format_table(rows: list[dict]) -> str:
    header = (f"{'run':<20} {'metric':<10} {'scheme':<11} {'validation':>10} {'cv sd':>8} {'public':>10} {'private':>10} "
              f"{'subs':>4} {'status':<8} {'config':<12} {'commit':<18} {'data':<16}")
    lines = [header]
    for r in rows:
        scheme = (r.get("scheme") or "holdout") + (f"×{r['folds']}" if r.get("folds") else "")
        lines.append(f"{r['run_id']:<20} {(r.get('metric') or '-'):<10} {scheme:<11} {_fmt(r.get('validation_score'), 10)} "
                     f"{_fmt(r.get('cv_sd'), 8)} "
                     f"{_fmt(r.get('public_score'), 10)} {_fmt(r.get('private_score'), 10)} {r.get('submissions', 0):>4} "
                     f"{(r.get('status') or '-'):<8} {(r.get('config_hash') or '-'):<12} "
                     f"{(r.get('git_commit') or '-'):<18} {(r.get('data_fingerprint') or '-'):<16}")
    return "\n".join(lines)


def rank_correlation(x, y) -> float | None:
    """Spearman's rank correlation (ties get average ranks); None with fewer than 3 points."""
    import pandas as pd

    if len(x) < 3:
        return None
    rx, ry = pd.Series(x).rank().to_numpy(), pd.Series(y).rank().to_numpy()
    if rx.std() == 0 or ry.std() == 0:
        return None
    return float(np.corrcoef(rx, ry)[0, 1])


def plot_validation_vs_public(rows: list[dict], path, competition: str) -> int:
    """Scatter validation against public score for runs with both; the number of points plotted."""
    from harness.train.plots import plt, save_figure

    points = [(r["validation_score"], r["public_score"], r["run_id"]) for r in rows
              if r.get("validation_score") is not None and r.get("public_score") is not None]
    fig, ax = plt.subplots(figsize=(6, 5))
    if points:
        x, y, labels = zip(*points)
        ax.scatter(x, y, color="tab:blue")
        for xi, yi, label in zip(x, y, labels):
            ax.annotate(label, (xi, yi), fontsize=7, xytext=(3, 3), textcoords="offset points")
        lo, hi = min(min(x), min(y)), max(max(x), max(y))
        ax.plot([lo, hi], [lo, hi], color="grey", lw=0.8, ls="--", label="public = validation")
        ax.legend(loc="best", fontsize=8)
    rho = rank_correlation([p[0] for p in points], [p[1] for p in points])
    metric = next((r.get("metric") for r in rows if r.get("metric")), "score")
    scored = [r for r in rows if r.get("public_score") is not None]
    public = "held-out (local)" if scored and all(r.get("status") == "local" for r in scored) else "public"
    title = f"{competition}: validation vs {public} {metric} ({len(points)} runs)"
    if rho is not None:
        title += f"\nrank correlation {rho:+.2f}"
    ax.set(xlabel=f"validation {metric}", ylabel=f"{public} {metric}", title=title)
    save_figure(fig, path)
    return len(points)

