"""The steps of `harness auto NAME`, one method each, run in order and skipped when the state says done.

    check      the data (downloaded first with --download), its folds and the metric
    baselines  one K-fold run per model kind with its default settings (kfold.train_folds)
    tune       one Optuna study per kind (harness.tune.study: its storage, sampler, pruner and objective),
               a trial at a time, the next trial going to the kind still improving fastest (plan.next_kind)
    ensemble   the nested OOF blend of the best runs and trials (harness.tune.ensemble.blend_runs)
    decide     whether the entry is worth a submission (decide.py)
    submit     harness.kaggle.submit: validated, uploaded, polled for its public score, recorded
    report     report.md and PNGs in the session folder (report.py)

Training output goes to the session's log.txt; the terminal gets one line per step, baseline and trial,
each ending with the budget left. A kill loses at most the trial (or baseline fold) in progress: the state
is saved after each, a killed baseline resumes at its fold, and a killed trial is marked failed in its
study (wasted) when the session resumes.
"""
from __future__ import annotations

import contextlib
import math
import statistics
import time
import traceback
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import click

from harness.auto import plan
from harness.auto.decide import Decision, best_earlier, decide
from harness.auto.spaces import ModelKind, kind_config, model_kinds
from harness.auto.state import Session
from harness.config.loading import config_hash
from harness.errors import HarnessError
from harness.runs.folder import Run
from harness.train import interrupts
from harness.tune import DEFAULT_HEARTBEAT

MAX_MEMBERS = 8  # runs in the ensemble at most
DEFAULT_FOLDS = 5  # for a competition whose config has no validation.folds


@dataclass
class Options:
    """The command's options. None: not given (a resumed session keeps what it was started with)."""

    budget: float | None = None
    trials: int | None = None
    folds: int | None = None
    kinds: list | None = None
    storage: str | None = None
    study: str | None = None
    sampler: str | None = None
    pruner: str | None = None
    seed: int | None = None
    heartbeat: int | None = None
    top: int | None = None
    blend: str | None = None
    wait: float | None = None
    device: str | None = None
    data_dir: str | None = None
    dry_run: bool = False
    download: bool = False
    restart: bool = False
    config_given: bool = False  # --config or --set: a resumed session says it keeps its own config
    poll: float = 5.0  # seconds between polls of the public score (tests shorten it)


DEFAULTS = {"sampler": "tpe", "pruner": "median", "heartbeat": DEFAULT_HEARTBEAT, "top": 3,
            "blend": "weights", "wait": 600.0}
SAVED = ("budget", "trials", "kinds", "storage", "study", "sampler", "pruner", "seed", "heartbeat", "top",
         "blend", "wait", "device", "data_dir", "dry_run", "download")


def has_password(url: str | None) -> bool:
    from harness.tune.study import shown_url

    return bool(url) and shown_url(url) != url


def effective(given: Options, saved: dict | None) -> Options:
    """The options of this session: those given now, else those it was started with, else the defaults."""
    saved = saved or {}
    out = Options(**{f.name: getattr(given, f.name) for f in fields(Options)})
    for name in SAVED:
        if name in ("dry_run", "download"):
            setattr(out, name, bool(getattr(given, name) or saved.get(name)))
        elif getattr(out, name) is None:
            setattr(out, name, saved.get(name, DEFAULTS.get(name)))
    if saved.get("storage_password") and given.storage is None:
        raise HarnessError("this session's --storage URL holds a password, which is never saved; give --storage "
                           "again to resume it")
    return out


def saved_options(options: Options) -> dict:
    """What the state file keeps of the options (never a storage password)."""
    out = {name: getattr(options, name) for name in SAVED}
    if has_password(options.storage):
        out["storage"], out["storage_password"] = None, True
    return out


@contextlib.contextmanager
def quiet(log_path: Path):
    """Training output (tables, fold lines, warnings) into the session's log instead of the terminal."""
    with open(log_path, "a", encoding="utf-8") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        yield log


class BudgetSpent(Exception):
    """Raised into a trial still training when the budget ends: the trial is stopped (and fails)."""


# Library code that an exception must not cut in the middle: LightGBM's Booster and Dataset methods free a C
# handle and then replace it (model_from_string, the end of every lgb.train); raised between the two, the object
# keeps the freed handle and frees it again when collected: a double free, a process abort.
UNINTERRUPTIBLE = (str(Path("lightgbm") / "basic.py"),)


def inside_uninterruptible(frame) -> bool:
    """Whether ``frame`` or a frame that called it runs code of UNINTERRUPTIBLE."""
    while frame is not None:
        if frame.f_code.co_filename.endswith(UNINTERRUPTIBLE):
            return True
        frame = frame.f_back
    return False


@contextlib.contextmanager
def alarm(seconds: float | None):
    """Raise BudgetSpent inside the block after ``seconds`` (None: never; only where SIGALRM exists and in
    the main thread, as in the CLI)."""
    import signal
    import threading

    usable = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if seconds is None or not usable:
        yield
        return

    def ring(signum, frame):
        spent = BudgetSpent(f"the budget ran out during this trial (after {plan.format_seconds(seconds)})")
        if inside_uninterruptible(frame):
            interrupts.defer(spent)  # raised by LightGBM's next round callback
            signal.setitimer(signal.ITIMER_REAL, 0.005, 1.0)  # or again in 5 ms, should it be out by then
            return
        raise spent

    old = signal.signal(signal.SIGALRM, ring)
    # It rings again every second until the block ends: Python swallows an exception raised while a
    # __del__ or a weakref callback runs (the garbage collector's), and a ring landing there is lost.
    signal.setitimer(signal.ITIMER_REAL, max(0.01, seconds), 1.0)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        interrupts.clear()


class Started:
    """The study's objective, telling the session which trial it is about to train (so a kill is known)."""

    def __init__(self, objective, on_start):
        self.objective, self.on_start = objective, on_start
        self.number = None

    def __call__(self, trial):
        self.number = trial.number
        self.on_start(trial)
        return self.objective(trial)


def fold_sd(scores) -> float | None:
    scores = [float(s) for s in scores if s is not None]
    return float(statistics.stdev(scores)) if len(scores) >= 2 else None


def fmt(value, digits: int = 5) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) and math.isfinite(value) else "-"


class Auto:
    def __init__(self, competition, config: dict, workspace: Path, given: Options):
        self.comp, self.workspace = competition, Path(workspace)
        if given.budget is None and given.trials is None:
            latest = Session.unfinished(self.workspace, competition.name)
            if latest is None or "options" not in latest.data or given.restart:
                plan.check_limits(None, None)  # a new session must be told how long it may work
        self.session, self.previous = Session.open(self.workspace, competition.name, restart=given.restart)
        data = self.session.data
        self.resumed = "options" in data
        self.options = effective(given, data.get("options"))
        plan.check_limits(self.options.budget, self.options.trials)
        data["options"] = saved_options(self.options)
        self.limits = plan.Limits(self.options.budget, self.options.trials)
        self.log = self.session.path("log.txt")
        self.given_config = given.config_given
        self.config = self.session_config(config, given.folds)
        self.error: HarnessError | None = None
        self.storage = None
        self.studies: dict = {}
        self.session.save()

    # ------------------------------------------------------------------ helpers
    @property
    def name(self) -> str:
        return self.comp.name

    def session_config(self, config: dict, folds: int | None) -> dict:
        """The config every run of the session starts from, with its K folds (``folds``: --folds, else the
        config's validation.folds, else 5); a resumed session keeps its own."""
        import copy

        from harness.runs.kfold import config_folds

        data = self.session.data
        config = copy.deepcopy(config)
        config.setdefault("validation", {})["folds"] = folds or config_folds(config) or DEFAULT_FOLDS
        if "config" in data:
            if self.given_config and config_hash(config) != data["config_hash"]:
                click.echo(f"note: resuming session {self.session.id} with the config it started with; pass "
                           "--restart to start a new session with this one")
            return data["config"]
        data["config"], data["config_hash"] = config, config_hash(config)
        return config

    @property
    def n_folds(self) -> int:
        return int(self.config["validation"]["folds"])

    @property
    def direction(self) -> str:
        return self.session.data.get("direction", "minimize")

    @property
    def metric(self) -> str:
        return self.session.data.get("metric", "score")

    def trials_done(self) -> int:
        return sum(len(k["trials"]) for k in self.session.data["tuning"]["kinds"].values())

    def say(self, step: str, text: str) -> None:
        self.session.tick()
        i = plan.STEPS.index(step) + 1
        left = self.limits.describe_left(self.session.spent, self.trials_done())
        click.echo(f"auto {self.name} [{i}/{len(plan.STEPS)} {step}] {text}" + (f" · {left}" if left else ""))

    def kinds(self) -> list[ModelKind]:
        return [ModelKind(k["label"], k["overrides"]) for k in self.session.data["kinds"]]

    def data_dir(self) -> Path:
        from harness.workspace import data_dir_for

        return data_dir_for(self.workspace, self.comp, self.options.data_dir)

    def study_name(self, label: str) -> str:
        return f"{self.options.study or self.name + '-auto'}-{label}"

    def open_studies(self, create: bool) -> dict:
        """The tuned kinds' studies (``create``: open them, creating any that is missing)."""
        if self.studies:
            return self.studies
        from harness.tune.pruning import recipe_epochs
        from harness.tune.study import load_study, make_pruner, make_sampler, make_storage, open_study

        self.storage = make_storage(self.options.storage, self.workspace, self.options.heartbeat)
        for kind in self.kinds():
            cfg = kind_config(self.comp, self.config, kind)
            if "search" not in cfg or self.session.data["baselines"].get(kind.label, {}).get("status") != "done":
                continue
            name = self.study_name(kind.label)
            if create:
                study = open_study(self.storage, name, self.direction, None,
                                   make_pruner(self.options.pruner, recipe_epochs(self.comp, cfg), folds=self.n_folds),
                                   config=cfg, competition=self.name)
            else:
                try:
                    study = load_study(self.storage, name, self.name)
                except HarnessError:
                    continue
            # A seeded sampler continues from the trials already there, instead of repeating its first draws.
            seed = None if self.options.seed is None else self.options.seed + len(study.get_trials(deepcopy=False))
            study.sampler = make_sampler(self.options.sampler, seed)
            self.studies[kind.label] = (study, cfg)
        return self.studies

    # ------------------------------------------------------------------ the flow
    def run(self) -> Session:
        s = self.session
        if self.resumed:
            done = [step for step in plan.STEPS if s.done(step)]
            click.echo(f"auto {self.name}: resuming session {s.id} ({plan.format_seconds(s.spent)} spent; done: "
                       f"{', '.join(done) or 'nothing yet'}); log {self.log}")
        else:
            click.echo(f"auto {self.name}: session {s.id}; training output goes to {self.log}")
        for step in plan.STEPS:
            if s.done(step):
                continue
            s.begin(step)
            note = getattr(self, f"step_{step}")()
            s.end(step, note)
            self.say(step, note)
        entry = s.data.get("ensemble", {})
        click.echo(f"auto {self.name}: entry {entry.get('run', '-')} CV {self.metric} {fmt(entry.get('cv'))} "
                   f"± {fmt(entry.get('sd'))}; {s.data.get('submission', {}).get('note', '')}")
        click.echo(f"report: {s.path('report.md')}")
        if self.error is not None:  # the upload failed: the session stays open, and a rerun tries it again
            s.step("submit")["status"] = s.step("report")["status"] = "failed"
            s.save()
            raise HarnessError(f"{self.error}; `harness auto {self.name}` again retries the submission")
        s.finish()
        return s

    # ------------------------------------------------------------------ 1. check
    def step_check(self) -> str:
        from harness.data.fingerprint import data_fingerprint, workspace_cache
        from harness.runs.kfold import fold_plan

        data = self.session.data
        if self.options.download:
            from harness.kaggle.download import download_data

            with quiet(self.log):
                download_data(self.comp, self.workspace / "data" / self.name)
        data_dir = self.data_dir()
        with quiet(self.log):
            raw = self.comp.load(data_dir, self.config)
            self.comp.check_inputs(raw, self.config)
            rows = self.comp.fold_rows(raw, self.config)
            if rows is None:
                raise HarnessError(f"{self.name} cannot train under K folds (its plugin gives no fold_rows), which "
                                   "`harness auto` needs for honest CV scores and blends; use `harness train` and "
                                   "`harness tune` instead")
            folds = self.comp.predefined_folds(raw, self.config, rows) or fold_plan(rows, self.config, self.n_folds)
        if folds.n_folds < 2:
            raise HarnessError(f"validation.scheme = {self.config['validation'].get('scheme')!r} gives {folds.n_folds} "
                               "fold; `harness auto` needs 2 or more: set validation.scheme to kfold, stratified, "
                               "group or time (--set validation.scheme=...)")
        metric = self.comp.scored_by(self.config)[0]
        data.update(metric=metric.name, direction=metric.direction, data_dir=str(data_dir), rows=len(rows),
                    folds_described=folds.describe(), kaggle_slug=self.comp.kaggle_slug,
                    fingerprint=data_fingerprint(data_dir, workspace_cache(self.workspace)))
        return (f"{len(rows)} training rows in {data_dir}; {folds.describe()}; metric {metric.name} "
                f"({metric.direction}d)")

    # ------------------------------------------------------------------ 2. baselines
    def step_baselines(self) -> str:
        from harness.runs.kfold import train_folds

        data = self.session.data
        if "kinds" not in data:
            data["kinds"] = [asdict(k) for k in model_kinds(self.comp, self.config, self.options.kinds)]
            self.reuse_baselines()
        baselines = data["baselines"]
        for kind in self.kinds():
            entry = baselines.setdefault(kind.label, {"status": "pending"})
            if entry["status"] == "done":
                if entry.get("reused"):
                    self.say("baselines", f"{kind.label}: CV {self.metric} {fmt(entry['cv'])} ± {fmt(entry['sd'])}, "
                                          f"reused from session {entry['reused']} (run {entry['run']})")
                continue
            cfg = kind_config(self.comp, self.config, kind)
            resume = None
            if entry.get("run"):
                run = Run.at(self.workspace, self.name, entry["run"])
                resume = run if run.dir.is_dir() and not run.finished else None
            reference = self.reference_folds()
            started = time.monotonic()

            def on_run(run, entry=entry):
                entry["run"] = run.id
                self.session.save()

            # The first baseline always finishes: without one there is no entry. Each later one runs on what the
            # budget has left (less the ensemble's and report's reserve) and is stopped where it ends; its
            # finished folds stay, so a later `harness auto` with more budget resumes it at its fold.
            first = not any(v["status"] == "done" for v in baselines.values())
            left = self.limits.seconds_left(self.session.spent)
            budget = None if first or left is None else left - plan.reserve(self.limits.budget)
            if budget is not None and budget <= 0:
                entry.update(status="stopped", error="the budget was spent before it began")
                self.session.save()
                self.say("baselines", f"{kind.label}: not trained, the budget is spent")
                continue
            try:
                with quiet(self.log), alarm(budget):
                    run = train_folds(self.comp, cfg, self.data_dir(), self.workspace, self.n_folds,
                                      device=self.options.device, resume=resume, echo=False, progress=False,
                                      on_run=on_run, on_fold=lambda i, scores: self.session.save(),
                                      folds_file=reference if resume is None else None)
            except BudgetSpent as exc:
                entry.update(status="stopped", error=str(exc), seconds=round(time.monotonic() - started, 1))
                self.session.save()
                self.say("baselines", f"{kind.label}: stopped, the budget is spent (its finished folds are kept: "
                                      "`harness auto` again with more budget resumes it)")
                continue
            except Exception as exc:  # one kind failing (LightGBM missing, a NaN score) leaves the others
                self.log_failure(f"baseline {kind.label}", exc)
                entry.update(status="failed", error=f"{type(exc).__name__}: {exc}"[:500])
                self.session.save()
                self.say("baselines", f"{kind.label}: failed ({entry['error']}); see {self.log}")
                continue
            summary = run.summary()
            entry.update(status="done", run=run.id, cv=summary["cv_score"], sd=summary.get("fold_sd"),
                         fold_scores=summary.get("fold_scores"), seconds=round(time.monotonic() - started, 1))
            self.session.save()
            self.say("baselines", f"{kind.label}: CV {self.metric} {fmt(entry['cv'])} ± {fmt(entry['sd'])} "
                                  f"(run {run.id}, {plan.format_seconds(entry['seconds'])})")
        done = {k: v for k, v in baselines.items() if v["status"] == "done"}
        if not done:
            errors = "; ".join(f"{k}: {v.get('error')}" for k, v in baselines.items())
            raise HarnessError(f"no baseline of {self.name} trained ({errors}); see {self.log}")
        return "; ".join(f"{k} CV {fmt(v['cv'])} ± {fmt(v['sd'])}" for k, v in done.items())

    def reuse_baselines(self) -> None:
        """A new session on the same config reuses the last finished session's baselines, and resumes one
        the budget stopped (at its first unfinished fold)."""
        prev = self.previous
        if prev is None or prev.data.get("config_hash") != self.session.data["config_hash"]:
            return
        if prev.data.get("kinds") != self.session.data["kinds"]:
            return
        for label, entry in prev.data.get("baselines", {}).items():
            if entry.get("status") == "done" and Run.at(self.workspace, self.name, entry["run"]).finished:
                self.session.data["baselines"][label] = {**entry, "reused": entry.get("reused") or prev.id}
            elif entry.get("status") == "stopped" and entry.get("run"):
                self.session.data["baselines"][label] = {"status": "pending", "run": entry["run"]}

    def reference_folds(self) -> Path | None:
        """The first finished baseline's folds.csv, on which every later run trains."""
        for entry in self.session.data["baselines"].values():
            if entry.get("status") == "done":
                path = Run.at(self.workspace, self.name, entry["run"]).path("folds.csv")
                if path.is_file():
                    return path
        return None

    def log_failure(self, what: str, exc: BaseException) -> None:
        with open(self.log, "a", encoding="utf-8") as log:
            log.write(f"\n{what} failed:\n{''.join(traceback.format_exception(exc))}\n")

    # ------------------------------------------------------------------ 3. tune
    def step_tune(self) -> str:
        if self.limits.trials == 0:
            return "no tuning (--trials 0)"
        studies = self.open_studies(create=True)
        if not studies:
            return (f"nothing to tune: {self.name}'s config has no [search] table (add one to tune it); the "
                    "baselines go on to the ensemble")
        tuning = self.session.data["tuning"]
        self.fail_killed_trial()
        for label, (study, _) in studies.items():
            tuning["kinds"].setdefault(label, {"study": study.study_name, "trials": []})
        dropped: set[str] = set()
        reason = None
        while True:
            history = {label: self.history(label) for label in studies if label not in dropped}
            if not history:
                reason = "every kind failed three trials in a row"
                break
            label, reason = None, None
            for kind in plan.rank_kinds(history, self.direction):  # the first in line whose trial fits
                why = self.limits.stop_reason(self.session.spent, self.trials_done(), self.expected_seconds(kind))
                if why is None:
                    label = kind
                    break
                reason = reason or (f"{kind}: {why}" if len(history) > 1 and "next trial" in why else why)
            if label is None:
                break
            reason = None
            entry = self.run_trial(label, *studies[label])
            best = plan.best_of([v for v, _ in self.history(label)], self.direction)
            value = f"CV {self.metric} {fmt(entry['value'])}" if entry["value"] is not None else entry["state"]
            self.say("tune", f"{label} trial {entry['number']}: {value} ({plan.format_seconds(entry['seconds'])}); "
                             f"best {label} {fmt(best)}")
            recent = tuning["kinds"][label]["trials"][-3:]
            if len(recent) == 3 and all(t["state"] == "fail" for t in recent):
                dropped.add(label)
                self.say("tune", f"{label}: three failed trials in a row; no more trials for it (see {self.log})")
        counts = {}
        for kind in tuning["kinds"].values():
            for t in kind["trials"]:
                counts[t["state"]] = counts.get(t["state"], 0) + 1
        bests = ", ".join(f"{label} {fmt(plan.best_of([v for v, _ in self.history(label)], self.direction))}"
                          for label in studies)
        tally = ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "none"
        return f"{self.trials_done()} trial(s) ({tally}); best {bests}; stopped: {reason}"

    def history(self, label: str) -> list[tuple[float | None, float]]:
        """The kind's baseline, then this session's trials: (CV or None, seconds)."""
        base = self.session.data["baselines"][label]
        trials = self.session.data["tuning"]["kinds"].get(label, {}).get("trials", [])
        return [(base["cv"], float(base.get("seconds") or 0.0))] + [(t["value"], t["seconds"]) for t in trials]

    def expected_seconds(self, label: str) -> float:
        """How long the kind's next trial should take: the median of its trials so far, else its baseline."""
        trials = [t["seconds"] for t in self.session.data["tuning"]["kinds"].get(label, {}).get("trials", [])
                  if t["state"] == "complete"]
        if trials:
            return float(statistics.median(trials))
        return float(self.session.data["baselines"][label].get("seconds") or 0.0)

    def run_trial(self, label: str, study, cfg: dict) -> dict:
        import optuna

        from harness.tune.study import Objective, check_search_space, optimize

        check_search_space(cfg)
        tuning = self.session.data["tuning"]
        # Saved before the trial exists, so that a kill at any moment leaves a trace to clean up.
        tuning["running"] = {"kind": label, "study": study.study_name, "number": None,
                             "after": len(study.get_trials(deepcopy=False))}
        self.session.save()

        def on_start(trial):
            tuning["running"]["number"] = trial.number
            self.session.save()
            trial.set_user_attr("auto_session", self.session.id)

        objective = Started(Objective(self.comp, cfg, self.data_dir(), self.workspace, self.options.device), on_start)
        # A trial longer than expected is stopped where the budget ends (the ensemble and report still get
        # their reserve): its fold in progress is lost, the finished trials are not.
        left = self.limits.seconds_left(self.session.spent)
        try:
            with quiet(self.log), alarm(None if left is None else max(1.0, left - plan.reserve(self.limits.budget))):
                optimize(study, objective, n_trials=1, timeout=None, progress=False)
        except BudgetSpent:  # it rang outside the trial itself, in Optuna's bookkeeping around it
            if objective.number is not None:
                study.tell(objective.number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
        if objective.number is None:  # no trial began (the storage failed?): counted, so the loop ends
            entry = {"number": None, "state": "fail", "value": None, "seconds": 0.0, "error": "the trial never began"}
            tuning["kinds"][label]["trials"].append(entry)
            tuning["running"] = None
            self.session.save()
            return entry
        trial = next(t for t in study.get_trials(deepcopy=False) if t.number == objective.number)
        return self.record_trial(label, trial)

    def record_trial(self, label: str, trial) -> dict:
        """A finished trial into the session's state."""
        import optuna

        tuning = self.session.data["tuning"]
        state = {optuna.trial.TrialState.COMPLETE: "complete", optuna.trial.TrialState.PRUNED: "pruned"}.get(
            trial.state, "fail")
        seconds = trial.duration.total_seconds() if trial.duration is not None else 0.0
        entry = {"number": trial.number, "state": state, "value": trial.value if state == "complete" else None,
                 "seconds": round(seconds, 1), "run": trial.user_attrs.get("run"), "params": dict(trial.params)}
        if state == "fail":
            entry["error"] = str(trial.user_attrs.get("error", "see the log"))[:500]
            if entry["error"].startswith(BudgetSpent.__name__):
                entry["state"] = "stopped"  # by the budget's end, not by a fault
        tuning["kinds"][label]["trials"].append(entry)
        tuning["running"] = None
        self.session.save()
        return entry

    def fail_killed_trial(self) -> None:
        """After a kill: the trial the process was training is marked failed in its study (the one trial
        wasted); one that finished before the kill but was not yet recorded is recorded."""
        import optuna

        tuning = self.session.data["tuning"]
        running = tuning.get("running")
        if not running:
            return
        study = self.studies.get(running["kind"], (None,))[0]
        trials = study.get_trials(deepcopy=False) if study is not None else []
        if running.get("number") is not None:
            mine = [t for t in trials if t.number == running["number"]]
        else:  # killed as the trial was being created: it carries no session mark yet
            mine = [t for t in trials if t.number >= running.get("after", 0) and t.state.name == "RUNNING"
                    and t.user_attrs.get("auto_session") in (None, self.session.id)]
        for trial in mine:
            if trial.state.is_finished():
                self.record_trial(running["kind"], trial)
                continue
            study.tell(trial.number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
            tuning["wasted"].append({"kind": running["kind"], "study": running["study"], "number": trial.number})
            self.say("tune", f"{running['kind']} trial {trial.number} was cut short by a kill; marked failed "
                             "(the one trial wasted)")
        tuning["running"] = None
        self.session.save()

    # ------------------------------------------------------------------ 4. ensemble
    def candidates(self) -> list[dict]:
        """Finished K-fold runs on the session's folds: the baselines and each kind's best trials."""
        reference = self.reference_folds()
        folds = reference.read_bytes() if reference else None
        found = {}
        for label, entry in self.session.data["baselines"].items():
            if entry.get("status") == "done":
                found[entry["run"]] = {"run": entry["run"], "kind": label, "source": "baseline", "cv": entry["cv"],
                                       "sd": entry.get("sd")}
        here = str(self.workspace.resolve())
        for label, (study, _) in self.open_studies(create=False).items():
            import optuna

            done = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
                    if t.value is not None and t.user_attrs.get("run") and t.user_attrs.get("workspace") == here]
            done.sort(key=lambda t: t.value, reverse=self.direction == "maximize")
            for t in done[: self.options.top]:
                run = Run.at(self.workspace, self.name, t.user_attrs["run"])
                if run.finished and run.path("folds.csv").is_file():
                    found.setdefault(run.id, {"run": run.id, "kind": label, "source": f"trial {t.number}",
                                              "cv": float(t.value), "sd": run.summary().get("fold_sd")})
        members = [m for m in found.values()
                   if folds is None or Run.at(self.workspace, self.name, m["run"]).path("folds.csv").read_bytes() == folds]
        members.sort(key=lambda m: m["cv"], reverse=self.direction == "maximize")
        return members[:MAX_MEMBERS]

    def step_ensemble(self) -> str:
        from harness.tune.ensemble import blend_runs

        members = self.candidates()
        data = self.session.data
        best = members[0]
        entry = {"members": members, "best_member": best}
        if len(members) >= 2:
            try:
                with quiet(self.log):
                    result = blend_runs(self.comp, self.workspace, [m["run"] for m in members], self.options.blend)
            except HarnessError as exc:
                self.say("ensemble", f"the {self.options.blend} blend failed ({exc}); entering the best run alone")
                result = None
            if result is not None:
                summary = result.run.summary()
                entry.update(run=result.run.id, kind="ensemble", method=self.options.blend, cv=result.cv_score,
                             sd=fold_sd(result.fold_scores), fold_scores=result.fold_scores,
                             in_sample=result.in_sample_score, weights=summary.get("weights"),
                             member_scores=result.member_scores)
                data["ensemble"] = entry
                gain = (best["cv"] - result.cv_score) * (1 if self.direction == "minimize" else -1)
                return (f"{self.options.blend} blend of {len(members)} runs (run {result.run.id}): CV {self.metric} "
                        f"{fmt(result.cv_score)} ± {fmt(entry['sd'])} (nested), {fmt(abs(gain))} "
                        f"{'better' if gain >= 0 else 'worse'} than its best member, {best['kind']} {best['source']} "
                        f"{fmt(best['cv'])}")
        entry.update(run=best["run"], kind="single", method=None, cv=best["cv"], sd=best.get("sd"),
                     weights={best["run"]: 1.0})
        data["ensemble"] = entry
        return f"one run to enter, {best['kind']} {best['source']} (run {best['run']}): CV {fmt(best['cv'])}"

    # ------------------------------------------------------------------ 5. decide
    def step_decide(self) -> str:
        from harness.runs.leaderboard import Leaderboard

        data = self.session.data
        entry = data["ensemble"]
        board = Leaderboard(self.workspace)
        earlier = best_earlier(board.submissions(self.name), board.runs(self.name), self.metric, self.direction,
                               exclude=entry["run"])
        left, limit_note = None, None
        first = decide(entry["cv"], entry.get("sd"), self.direction, earlier, None)
        if first.submit and not self.comp.kaggle_slug and not self.solution().is_file():
            first = Decision(False, f"{self.name} has no Kaggle slug to submit to and no held-out answers "
                                    f"({self.solution().name}) to score against; set kaggle_slug in its config")
        if first.submit and self.comp.kaggle_slug:
            left, limit_note = self.left_today()
        decision = decide(entry["cv"], entry.get("sd"), self.direction, earlier, left) if first.submit else first
        data["decision"] = {"submit": decision.submit, "reason": decision.reason, "left_today": left,
                            "limit_note": limit_note, "earlier": asdict(earlier) if earlier else None}
        verdict = "submit" if decision.submit else "do not submit"
        return f"{verdict}: {decision.reason}" + (f" ({limit_note})" if limit_note else "")

    def left_today(self) -> tuple[int | None, str | None]:
        """Kaggle's submissions left today; a dry run asks only when credentials are set up."""
        from harness.kaggle.client import KaggleClient
        from harness.kaggle.credentials import find_credentials

        slug = self.comp.kaggle_slug
        if self.options.dry_run:
            try:
                find_credentials()
            except HarnessError:
                return None, "daily limit not checked: no Kaggle credentials (dry run)"
        with quiet(self.log):
            left = KaggleClient().submissions_left_today(slug)
        return left, None if left is not None else f"Kaggle did not say how many submissions {slug} allows today"

    # ------------------------------------------------------------------ 6. submit
    def step_submit(self) -> str:
        from harness.kaggle.client import DailyLimitError
        from harness.kaggle.submit import submit
        from harness.runs.leaderboard import Leaderboard

        data = self.session.data
        entry, decision = data["ensemble"], Decision(data["decision"]["submit"], data["decision"]["reason"])
        board = Leaderboard(self.workspace)
        from harness.kaggle.submit import reconcile_uploads

        with quiet(self.log):  # killed mid-upload: did Kaggle get it? (no call to Kaggle when nothing is stuck)
            reconcile_uploads(self.comp, self.workspace)
        before = [s for s in board.submissions(self.name) if s["run_id"] == entry["run"]
                  and s["status"] in ("scored", "pending", "local")]
        message = self.message(entry)
        if before:  # uploaded by this session before a kill: fetch its score, never upload twice
            if before[-1]["status"] == "pending" and self.comp.kaggle_slug:
                from harness.kaggle.submit import refresh

                with quiet(self.log):
                    refresh(self.comp, self.workspace)
                before = [s for s in Leaderboard(self.workspace).submissions(self.name) if s["id"] == before[-1]["id"]]
            sub = before[-1]
            return self.record_submission(sub["status"], sub["public_score"], sub["private_score"], sub["message"],
                                          "submitted before the session was killed; ")
        if self.options.dry_run or not decision.submit:
            self.validate(entry["run"])
            what = "would submit" if decision.submit else "would not submit"
            note = (f"dry run: {what}; the file is valid, nothing uploaded" if self.options.dry_run
                    else f"not submitted ({decision.reason}); the file is valid")
            data["submission"] = {"status": "dry-run" if self.options.dry_run else "not submitted", "note": note,
                                  "message": message}
            return note
        try:
            with quiet(self.log):
                result = submit(self.comp, self.workspace, entry["run"], message=message, data_dir=self.options.data_dir,
                                wait=self.options.wait, poll=self.options.poll)
        except DailyLimitError as exc:
            note = f"not submitted: {exc}"
            data["submission"] = {"status": "daily limit", "note": note, "message": message}
            return note
        except HarnessError as exc:
            self.error = exc
            note = f"submission failed: {exc}"
            data["submission"] = {"status": "failed", "note": note, "message": message}
            return note
        return self.record_submission(result.status, result.public_score, result.private_score, message, "")

    def solution(self) -> Path:
        from harness.kaggle.submit import solution_path

        return solution_path(self.comp, self.data_dir())

    def validate(self, run_id: str) -> None:
        """Every check `harness submit` makes before uploading, without uploading or scoring."""
        from harness.kaggle.submit import submission_file, validate
        from harness.runs.leaderboard import record_run

        run = Run.find(self.workspace, self.name, run_id)
        with quiet(self.log):
            validate(self.comp, run, self.data_dir(), submission_file(self.comp, run, self.data_dir()))
            record_run(self.workspace, run, self.data_dir())

    def message(self, entry: dict) -> str:
        what = (f"{entry['method']} ensemble {entry['run']} of {len(entry['members'])} runs" if entry["kind"] == "ensemble"
                else f"run {entry['run']}")
        return (f"harness auto: {what}, CV {self.metric} {fmt(entry['cv'])} ± {fmt(entry.get('sd'))} "
                f"({self.n_folds} folds)")

    def record_submission(self, status, public, private, message, prefix: str) -> str:
        where = "scored locally" if status == "local" else f"status {status}"
        what = f"held-out {self.metric}" if status == "local" else "public score"
        score = f", {what} {fmt(public)}" if public is not None else ""
        if status == "pending":
            score = f"; no score yet: `harness leaderboard {self.name} --refresh` fetches it"
        note = f"{prefix}submitted ({where}{score})"
        self.session.data["submission"] = {"status": status, "public": public, "private": private, "message": message,
                                           "note": note}
        return note

    # ------------------------------------------------------------------ 7. report
    def step_report(self) -> str:
        from harness.auto.report import write_report
        from harness.runs.leaderboard import Leaderboard

        board = Leaderboard(self.workspace)
        runs = {r["run_id"]: r for r in board.runs(self.name)}
        history = [{"submitted": s["submitted"], "run": s["run_id"], "cv": runs.get(s["run_id"], {}).get("validation_score"),
                    "public": s["public_score"], "status": s["status"]} for s in board.submissions(self.name)]
        for entry in (e for kind in self.session.data["tuning"]["kinds"].values() for e in kind["trials"]):
            if entry.get("run") and "sd" not in entry:
                run = Run.at(self.workspace, self.name, entry["run"])
                entry["sd"] = run.summary().get("fold_sd") if run.finished else None
        path = write_report(self.session, history, storage=self.options.storage)
        return f"written to {path}"


def run_auto(competition, config: dict, workspace: Path, options: Options) -> Session:
    """Enter ``competition`` automatically (resuming its unfinished session, if any)."""
    return Auto(competition, config, workspace, options).run()
