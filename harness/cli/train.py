"""`harness train`, `lr-find`, `predict` and `model`: train a competition's model, sweep its learning rate,
predict with a trained run, show the model's layers."""
from __future__ import annotations

import time

import click

from harness.cli.common import competition_named, config_for, pretrained_overrides, score_text, workspace_of
from harness.cli.options import config_option, data_dir_option, device_option, pretrained_options, set_option
from harness.errors import HarnessError
from harness.workspace import data_dir_for


@click.command("train")
@click.argument("name")
@config_option
@set_option
@click.option("--epochs", type=int, help="Shortcut for --set train.epochs=N.")
@click.option("--lr", type=float, help="Shortcut for --set train.lr=LR.")
@click.option("--schedule", type=click.Choice(["one-cycle", "sgdr", "constant"]), help="Shortcut for --set train.schedule=...")
@pretrained_options
@click.option("--resume", is_flag=True, help="Continue a killed or failed run from its last checkpoint (the latest "
                                             "run, or --run); a finished run is left as it is.")
@click.option("--run", "run_id", help="With --resume: the run to continue.")
@click.option("--folds", type=int, help="Train K fold models: out-of-fold predictions for every training row, "
                                        "the CV score, and one submission from their mean test outputs.")
@click.option("--fold", "only_fold", type=int, help="With --folds: train fold I (0-based) only; "
                                                    "`--resume --run ID` trains the rest and joins them.")
@click.option("--folds-file", help="Train K fold models on the folds of this CSV (a K-fold run's folds.csv: "
                                   "`row`, then `fold`), so they can be blended with that run.")
@data_dir_option
@device_option
@click.pass_context
def train(ctx, name, config_file, overrides, epochs, lr, schedule, pretrained, no_pretrained, resume, run_id, folds,
          only_fold, folds_file, data_dir, device):
    """Train a model for competition NAME, score it on validation and write a submission."""
    from harness.runs.folder import Run

    comp = competition_named(name)
    workspace = workspace_of(ctx)
    run = None
    if resume:
        if config_file or overrides or epochs or lr or schedule or pretrained or no_pretrained:
            raise HarnessError("--resume continues a run with its saved config; drop --config/--set/--epochs/--lr/--schedule")
        if folds or only_fold is not None or folds_file:
            raise HarnessError("--resume continues a K-fold run with its own folds; drop --folds/--fold/--folds-file")
        run = Run.find(workspace, name, run_id, unfinished=True)
        if run.finished:
            click.echo(f"run {run.id} of {name} finished already ({score_text(run.summary())}); nothing to resume")
            return
        config = run.config()
        click.echo(f"resuming {name} run {run.id}")
    else:
        overrides = pretrained_overrides(comp, overrides, pretrained, no_pretrained)
        config = config_for(comp, config_file, overrides, epochs=epochs, lr=lr, schedule=schedule)
        if folds is not None and folds < 2:
            raise HarnessError(f"--folds {folds}: give 2 or more folds (or leave --folds out for one split)")
        if only_fold is not None and not folds:
            raise HarnessError("--fold I needs --folds K: the number of folds it is one of")
    path = data_dir_for(workspace, comp, data_dir)
    # Config and file errors are reported above, before torch is imported (seconds on a busy machine).
    from harness.runs import runner

    from harness.runs.kfold import config_folds, train_folds

    folds = folds or (None if resume else config_folds(config))  # --folds K, or the config's validation.folds
    if folds_file and folds:
        raise HarnessError("--folds-file sets the folds; drop --folds")
    if folds or folds_file or (run is not None and run.path("folds.csv").exists()):
        run = train_folds(comp, config, path, workspace, folds or 0, only_fold=only_fold, device=device, resume=run,
                          folds_file=folds_file)
        if not run.finished:  # --fold I: one fold of several
            click.echo(f"run {run.id}: fold {only_fold} trained; `harness train {name} --resume --run {run.id}` "
                       "trains the others and joins them")
            click.echo(f"run folder: {run.dir}")
            return
    else:
        run = runner.train(comp, config, path, workspace, device=device, resume=run)
    summary = run.summary()
    click.echo(f"run {run.id}: {score_text(summary)} ({summary['train_seconds']:.1f} s on {summary['device']})")
    click.echo(f"run folder: {run.dir}")
    if "submission" in summary:
        click.echo(f"submission: {summary['submission']}")


@click.command("lr-find")
@click.argument("name")
@config_option
@set_option
@click.option("--start-lr", type=float, default=1e-7, show_default=True, help="Learning rate of the sweep's first batch.")
@click.option("--end-lr", type=float, default=10.0, show_default=True,
              help="Learning rate of its last batch (the sweep stops early once the loss explodes).")
@click.option("--num-it", type=int, default=100, show_default=True, help="Batches in the sweep.")
@pretrained_options
@data_dir_option
@device_option
@click.pass_context
def lr_find(ctx, name, config_file, overrides, start_lr, end_lr, num_it, pretrained, no_pretrained, data_dir, device):
    """Sweep the learning rate, plot loss against it (PNG) and suggest a rate."""
    comp = competition_named(name)
    workspace = workspace_of(ctx)
    config = config_for(comp, config_file, pretrained_overrides(comp, overrides, pretrained, no_pretrained))
    from harness.runs import runner  # after the config is checked: torch takes seconds to import
    from harness.train import seed_everything

    seed_everything(int(config.get("seed", 0)))
    raw = comp.load(data_dir_for(workspace, comp, data_dir), config)
    learn = runner.make_learner(comp, comp.prepare(raw, config), config, device, echo=False)
    plot = workspace / "lr_find" / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.png"
    model_name = config.get("model", {}).get("arch") or config.get("model", {}).get("kind") or ""
    result = learn.lr_find(start_lr=start_lr, end_lr=end_lr, num_it=num_it, plot_path=plot,
                           title=f"{name} {model_name}".strip())
    click.echo(f"suggested lr (steepest descent): {result.suggestion:.2e}")
    click.echo(f"lr at minimum loss / 10:        {result.lr_min:.2e}")
    click.echo(f"plot: {plot}")


@click.command("predict")
@click.argument("name")
@click.option("--run", "run_id", default="latest", show_default=True, help="The run whose model predicts.")
@data_dir_option
@device_option
@click.pass_context
def predict(ctx, name, run_id, data_dir, device):
    """Predict the test set with a trained run and write its submission CSV."""
    from harness.runs import runner
    from harness.runs.folder import Run

    comp = competition_named(name)
    workspace = workspace_of(ctx)
    run = Run.find(workspace, name, run_id)
    from harness.runs.kfold import is_k_fold, predict_folds

    predict_with = predict_folds if is_k_fold(run) else runner.predict  # a K-fold run: the mean of its folds
    path = predict_with(comp, run, data_dir_for(workspace, comp, data_dir), device=device)
    click.echo(f"submission: {path}")


@click.command("model")
@click.argument("name")
@config_option
@set_option
@click.option("--run", "run_id", help="Show a trained run's model instead of a fresh one from the config.")
@pretrained_options
@data_dir_option
@click.pass_context
def model(ctx, name, config_file, overrides, run_id, pretrained, no_pretrained, data_dir):
    """Print the model's layers with their parameter shapes and counts."""
    from harness.runs.folder import Run

    comp = competition_named(name)
    workspace = workspace_of(ctx)
    if run_id:
        run = Run.find(workspace, name, run_id)
        config, state = run.config(), run.state()
        prepared = None
    else:
        config = config_for(comp, config_file, pretrained_overrides(comp, overrides, pretrained, no_pretrained))
        raw = comp.load(data_dir_for(workspace, comp, data_dir), config)
        if comp.data_summary(raw):
            click.echo(comp.data_summary(raw) + "\n")
        prepared = comp.prepare(raw, config)
        state = prepared.state
    from harness.host.competition import Prepared

    own = comp.make_learner(prepared or Prepared(None, None, state), config, echo=False, progress=False)
    if own is not None:  # not a network (gradient boosting): its own description
        if run_id:
            own.load_model(run.path("model.pt"))
        click.echo(own.describe())
        return
    from harness.models.summary import summarize

    net = comp.build_model(state, config)
    click.echo(summarize(net, comp.layer_groups(net)))
