"""`harness submit` and `harness leaderboard`: send a run's submission, compare validation and public scores."""
from __future__ import annotations

import click

from harness.cli.common import competition_named, workspace_of
from harness.cli.options import data_dir_option


@click.command("submit")
@click.argument("name")
@click.option("--run", "run_id", default="latest", show_default=True, help="The run (or blend) whose submission to send.")
@click.option("--message", "-m", help="The submission's description on Kaggle (default: run id and config hash).")
@click.option("--dry-run", is_flag=True, help="Check the file as for a real submission, but upload nothing.")
@click.option("--wait", type=float, default=600, show_default=True, help="Seconds to wait for the public score.")
@data_dir_option
@click.pass_context
def submit(ctx, name, run_id, message, dry_run, wait, data_dir):
    """Validate a run's submission, upload it to Kaggle, wait for the public score and record it.

    Competitions without a Kaggle counterpart are scored locally against their held-out answers.
    An invalid file is never uploaded.
    """
    from harness.errors import HarnessError
    from harness.kaggle.submit import submit as submit_run

    if not wait >= 0:
        raise HarnessError(f"--wait {wait:g}: give the seconds to wait for the score, 0 or more")

    submit_run(competition_named(name), workspace_of(ctx), run_id, message=message, dry_run=dry_run,
               data_dir=data_dir, wait=wait)


@click.command("leaderboard")
@click.argument("name")
@click.option("--refresh", is_flag=True, help="First fetch the scores of pending submissions from Kaggle.")
@click.option("--kaggle", "kaggle_top", type=int, default=0, metavar="N",
              help="Also show the top N of Kaggle's public leaderboard.")
@click.pass_context
def leaderboard(ctx, name, refresh, kaggle_top):
    """Runs and submissions of NAME with validation, public and private scores, and a PNG of
    validation against public score (does the validation split track the leaderboard?)."""
    from harness.errors import HarnessError
    from harness.runs.leaderboard import Leaderboard, format_table, plot_validation_vs_public, rank_correlation

    if kaggle_top < 0:
        raise HarnessError(f"--kaggle {kaggle_top}: give how many of Kaggle's top entries to show, 1 or more")
    comp = competition_named(name)
    workspace = workspace_of(ctx)
    if refresh:
        from harness.kaggle.submit import refresh as refresh_scores

        click.echo(f"updated {refresh_scores(comp, workspace)} submission(s) from Kaggle")
    rows = Leaderboard(workspace).table(name)
    if not rows:
        click.echo(f"no runs of {name} recorded yet; `harness train {name}` records one")
    else:
        click.echo(format_table(rows))
        plot = workspace / "leaderboard" / f"{name}.png"
        n = plot_validation_vs_public(rows, plot, name)
        paired = [r for r in rows if r.get("validation_score") is not None and r.get("public_score") is not None]
        rho = rank_correlation([r["validation_score"] for r in paired], [r["public_score"] for r in paired])
        note = f"; rank correlation {rho:+.2f}" if rho is not None else ""
        click.echo(f"plot: {plot} ({n} run(s) with both a validation and a public score{note})")
    if kaggle_top:
        if comp.kaggle_slug is None:
            raise HarnessError(f"{name} has no Kaggle leaderboard (it is scored locally)")
        from harness.kaggle.client import KaggleClient

        entries = KaggleClient().leaderboard(comp.kaggle_slug, kaggle_top)
        click.echo(f"\nKaggle public leaderboard of {comp.kaggle_slug} (top {len(entries)}):")
        for i, entry in enumerate(entries, 1):
            click.echo(f"{i:>4}  {entry.team_name:<32} {entry.score}")
