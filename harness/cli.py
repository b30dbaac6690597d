"""The `harness` command line: enter competitions, train, predict, explain."""
from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import click

from harness import __version__
from harness.cli_options import config_option, data_dir_option, device_option, pretrained_options, set_option
from harness.errors import HarnessError
from harness.workspace import WORKSPACE_ENV, data_dir_for


class HarnessGroup(click.Group):
    """Turns HarnessError into one clear line on stderr and exit code 2, with no traceback.

    Commands that plugins add (the register_commands hook) are looked up only when a name is not a
    built-in command or the list is shown, so `harness --version` and the built-in commands do not
    import every plugin first.
    """

    def _load_plugin_commands(self):
        from harness.plugins import register_plugin_commands

        register_plugin_commands(self)

    def list_commands(self, ctx):
        self._load_plugin_commands()
        return super().list_commands(ctx)

    def get_command(self, ctx, name):
        command = super().get_command(ctx, name)
        if command is None:
            self._load_plugin_commands()
            command = super().get_command(ctx, name)
        return command

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except HarnessError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)


@click.group(cls=HarnessGroup)
@click.version_option(__version__, prog_name="harness")
@click.option("--workspace", envvar="HARNESS_WORKSPACE", default="harness-work",
              show_default=True, help="Folder for data, runs, checkpoints, plots and submissions "
                                      "(also $HARNESS_WORKSPACE).")
@click.pass_context
def cli(ctx, workspace):
    """A Kaggle competition harness: competitions as plugins, one PyTorch trainer."""
    ctx.ensure_object(dict)
    ctx.obj["workspace"] = workspace
    os.environ[WORKSPACE_ENV] = str(workspace)  # so caches deep in a plugin use the same workspace


def _workspace(ctx) -> Path:
    from harness.workspace import workspace_dir

    return workspace_dir(ctx.obj["workspace"])


def _competition(name):
    from harness.plugins import get_competition

    return get_competition(name)


def _config(competition, config_file, overrides, **shortcuts):
    from harness.config import apply_overrides, load_config

    schema = competition.config_schema
    config = load_config(config_file, schema) if config_file else competition.default_config()
    extra = [f"train.{k}={v}" for k, v in shortcuts.items() if v is not None]
    return apply_overrides(config, [*overrides, *extra], schema=schema)


def pretrained_overrides(competition, overrides, pretrained, no_pretrained) -> tuple:
    """--pretrained PATH and --no-pretrained as config overrides."""
    overrides = tuple(overrides)
    if no_pretrained:
        overrides += ("model.pretrained=false",)
    if pretrained:
        if not competition.pretrained_key:
            raise HarnessError(f"{competition.name} takes no --pretrained PATH; see its config for pretrained settings")
        # A JSON string is a valid TOML basic string, so paths with \\ or " survive the override.
        overrides += (f"{competition.pretrained_key}={json.dumps(str(pretrained))}",)
    return overrides


# ---------------------------------------------------------------------- discovery
@cli.command("list")
def list_competitions():
    """List the competitions that installed plugins provide."""
    from harness.plugins import competitions

    for name, comp in sorted(competitions().items()):
        slug = comp.kaggle_slug or "(scored locally)"
        click.echo(f"{name:<16} {slug:<32} {comp.description}")


@cli.command("plugins")
def list_plugins():
    """List installed plugins with their versions."""
    from harness.plugins import plugin_infos

    for info in plugin_infos():
        click.echo(f"{info.name:<20} {info.version:<10} {info.source}")


# ---------------------------------------------------------------------- data
@cli.command("data")
@click.argument("name")
@click.option("--from", "source", help="Copy the competition files from DIR.")
@click.option("--sample", is_flag=True, help="Write a small generated dataset in the competition's own format.")
@click.option("--download", is_flag=True, help="Download the files from Kaggle (needs a Kaggle account; "
                                               "a second run downloads nothing).")
@click.option("--force", is_flag=True, help="Replace data already in the workspace.")
@click.pass_context
def data(ctx, name, source, sample, download, force):
    """Put a competition's files into the workspace (checked): from DIR, from Kaggle, or generated sample data."""
    comp = _competition(name)
    if bool(source) + bool(sample) + bool(download) != 1:
        raise HarnessError("give exactly one of --from DIR, --sample or --download")
    dest = _workspace(ctx) / "data" / name
    if download:
        from harness.kaggle.download import download_data

        download_data(comp, dest, force=force)
        return
    if dest.exists() and not force:
        raise HarnessError(f"{dest} already exists; pass --force to replace it")
    from harness.workspace import atomic_dir

    if source:
        if not Path(source).is_dir():
            raise HarnessError(f"--from {source}: no such folder; give the folder that holds the competition's files")
        comp.check_raw(Path(source))  # before copying, so that errors name the user's folder
    with atomic_dir(dest) as tmp:
        if sample:
            comp.write_sample(tmp)
            comp.check_raw(tmp)
        else:
            shutil.copytree(source, tmp, dirs_exist_ok=True)
    click.echo(f"{name}: data ready in {dest}")


# ---------------------------------------------------------------------- training
@cli.command("train")
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
@data_dir_option
@device_option
@click.pass_context
def train(ctx, name, config_file, overrides, epochs, lr, schedule, pretrained, no_pretrained, resume, run_id, data_dir,
          device):
    """Train a model for competition NAME, score it on validation and write a submission."""
    from harness.runs import Run

    comp = _competition(name)
    workspace = _workspace(ctx)
    run = None
    if resume:
        if config_file or overrides or epochs or lr or schedule or pretrained or no_pretrained:
            raise HarnessError("--resume continues a run with its saved config; drop --config/--set/--epochs/--lr/--schedule")
        run = Run.find(workspace, name, run_id, unfinished=True)
        if run.finished:
            click.echo(f"run {run.id} of {name} finished already ({_score_text(run.summary())}); nothing to resume")
            return
        config = run.config()
        click.echo(f"resuming {name} run {run.id}")
    else:
        overrides = pretrained_overrides(comp, overrides, pretrained, no_pretrained)
        config = _config(comp, config_file, overrides, epochs=epochs, lr=lr, schedule=schedule)
    path = data_dir_for(workspace, comp, data_dir)
    # Config and file errors are reported above, before torch is imported (seconds on a busy machine).
    from harness import runner

    run = runner.train(comp, config, path, workspace, device=device, resume=run)
    summary = run.summary()
    click.echo(f"run {run.id}: {_score_text(summary)} ({summary['train_seconds']:.1f} s on {summary['device']})")
    click.echo(f"run folder: {run.dir}")
    if "submission" in summary:
        click.echo(f"submission: {summary['submission']}")


def _score_text(summary: dict) -> str:
    score = summary.get("primary_score")
    if isinstance(score, (int, float)):
        return f"validation {summary.get('primary_metric', 'score')} = {score:.5f}"
    return summary.get("note", "no validation score")


@cli.command("lr-find")
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
    comp = _competition(name)
    workspace = _workspace(ctx)
    config = _config(comp, config_file, pretrained_overrides(comp, overrides, pretrained, no_pretrained))
    from harness import runner  # after the config is checked: torch takes seconds to import
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


@cli.command("predict")
@click.argument("name")
@click.option("--run", "run_id", default="latest", show_default=True, help="The run whose model predicts.")
@data_dir_option
@device_option
@click.pass_context
def predict(ctx, name, run_id, data_dir, device):
    """Predict the test set with a trained run and write its submission CSV."""
    from harness import runner
    from harness.runs import Run

    comp = _competition(name)
    workspace = _workspace(ctx)
    run = Run.find(workspace, name, run_id)
    path = runner.predict(comp, run, data_dir_for(workspace, comp, data_dir), device=device)
    click.echo(f"submission: {path}")


@cli.command("runs")
@click.argument("name", required=False)
@click.pass_context
def runs(ctx, name):
    """List past runs with their validation scores (unfinished and failed runs too, marked)."""
    from harness.runs import Run

    workspace = _workspace(ctx)
    if name:
        _competition(name)  # an unknown name is an error, not "no runs yet"
    names = [name] if name else sorted(p.name for p in (workspace / "runs").glob("*") if p.is_dir())
    rows = [run for n in names for run in Run.all(workspace, n)]
    if not rows:
        click.echo(f"no runs{' of ' + name if name else ''} yet in {workspace}; start one with "
                   f"`harness train {name or 'NAME'}`")
        return
    click.echo(f"{'competition':<14} {'run':<20} {'metric':<10} {'score':>10} {'epochs':>6} {'seconds':>8}  status")
    for run in rows:
        s = run.summary() if run.finished else {}
        score = s.get("primary_score")
        score_text = f"{score:>10.5f}" if isinstance(score, (int, float)) else f"{'-':>10}"
        status = run.status()
        if status != "finished" and run.failure():
            status += f": {run.failure().get('error', '')}"[:80]
        click.echo(f"{run.competition:<14} {run.id:<20} {s.get('primary_metric', '-'):<10} {score_text} "
                   f"{s.get('epochs', '-'):>6} {s.get('train_seconds', '-'):>8}  {status}")


@cli.command("explain")
@click.argument("name")
@click.option("--run", "run_id", default="latest", show_default=True, help="The trained run to explain.")
@click.pass_context
def explain(ctx, name, run_id):
    """Show what a trained model learned (text and a PNG plot in the run folder)."""
    from harness.runs import Run

    comp = _competition(name)
    run = Run.find(_workspace(ctx), name, run_id)
    comp.explain(run, run.dir)


@cli.command("generate")
@click.argument("name")
@click.option("--run", "run_id", default="latest", show_default=True, help="The run whose language model writes.")
@click.option("--prompt", default="", help="The text to continue.")
@click.option("--words", type=int, default=50, show_default=True, help="How many tokens to sample.")
@click.option("--temperature", type=float, default=1.0, show_default=True, help="Below 1: safer; 0: always the likeliest.")
@click.option("--top-k", type=int, default=0, show_default=True, help="Sample among the k likeliest tokens (0: all).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of the sampling: the same run, prompt and seed write the same text "
                   "(no effect with --temperature 0).")
@device_option
@click.pass_context
def generate(ctx, name, run_id, prompt, words, temperature, top_k, seed, device):
    """Write text with a trained run's language model, continuing --prompt."""
    from harness.runs import Run

    comp = _competition(name)
    run = Run.find(_workspace(ctx), name, run_id)
    click.echo(comp.generate(run, prompt, words=words, temperature=temperature, top_k=top_k, seed=seed, device=device))


@cli.command("model")
@click.argument("name")
@config_option
@set_option
@click.option("--run", "run_id", help="Show a trained run's model instead of a fresh one from the config.")
@pretrained_options
@data_dir_option
@click.pass_context
def model(ctx, name, config_file, overrides, run_id, pretrained, no_pretrained, data_dir):
    """Print the model's layers with their parameter shapes and counts."""
    from harness.runs import Run

    comp = _competition(name)
    workspace = _workspace(ctx)
    if run_id:
        run = Run.find(workspace, name, run_id)
        config, state = run.config(), run.state()
    else:
        config = _config(comp, config_file, pretrained_overrides(comp, overrides, pretrained, no_pretrained))
        from harness import runner

        raw = comp.load(data_dir_for(workspace, comp, data_dir), config)
        state = comp.prepare(raw, config).state
    from harness.model_summary import summarize

    net = comp.build_model(state, config)
    click.echo(summarize(net, comp.layer_groups(net)))


from harness.tune.commands import blend as _blend_command, tune as _tune_command  # noqa: E402
from harness.kaggle import commands as _kaggle_commands  # noqa: E402

cli.add_command(_tune_command)
cli.add_command(_blend_command)
cli.add_command(_kaggle_commands.submit)
cli.add_command(_kaggle_commands.leaderboard)


def main():
    cli(prog_name="harness")

