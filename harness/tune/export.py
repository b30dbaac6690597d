"""A trial as a competition config: `harness train NAME --config FILE` reproduces it (same seed, same score)."""
from __future__ import annotations

from pathlib import Path

import optuna

from harness.config.loading import apply_overrides, dump_config
from harness.errors import HarnessError
from harness.runs.folder import Run
from harness.workspace import write_text

COMPLETE = optuna.trial.TrialState.COMPLETE


def pick_trial(study: optuna.Study, number: int | None = None) -> optuna.trial.FrozenTrial:
    """Trial ``number``, or the best finished one."""
    if number is None:
        try:
            return study.best_trial
        except ValueError:
            raise HarnessError(f"study {study.study_name!r} has no finished trial yet; run more trials") from None
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    if number not in trials:
        raise HarnessError(f"study {study.study_name!r} has no trial {number} (trials 0..{len(trials) - 1})")
    if trials[number].state != COMPLETE:
        raise HarnessError(f"trial {number} of study {study.study_name!r} is {trials[number].state.name}, not COMPLETE")
    return trials[number]


def trial_config(study: optuna.Study, trial: optuna.trial.FrozenTrial, workspace: Path, competition) -> dict:
    """The exact config the trial's run saved; else (run folder on another machine) the study's base
    config with the trial's parameters applied."""
    run_id = trial.user_attrs.get("run")
    if run_id:
        run = Run.at(workspace, competition.name, run_id)
        if run.path("config.toml").exists():
            return run.config()
    base = study.user_attrs.get("config") or competition.default_config()
    return apply_overrides(base, dict(trial.params))


def export_config(study: optuna.Study, trial: optuna.trial.FrozenTrial, workspace: Path, competition,
                  path: Path) -> Path:
    config = trial_config(study, trial, workspace, competition)
    params = ", ".join(f"{k} = {v:.4g}" if isinstance(v, float) else f"{k} = {v}" for k, v in trial.params.items())
    header = (f"# Trial {trial.number} of study {study.study_name!r}: validation {trial.value:.6f}\n"
              f"# {params}\n"
              f"# Reproduce it with: harness train {competition.name} --config {Path(path).name}\n")
    write_text(path, header + dump_config(config))
    return Path(path)
