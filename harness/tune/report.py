"""`harness tune NAME --show`: the best trial, a table of trials, parameter importances and PNG plots."""
from __future__ import annotations

import warnings
from pathlib import Path

import click
import optuna
import pandas as pd

from harness.tune.study import is_journal
from harness.workspace import save_figure, write_csv

COMPLETE = optuna.trial.TrialState.COMPLETE


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def trials_frame(study: optuna.Study) -> pd.DataFrame:
    rows = []
    for t in study.get_trials(deepcopy=False):
        duration = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete and t.datetime_start else None
        rows.append({
            "trial": t.number, "state": t.state.name, "value": t.value,
            "epochs": t.last_step, "seconds": duration,
            **{f"param:{k}": v for k, v in t.params.items()},
            "run": t.user_attrs.get("run", ""), "machine": t.user_attrs.get("machine", ""),
            "error": t.user_attrs.get("error", ""),
        })
    return pd.DataFrame(rows)


def importances(study: optuna.Study) -> dict:
    """Parameter importances (fANOVA); empty until two finished trials differ in their parameters."""
    if len(study.get_trials(deepcopy=False, states=(COMPLETE,))) < 2:
        return {}
    try:
        return optuna.importance.get_param_importances(study)
    except (RuntimeError, ValueError):
        return {}


def save_plots(study: optuna.Study, out_dir: Path) -> list[Path]:
    """Optimisation history, importances and parallel coordinates as PNG files."""
    from optuna.visualization import matplotlib as ovm

    import harness.train.plots  # noqa: F401  (selects the Agg backend)

    out_dir.mkdir(parents=True, exist_ok=True)
    n_done = len(study.get_trials(deepcopy=False, states=(COMPLETE,)))
    plots = [("history.png", ovm.plot_optimization_history, 1)]
    if n_done >= 2 and importances(study):
        plots += [("importances.png", ovm.plot_param_importances, 2),
                  ("parallel_coordinates.png", ovm.plot_parallel_coordinate, 2)]
    written = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optuna marks its matplotlib plots experimental
        for name, plot, needed in plots:
            if n_done < needed:
                continue
            ax = plot(study)
            ax = ax.flat[0] if hasattr(ax, "flat") else ax
            save_figure(ax.figure, out_dir / name)
            written.append(out_dir / name)
    return written


def show(study: optuna.Study, out_dir: Path, storage_url: str) -> None:
    frame = trials_frame(study)
    counts = frame["state"].value_counts().to_dict() if len(frame) else {}
    click.echo(f"study {study.study_name!r}: {len(frame)} trials "
               f"({', '.join(f'{n} {s.lower()}' for s, n in counts.items()) or 'none yet'}), {study.direction.name.lower()}")
    try:
        best = study.best_trial
    except ValueError:
        best = None
    if best is not None:
        click.echo(f"best: trial {best.number}, value {best.value:.6f}, run {best.user_attrs.get('run', '-')}")
        for k, v in best.params.items():
            click.echo(f"  {k} = {_fmt(v)}")
    if len(frame):
        shown = frame.drop(columns=["machine"]).copy()
        shown["error"] = shown["error"].str.slice(0, 60)
        click.echo("")
        click.echo(shown.to_string(index=False, float_format=lambda v: f"{v:.5g}", na_rep="-"))
        write_csv(out_dir / "trials.csv", frame)
    imp = importances(study)
    if imp:
        click.echo("\nparameter importances (fANOVA):")
        for k, v in imp.items():
            click.echo(f"  {k:<32} {v:.3f}")
    plots = save_plots(study, out_dir) if best is not None else []
    click.echo("")
    for path in plots:
        click.echo(f"plot: {path}")
    if len(frame):
        click.echo(f"table: {out_dir / 'trials.csv'}")
    if not is_journal(storage_url):
        click.echo(f"dashboard: optuna-dashboard {storage_url}")
