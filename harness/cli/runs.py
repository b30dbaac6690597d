"""`harness runs`, `explain` and `generate`: list past runs, show what a trained run learned, write text with one."""
from __future__ import annotations

import click

from harness.cli.common import competition_named, workspace_of
from harness.cli.options import Number, device_option, seed_type

MAX_WORDS = 10_000  # one model step each: beyond this a typo (an extra zero or two) runs for hours


@click.command("runs")
@click.argument("name", required=False)
@click.pass_context
def runs(ctx, name):
    """List past runs with their validation scores (unfinished and failed runs too, marked)."""
    from harness.runs.folder import Run

    workspace = workspace_of(ctx)
    if name:
        competition_named(name)  # an unknown name is an error, not "no runs yet"
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


@click.command("explain")
@click.argument("name")
@click.option("--run", "run_id", default="latest", show_default=True, help="The trained run to explain.")
@click.pass_context
def explain(ctx, name, run_id):
    """Show what a trained model learned (text and a PNG plot in the run folder)."""
    from harness.runs.folder import Run

    comp = competition_named(name)
    run = Run.find(workspace_of(ctx), name, run_id)
    from harness.runs.kfold import is_k_fold
    from harness.runs.runner import load_learner

    if is_k_fold(run):  # one model stands for the K: the first fold's
        click.echo(f"run {run.id} is a K-fold run: explaining its first fold's model", err=True)
        run = Run(run.path("fold-0"))
    comp.explain(load_learner(comp, run, device="cpu"), run)


@click.command("generate")
@click.argument("name")
@click.option("--run", "run_id", default="latest", show_default=True, help="The run whose language model writes.")
@click.option("--prompt", default="", help="The text to continue.")
@click.option("--words", type=Number(int, 1, MAX_WORDS), default=50, show_default=True,
              help=f"How many tokens to sample (at most {MAX_WORDS}).")
@click.option("--temperature", type=Number(float, 0), default=1.0, show_default=True,
              help="Below 1: safer; 0: always the likeliest.")
@click.option("--top-k", type=Number(int, 0), default=0, show_default=True,
              help="Sample among the k likeliest tokens (0: all).")
@click.option("--seed", type=seed_type, default=0, show_default=True,
              help="Seed of the sampling: the same run, prompt and seed write the same text "
                   "(no effect with --temperature 0).")
@device_option
@click.pass_context
def generate(ctx, name, run_id, prompt, words, temperature, top_k, seed, device):
    """Write text with a trained run's language model, continuing --prompt."""
    from harness.runs.folder import Run

    comp = competition_named(name)
    run = Run.find(workspace_of(ctx), name, run_id)
    click.echo(comp.generate(run, prompt, words=words, temperature=temperature, top_k=top_k, seed=seed, device=device))
