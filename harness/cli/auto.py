"""`harness auto NAME`: enter a competition automatically, within a budget, resumably."""
from __future__ import annotations

import click

from harness.cli.common import competition_named, config_for, workspace_of
from harness.cli.options import config_option, data_dir_option, device_option, seed_type, set_option
from harness.errors import HarnessError
from harness.tune import PRUNERS, SAMPLERS

# harness.tune.ensemble.METHODS, here so that `harness --help` imports no numpy.
BLEND_METHODS = ("mean", "weights", "caruana", "stack")


@click.command("auto")
@click.argument("name")
@click.option("--budget", help="Wall time for the whole session, e.g. 20m, 2h or 1h30m (across kills and resumes).")
@click.option("--trials", "n_trials", type=int, help="Tuning trials at most (over all model kinds); 0: baselines only.")
@click.option("--folds", type=int, help="K folds for every run [default: the config's validation.folds, else 5].")
@click.option("--kinds", help="Comma-separated model.kind values to enter [default: nn,gbm for tabular "
                              "competitions, else the default config].")
@click.option("--storage", help="The Optuna storage: sqlite:///FILE (default: WORKSPACE/tune/optuna.db), "
                                "postgresql://USER@HOST/DB to spread the trials over machines, or journal:PATH.")
@click.option("--study", help="Prefix of the studies' names, one per kind [default: NAME-auto].")
@click.option("--sampler", type=click.Choice(SAMPLERS), help="Optuna sampler [default: tpe].")
@click.option("--pruner", type=click.Choice(PRUNERS), help="Stop unpromising trials after a fold [default: median].")
@click.option("--seed", type=seed_type, help="Sampler seed (reproducible search).")
@click.option("--heartbeat", type=int, help="Seconds between a running trial's heartbeats [default: 30].")
@click.option("--top", type=int, help="Best trials per kind offered to the ensemble [default: 3].")
@click.option("--blend", type=click.Choice(BLEND_METHODS), help="How the ensemble combines its members [default: "
                                                                "weights].")
@click.option("--dry-run", is_flag=True, help="Do everything (the decision too) but upload: the file is only checked.")
@click.option("--download", is_flag=True, help="Download the data from Kaggle first (needs credentials).")
@click.option("--wait", type=float, help="Seconds to wait for the public score after submitting [default: 600].")
@click.option("--restart", is_flag=True, help="Abandon the unfinished session and start a new one.")
@config_option
@set_option
@data_dir_option
@device_option
@click.pass_context
def auto(ctx, name, budget, n_trials, folds, kinds, storage, study, sampler, pruner, seed, heartbeat, top, blend,
         dry_run, download, wait, restart, config_file, overrides, data_dir, device):
    """Enter NAME automatically: check the data, train the baselines under K folds, tune them within the
    budget, blend the best runs (nested OOF ensemble), submit if the entry beats the earlier submissions
    by more than its CV noise and Kaggle's daily limit allows, and write a report (markdown and PNGs).

    Killed, `harness auto NAME` again continues the session (at most one trial is lost); once a session
    is done, the next starts a new one, reusing its baselines and continuing its studies.
    """
    from harness.auto.plan import parse_budget

    seconds = parse_budget(budget) if budget is not None else None
    if n_trials is not None and n_trials < 0:
        raise HarnessError(f"--trials {n_trials}: give 0 (baselines and ensemble only) or more tuning trials")
    if folds is not None and folds < 2:
        raise HarnessError(f"--folds {folds}: give 2 or more folds")
    if top is not None and top < 1:
        raise HarnessError(f"--top {top}: offer at least 1 trial per kind to the ensemble")
    if heartbeat is not None and heartbeat < 1:
        raise HarnessError(f"--heartbeat {heartbeat}: give a number of seconds of at least 1")
    if wait is not None and not wait >= 0:
        raise HarnessError(f"--wait {wait:g}: give the seconds to wait for the score, 0 or more")
    wanted = [k.strip() for k in kinds.split(",") if k.strip()] if kinds is not None else None
    if kinds is not None and not wanted:
        raise HarnessError(f"--kinds {kinds!r}: name at least one model.kind, e.g. --kinds nn,gbm")
    comp = competition_named(name)
    config = config_for(comp, config_file, overrides)  # checked before torch and Optuna are imported
    from harness.auto.session import Options, run_auto

    options = Options(budget=seconds, trials=n_trials, folds=folds, kinds=wanted, storage=storage, study=study,
                      sampler=sampler, pruner=pruner, seed=seed, heartbeat=heartbeat, top=top, blend=blend,
                      wait=wait, device=device, data_dir=data_dir, dry_run=dry_run, download=download,
                      restart=restart, config_given=bool(config_file or overrides))
    run_auto(comp, config, workspace_of(ctx), options)
