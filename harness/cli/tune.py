"""`harness tune` and `harness blend`: search a competition's hyperparameters with Optuna, blend the best trials."""
from __future__ import annotations

from pathlib import Path

import click

from harness.cli.common import competition_named, config_for, workspace_of
from harness.cli.options import config_option, data_dir_option, device_option, seed_type, set_option
from harness.cli.train import parse_devices
from harness.errors import HarnessError
from harness.tune import DEFAULT_HEARTBEAT, PRUNERS, SAMPLERS, check_budget

storage_option = click.option(
    "--storage", help="Where the study lives: sqlite:///FILE (default: WORKSPACE/tune/optuna.db), "
                      "postgresql://USER@HOST/DB to share it between machines, or journal:PATH (a journal "
                      "file on a shared file system).")
study_option = click.option("--study", "study_name", help="Study name (default: the competition's name).")


def _storage_url(ctx, storage):
    from harness.tune.study import default_storage

    return storage or default_storage(workspace_of(ctx))


@click.command("tune")
@click.argument("name")
@click.option("--trials", "n_trials", type=int, help="Trials this worker runs (added to the study's).")
@click.option("--timeout", type=float, help="Stop starting trials after this many seconds.")
@storage_option
@study_option
@click.option("--sampler", type=click.Choice(SAMPLERS), default="tpe", show_default=True)
@click.option("--pruner", type=click.Choice(PRUNERS), default="median", show_default=True,
              help="Stop unpromising trials early from their per-epoch validation score.")
@click.option("--seed", type=seed_type, help="Sampler seed (reproducible search on one worker; give each worker its own).")
@click.option("--heartbeat", type=int, default=DEFAULT_HEARTBEAT, show_default=True,
              help="Seconds between a running trial's heartbeats; a trial silent for twice that is marked failed.")
@click.option("--show", is_flag=True, help="Show the study: best trial, trials, importances, PNG plots.")
@click.option("--export", "export_path",
              help="Write the best trial (or --trial N) as a config for `harness train NAME --config FILE`.")
@click.option("--trial", "trial_number", type=int, help="With --export: this trial instead of the best.")
@click.option("--devices", help="One worker process per device on the same study: 0,1 (GPUs), cpu,cpu, or a "
                                "number of CPU processes; --trials is shared between them.")
@config_option
@set_option
@data_dir_option
@device_option
@click.pass_context
def tune(ctx, name, n_trials, timeout, storage, study_name, sampler, pruner, seed, heartbeat, show, export_path,
         trial_number, devices, config_file, overrides, data_dir, device):
    """Search NAME's hyperparameters with Optuna (the config's [search] table).

    Rerunning continues the study; running the same command on more machines with a shared
    --storage (PostgreSQL, or a journal file) adds workers to it.
    """
    if trial_number is not None and not export_path:
        raise HarnessError(f"--trial {trial_number} picks the trial to export: add --export FILE")
    if not (show or export_path):
        check_budget(n_trials, timeout)  # before Optuna, torch, the config and the data are touched
    if heartbeat < 1:
        raise HarnessError(f"--heartbeat {heartbeat}: give a number of seconds of at least 1")
    if export_path and Path(export_path).is_dir():
        raise HarnessError(f"--export {export_path} is a folder; give a file name such as best.toml")
    device_list = parse_devices(devices) if devices is not None else None
    from harness.workspace import data_dir_for
    from harness.tune import export, report, study as studies

    comp = competition_named(name)
    workspace = workspace_of(ctx)
    config = None if (show or export_path) else config_for(comp, config_file, overrides)  # checked before any file
    if config is not None:
        from harness.data.folds import check_k_folds
        from harness.runs.kfold import config_folds

        folds = config_folds(config)
        if folds:  # refused once here, not in every trial
            check_k_folds(config.get("validation"), folds, f"validation.folds = {folds}")
    url = _storage_url(ctx, storage)
    study_name = study_name or name
    if show or export_path:
        study = studies.load_study(studies.make_storage(url, workspace, heartbeat), study_name, comp.name)
        if show:
            studies.fail_stale_trials(study)  # a killed worker's trial shows as FAILED, not RUNNING forever
            report.show(study, workspace / "tune" / study_name, studies.shown_url(url))
        if export_path:
            trial = export.pick_trial(study, trial_number)
            path = export.export_config(study, trial, workspace, comp, Path(export_path))
            click.echo(f"trial {trial.number} (validation {trial.value:.6f}) written to {path}; "
                       f"reproduce it with `harness train {name} --config {path}`")
        return
    path = data_dir_for(workspace, comp, data_dir)
    click.echo(f"study {study_name!r} in {studies.shown_url(url)}")
    study, _ = studies.tune(comp, config, path, workspace, n_trials=n_trials, timeout=timeout, storage_url=url,
                            study_name=study_name, sampler=sampler, pruner=pruner, seed=seed, device=device,
                            heartbeat=heartbeat, devices=device_list)
    states = [t.state.name.lower() for t in study.get_trials(deepcopy=False)]
    click.echo(f"{len(states)} trials in the study: " + ", ".join(f"{states.count(s)} {s}" for s in sorted(set(states))))
    try:
        best = study.best_trial
        click.echo(f"best: trial {best.number}, validation {best.value:.6f}, run {best.user_attrs.get('run', '-')}")
    except ValueError:
        click.echo("no trial finished yet")


# The methods of harness.tune.ensemble.METHODS, here so that `harness --help` imports no numpy.
BLEND_METHODS = ("mean", "weights", "caruana", "stack")


@click.command("blend")
@click.argument("name")
@click.option("--runs", "run_ids",
              help="Comma-separated runs (ids): K-fold runs that share folds (their out-of-fold predictions "
                   "blended, with an honest, nested CV score), or single-split runs validated on the same rows "
                   "(their plain mean).")
@click.option("--method", type=click.Choice(BLEND_METHODS), default="mean", show_default=True,
              help="With --runs: mean; weights (>= 0, summing to 1, fitted on OOF); caruana (greedy selection "
                   "with replacement); stack (Ridge / LogisticRegression on the OOF predictions).")
@click.option("--top-k", "k", type=int, help="Without --runs: how many of the study's best trials to average "
                                             "[default: 5].")
@storage_option
@study_option
@click.pass_context
def blend(ctx, name, run_ids, method, k, storage, study_name):
    """Blend runs into a new run (submission.csv and a score that says what it is).

    With --runs: K-fold runs that share folds, combined by --method; the blend's CV score is nested
    (each fold predicted by a blender fitted on the other folds' OOF rows only), printed beside the
    naive in-sample score. Single-split runs validated on the same rows: their mean (--method mean),
    scored on those rows. Without --runs: the mean of the study's --top-k best trials, scored on the
    validation rows that chose them (optimistic).
    """
    comp = competition_named(name)
    workspace = workspace_of(ctx)
    if run_ids is not None:
        if k is not None:
            raise HarnessError("--runs and --top-k: give one (K-fold runs, or a study's best trials)")
        if storage or study_name:
            raise HarnessError("--storage and --study choose a study's trials; --runs names the runs itself")
        from harness.tune import ensemble

        runs = ensemble.named_runs(comp, workspace, run_ids.split(","))
        if not any(ensemble.is_kfold(r) for r in runs):
            _blend_holdout_runs(comp, workspace, runs, method)
            return
        result = ensemble.blend_runs(comp, workspace, run_ids.split(","), method)
        _echo_ensemble(result)
        return
    if method != "mean":
        raise HarnessError(f"--method {method} needs --runs (K-fold runs): the top trials share one validation "
                           "split, on which a fitted blend cannot be scored honestly")
    from harness.tune import blend as blending, study as studies

    url = _storage_url(ctx, storage)
    study = studies.load_study(studies.make_storage(url, workspace), study_name or name, comp.name)
    result = blending.blend(comp, study, workspace, 5 if k is None else k)
    best = result.trial_scores[result.best_trial]
    trials = ", ".join(str(n) for n in result.trial_scores)
    click.echo(f"blend of trials {trials}: validation {result.metric} = {result.score:.6f} "
               f"(best single trial {result.best_trial}: {best:.6f}), both on the validation rows that chose the "
               "trials (optimistic)")
    click.echo("  for an honest score, blend K-fold runs: harness blend NAME --runs ID1,ID2 --method ...")
    click.echo(f"run folder: {result.run.dir}")
    if result.run.path("submission.csv").exists():
        click.echo(f"submission: {result.run.path('submission.csv')}")


def _blend_holdout_runs(comp, workspace, runs, method) -> None:
    """Single-split runs validated on the same rows: their plain mean, scored there (nothing fitted)."""
    if method != "mean":
        raise HarnessError(f"--method {method} fits the blend, which needs K-fold runs (`harness train {comp.name} "
                           "--folds K`): on one validation split it would be scored on the rows it was fitted "
                           "on; these runs have no folds, so use --method mean")
    from harness.tune import blend as blending

    result = blending.blend_holdout_runs(comp, workspace, runs)
    m = result.metric
    click.echo(f"mean of runs {', '.join(result.member_scores)}")
    for run, value in result.member_scores.items():
        click.echo(f"  member {run}: validation {m} = {value:.6f}")
    click.echo(f"validation {m} = {result.score:.6f} (the plain mean on the runs' shared validation rows; nothing "
               "fitted on them)")
    click.echo(f"run folder: {result.run.dir}")
    if result.run.path("submission.csv").exists():
        click.echo(f"submission: {result.run.path('submission.csv')}")


def _echo_ensemble(result) -> None:
    m = result.metric
    click.echo(f"{result.method} blend of runs {', '.join(result.members)}")
    weights = result.run.summary().get("weights")
    if weights:
        click.echo("  weights: " + ", ".join(f"{run} {w:.4f}" for run, w in weights.items()))
    for run, value in result.member_scores.items():
        click.echo(f"  member {run}: CV {m} = {value:.6f}")
    folds = ", ".join(f"{s:.5f}" for s in result.fold_scores)
    click.echo(f"CV {m} = {result.cv_score:.6f} (honest: nested; each fold predicted by a blender fitted on the "
               f"other folds' OOF rows only; per fold {folds})")
    click.echo(f"in-sample {m} = {result.in_sample_score:.6f} (naive, optimistic: blender fitted and scored on "
               "the same OOF rows; not an estimate of the test score)")
    click.echo(f"run folder: {result.run.dir}")
    if result.run.path("submission.csv").exists():
        click.echo(f"submission: {result.run.path('submission.csv')}")
