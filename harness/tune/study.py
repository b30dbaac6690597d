"""Optuna studies for any competition: storage, sampler, pruner and the objective (one training run).

Storage: by default an SQLite file in the workspace; any SQLAlchemy URL (``postgresql://...``) lets
workers on many machines share one study by running the same command; ``journal:PATH`` (or a path
ending in ``.log``) is Optuna's append-only journal file, for a shared file system without a server.
On the SQL storages every running trial sends a heartbeat; when a worker dies (SIGKILL, lost
machine) its trial is marked FAILED by the next worker that starts a trial after the grace period.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import platform
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import optuna

from harness.runs import runner
from harness.runs.kfold import config_folds, train_folds
from harness.config.loading import apply_overrides, get
from harness.errors import HarnessError
from harness.progress import echo, progress_bar
from harness.tune import DEFAULT_HEARTBEAT, PRUNERS, SAMPLERS, check_budget
from harness.tune.pruning import OptunaPruning, recipe_epochs

_MISSING = object()
PG_CONNECT_TIMEOUT = 10  # seconds


# ---------------------------------------------------------------------- storage
def default_storage(workspace: Path) -> str:
    path = (Path(workspace) / "tune" / "optuna.db").resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def is_journal(url: str) -> bool:
    return url.startswith("journal:") or url.endswith(".log")


def shown_url(url: str) -> str:
    """The storage URL without its password, for messages."""
    if is_journal(url):
        return url
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL at all; say it as given
        return url


def database_url(url: str) -> str:
    """SQLAlchemy 2.1 reads postgresql:// as the psycopg 3 driver; harness[postgres] installs psycopg2,
    so use it when it is the one here."""
    from importlib.util import find_spec

    scheme, rest = url.split("://", 1)
    if scheme in ("postgresql", "postgres") and find_spec("psycopg") is None and find_spec("psycopg2") is not None:
        return f"postgresql+psycopg2://{rest}"
    return url


def quiet_optuna() -> None:
    """Optuna's per-trial INFO lines would interleave with the progress bar; failures get one line each."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)


def _stale_trial(study, trial) -> None:
    echo(f"trial {trial.number}: its worker stopped sending heartbeats (killed?); marked failed", err=True)


def check_sqlite_path(url: str) -> None:
    """An SQLite URL's file must be creatable: its folder must exist and the path must not be a folder."""
    from sqlalchemy.engine import make_url

    try:
        database = make_url(url).database
    except Exception:
        raise HarnessError(f"--storage {url!r} is not a database URL; give sqlite:///FILE, "
                           "postgresql://USER@HOST/DB or journal:PATH") from None
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    if path.is_dir():
        raise HarnessError(f"--storage {url}: {path} is a directory; give the path of a database file in it, "
                           f"e.g. sqlite:///{path / 'optuna.db'}")
    if not path.parent.is_dir():
        raise HarnessError(f"--storage {url}: the folder {path.parent} does not exist; create it or give "
                           "another path (sqlite:///FILE takes a relative path, sqlite:////FILE an absolute one)")


def check_journal_folder(url: str, path: Path) -> None:
    """The journal's folder is created if missing, which cannot be done below a file."""
    for folder in path.parents:
        if folder.exists():
            if not folder.is_dir():
                raise HarnessError(f"--storage {url}: {folder} is a file, not a folder; give a journal path "
                                   "in a folder")
            return


def is_journal_file(path: Path) -> bool:
    """Missing, empty, or JSON objects with an op_code one a line, as Optuna writes them (a last line
    without its newline may be another worker's write in progress, which Optuna skips too)."""
    if not path.exists():
        return True
    with open(path, "rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                break
            try:
                log = json.loads(line)
            except ValueError:  # not JSON, or not text at all
                return False
            if not (isinstance(log, dict) and "op_code" in log):
                return False
    return True


def make_storage(url: str | None, workspace: Path, heartbeat: int = DEFAULT_HEARTBEAT):
    """An Optuna storage for ``url`` (None: the workspace's SQLite file)."""
    url = url or default_storage(workspace)
    quiet_optuna()
    if is_journal(url):
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        path = Path(url.removeprefix("journal:"))
        if path.is_dir():
            raise HarnessError(f"--storage {url}: {path} is a directory; give the path of a journal file in it, "
                               f"e.g. journal:{path / 'optuna.log'}")
        check_journal_folder(url, path)
        not_journal = HarnessError(f"--storage {url}: {path} is not an Optuna journal file; give another path "
                                   "or remove it")
        try:
            if not is_journal_file(path):  # before Optuna appends to it
                raise not_journal
            path.parent.mkdir(parents=True, exist_ok=True)
            return JournalStorage(JournalFileBackend(str(path)))  # replays the whole journal
        except OSError as exc:
            raise HarnessError(f"cannot open study journal {path}: {exc.strerror or exc}") from None
        except (ValueError, KeyError, TypeError, AssertionError):  # JSON lines, but not operations Optuna knows
            raise not_journal from None
    if "://" not in url:
        raise HarnessError(f"--storage {url!r}: give a database URL (sqlite:///FILE, postgresql://USER@HOST/DB) "
                           "or journal:PATH for a journal file")
    if url.startswith("sqlite"):
        check_sqlite_path(url)
        engine_kwargs = {"connect_args": {"timeout": 60}}  # seconds to wait for another worker's lock
    elif url.startswith(("postgresql", "postgres")):
        # A server that does not answer is said in seconds, not after the system's minutes-long TCP timeout.
        engine_kwargs = {"connect_args": {"connect_timeout": PG_CONNECT_TIMEOUT}}
    else:
        engine_kwargs = {}
    for attempt in range(3):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # the heartbeat is "experimental"
                return optuna.storages.RDBStorage(
                    database_url(url), engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat,
                    grace_period=2 * heartbeat, heartbeat_stale_trial_callback=_stale_trial,
                )
        except ImportError as exc:
            hint = ("pip install 'harness[postgres]'" if url.startswith("postgres") else
                    "install the driver SQLAlchemy names above, or use PostgreSQL (pip install 'harness[postgres]')")
            raise HarnessError(f"--storage {shown_url(url)}: missing database driver ({exc}); {hint}") from None
        except Exception as exc:  # SQLAlchemy's errors: say which server and why, in one line
            if attempt < 2 and ("duplicate key" in str(exc) or "already exists" in str(exc)):
                # Workers starting together on a fresh database race to create Optuna's tables; retry.
                time.sleep(0.5 + attempt)
                continue
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise HarnessError(f"cannot open study storage {shown_url(url)}: {reason}") from None


# ---------------------------------------------------------------------- sampler and pruner
def make_sampler(name: str, seed: int | None):
    if seed is not None:  # callers add a worker's rank or the trials so far to --seed; numpy takes 32 bits
        seed %= 2**32
    if name == "tpe":
        # constant_liar: running trials count as (bad) results, so parallel workers spread out.
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise HarnessError(f"--sampler {name!r}: use one of {', '.join(SAMPLERS)}")


def make_pruner(name: str, max_epochs: int | None = None, folds: int | None = None):
    """``max_epochs``: the epochs of one run over its whole recipe (``recipe_epochs``), the steps trials report;
    under K folds (``folds``) a trial reports its running mean after each fold instead."""
    if name == "median" and folds:
        # Each step is a whole fold model's score: a trial whose first fold is worse than the others'
        # median may stop after that one fold.
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    if name == "hyperband" and folds:
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=folds)
    if name == "median":
        # Not before half the epochs (Optuna prunes from step n_warmup_steps on): under a one-cycle schedule
        # the early scores of high-rate trials look bad and say little about the end (on MovieLens u1,
        # pruning from epoch 1 cut 10 of 16 trials, 8 of them after one epoch).
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=max(1, ((max_epochs or 1) + 1) // 2))
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max_epochs or "auto")
    if name == "none":
        return optuna.pruners.NopPruner()
    raise HarnessError(f"--pruner {name!r}: use one of {', '.join(PRUNERS)}")


def direction_of(competition, config: dict) -> str:
    metrics = competition.scored_by(config)
    return metrics[0].direction if metrics else "minimize"


def check_competition(study: optuna.Study, competition: str | None) -> None:
    """A study belongs to the competition that created it: another one's trials would mix unrelated scores."""
    owner = study.user_attrs.get("competition")
    if competition is not None and owner is not None and owner != competition:
        raise HarnessError(f"study {study.study_name!r} in this storage is a study of {owner}, not {competition}; "
                           f"pick another name with --study")


def open_study(storage, study_name: str, direction: str, sampler=None, pruner=None,
               config: dict | None = None, competition: str | None = None) -> optuna.Study:
    """Create the study, or load it if it exists (rerunning a command continues its study)."""
    study = optuna.create_study(storage=storage, study_name=study_name, direction=direction, sampler=sampler,
                                pruner=pruner, load_if_exists=True)
    check_competition(study, competition)
    if study.direction.name.lower() != direction:
        raise HarnessError(f"study {study_name!r} exists and {study.direction.name.lower()}s its objective, "
                           f"but this competition's metric should be {direction}d; pick another --study")
    if competition is not None and "competition" not in study.user_attrs:
        study.set_user_attr("competition", competition)
    if config is not None and "config" not in study.user_attrs:
        study.set_user_attr("config", config)  # what export falls back on when a run folder is elsewhere
    return study


def load_study(storage, study_name: str, competition: str | None = None) -> optuna.Study:
    """An existing study; with ``competition``, it must be that competition's."""
    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        raise HarnessError(f"no study {study_name!r} in this storage (studies: {', '.join(names) or 'none'}); "
                           f"run `harness tune NAME --trials N` first") from None
    check_competition(study, competition)
    return study


def fail_stale_trials(study: optuna.Study) -> None:
    """Mark FAILED the running trials whose worker stopped sending heartbeats (SQL storages only)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def check_search_space(config: dict) -> None:
    """Every [search] key must name an entry of the config, so a typo fails once, not in every trial."""
    search = config.get("search") or {}
    if not search:
        raise HarnessError("the config has no [search] table; add one, e.g. "
                           '"train.lr" = { type = "float", low = 1e-4, high = 1e-2, log = true }')
    for key in search:
        if get(config, key, _MISSING) is _MISSING:
            raise HarnessError(f"[search] {key!r} is not a key of the config; search keys are section.key entries")


# ---------------------------------------------------------------------- the objective
@dataclass
class Objective:
    """One trial = one quiet training run with the trial's overrides; returns the validation score."""

    competition: object
    config: dict
    data_dir: Path
    workspace: Path
    device: str | None = None
    # Time inside runner.train per trial (wall, and CPU of this process): the rest of a trial's time is
    # the tuning machinery's (sampling, storage, heartbeat, pruning reports, progress bar).
    train_seconds: list = field(default_factory=list)
    train_cpu_seconds: list = field(default_factory=list)
    messages_seen: set = field(default_factory=set)

    def __call__(self, trial: optuna.Trial) -> float:
        trial.set_user_attr("machine", platform.node())
        trial.set_user_attr("workspace", str(Path(self.workspace).resolve()))
        log = io.StringIO()
        started = None
        try:
            overrides = self.competition.search_space(trial, self.config)
            config = apply_overrides(self.config, overrides)
            started, started_cpu = time.perf_counter(), time.process_time()
            with contextlib.redirect_stderr(log):  # the plugin's warnings, said once below, not every trial
                # The run id as soon as the folder exists: a pruned, failed or killed trial still points
                # at what it left behind.
                record_run = lambda run: trial.set_user_attr("run", run.id)  # noqa: E731
                if config_folds(config):
                    run = train_folds(self.competition, config, self.data_dir, self.workspace, config_folds(config),
                                      device=self.device, echo=False, progress=False, on_run=record_run,
                                      on_fold=lambda i, scores: report_fold(trial, i, scores))
                else:
                    run = runner.train(self.competition, config, self.data_dir, self.workspace, device=self.device,
                                       callbacks=[OptunaPruning(trial)], echo=False, progress=False,
                                       on_run=record_run)
        except optuna.TrialPruned:
            raise
        except Exception as exc:
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}"[:2000])
            raise
        finally:
            if started is not None:
                self.train_seconds.append(time.perf_counter() - started)
                self.train_cpu_seconds.append(time.process_time() - started_cpu)
            self._echo_new_messages(log.getvalue())
        summary = run.summary()
        trial.set_user_attr("run", run.id)
        trial.set_user_attr("train_seconds", summary["train_seconds"])
        score = summary["primary_score"]
        if score is None or math.isnan(score):
            trial.set_user_attr("error", "the run ended without a validation score (NaN)")
            raise HarnessError(f"trial {trial.number}: no validation score (NaN); see run {run.id}")
        return float(score)

    def _echo_new_messages(self, text: str) -> None:
        for line in text.splitlines():
            if line.strip() and line not in self.messages_seen:
                self.messages_seen.add(line)
                echo(line, err=True)


def report_fold(trial: optuna.Trial, fold: int, scores: list[float]) -> None:
    """After each fold: the running mean of the fold scores, so a bad trial can stop after one fold."""
    mean = float(np.mean(scores))
    trial.report(mean, fold + 1)
    if trial.should_prune():
        raise optuna.TrialPruned(f"pruned after fold {fold + 1} with a running mean of {mean:.5f}")


def best_postfix(study: optuna.Study) -> str | None:
    """The tune bar's postfix: the best value so far and its trial; None before any trial finished."""
    try:
        return f"best {study.best_value:.5f} (trial {study.best_trial.number})"
    except ValueError:
        return None


def optimize(study: optuna.Study, objective, n_trials: int | None, timeout: float | None,
             progress: bool | None = None) -> None:
    """Run trials with one progress bar over them; a trial that raises is recorded FAILED, not fatal.

    The bar shows on a terminal only (``progress``: True forces it, False hides it); its "best" is
    set from the finished trial's own value before the bar is drawn for that trial.
    """
    quiet_optuna()
    bar = progress_bar(total=n_trials, desc=f"study {study.study_name}", unit="trial",
                       disable=None if progress is None else not progress)

    def after_trial(study, trial):
        if trial.state == optuna.trial.TrialState.FAIL:
            echo(f"trial {trial.number} failed: {trial.user_attrs.get('error', 'see the log')}", err=True)
        postfix = best_postfix(study)
        if postfix is not None:
            bar.set_postfix_str(postfix, refresh=False)
        bar.update()
        bar.refresh()  # update() skips drawing within mininterval of the last frame: draw this trial's

    try:
        study.optimize(objective, n_trials=n_trials, timeout=timeout, catch=(Exception,), callbacks=[after_trial],
                       gc_after_trial=False)
    finally:
        bar.close()


def tune(competition, config: dict, data_dir: Path, workspace: Path, *, n_trials: int | None, timeout=None,
         storage_url: str | None = None, study_name: str | None = None, sampler: str = "tpe",
         pruner: str = "median", seed: int | None = None, device=None, heartbeat: int = DEFAULT_HEARTBEAT,
         progress: bool | None = None, devices: list[str] | None = None) -> tuple[optuna.Study, Objective | None]:
    """Run ``n_trials`` trials (or until ``timeout``) of the study. With ``devices``, one worker process per
    device shares them (the first ``n_trials % len(devices)`` workers one more), each on the same storage
    as workers on other machines would be; the objective returned is then None."""
    check_budget(n_trials, timeout)
    check_search_space(config)
    storage_url = storage_url or default_storage(workspace)
    storage = make_storage(storage_url, workspace, heartbeat)
    study_name = study_name or competition.name
    study = open_study(storage, study_name, direction_of(competition, config), make_sampler(sampler, seed),
                       make_pruner(pruner, recipe_epochs(competition, config), folds=config_folds(config)),
                       config=config, competition=competition.name)
    if devices:
        from harness.train import distributed

        distributed.check_devices(devices)
        if hasattr(storage, "engine"):  # the workers open their own connections
            storage.engine.dispose()
        distributed.launch(len(devices), tune_worker, devices, competition, config, data_dir, workspace, n_trials,
                           timeout, storage_url, study_name, sampler, pruner, seed, heartbeat,
                           what="search", then="rerun the command to go on with the study")
        return load_study(make_storage(storage_url, workspace, heartbeat), study_name), None
    objective = Objective(competition, config, data_dir, workspace, device)
    optimize(study, objective, n_trials, timeout, progress=progress)
    return study, objective


def tune_worker(devices, competition, config, data_dir, workspace, n_trials, timeout, storage_url, study_name,
                sampler, pruner, seed, heartbeat) -> None:
    """One worker of ``tune(devices=...)``: its share of the trials on its device, with its own sampler seed
    (else the workers would suggest the same trials); only the first shows a bar."""
    from harness.train import distributed

    device = distributed.device_of(devices)
    rank = distributed.local_rank()
    if n_trials is not None:
        n_trials = n_trials // len(devices) + (rank < n_trials % len(devices))
        if n_trials == 0:
            return
    storage = make_storage(storage_url, workspace, heartbeat)
    study = open_study(storage, study_name, direction_of(competition, config),
                       make_sampler(sampler, None if seed is None else seed + rank),
                       make_pruner(pruner, recipe_epochs(competition, config), folds=config_folds(config)),
                       competition=competition.name)
    objective = Objective(competition, config, data_dir, workspace, device)
    optimize(study, objective, n_trials, timeout, progress=None if rank == 0 else False)
