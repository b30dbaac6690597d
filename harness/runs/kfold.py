"""Training under K folds: one model per fold, out-of-fold (OOF) predictions for every training row,
the CV score on all of them and per fold, and one submission from the fold models' mean test outputs.

A K-fold run folder holds ``folds.csv`` (the fold of every training row, so other models can be trained
on the same rows), ``fold-<i>/`` (an ordinary run folder per fold, with its checkpoints), ``oof_preds.npy``
and ``oof_targets.npy`` (in the order of the competition's ``fold_rows``), ``cv.csv`` and ``cv.png`` (the
per-fold table and its plot), ``test_preds.npy`` (the mean of the folds' test outputs),
``submission.csv`` and ``summary.json``. Killed, it resumes at the fold (and epoch) where it stopped.

With ``validation.repeats`` R > 1 (kfold and stratified), the K folds are drawn R times, reshuffled:
R x K fold models, numbered repeat by repeat (``fold-<r*K+k>``); each row's OOF prediction is the mean
of its R out-of-fold predictions (on the scale the test outputs are averaged on, so OOF and submission
come from the same ensemble), and the per-fold table and sd cover all R x K folds.

With ``devices`` the fold models train in parallel, one process per device (spawned by torch's
elastic launcher), each taking every len(devices)-th fold left to train; this
process then joins them as if they had trained one after the other (the same OOF predictions on the CPU).
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import click
import numpy as np

from harness.data.folds import assign_folds, check_k_folds, load_folds, save_folds
from harness.errors import HarnessError
from harness.host.competition import Competition
from harness.runs.folder import PARTIAL, Run
from harness.runs.leaderboard import record_run
from harness.workspace import using_workspace, write_csv


def config_folds(config: dict) -> int | None:
    """K when the config asks for K-fold training (``validation.folds`` of 2 or more), else None."""
    folds = config.get("validation", {}).get("folds")
    return int(folds) if folds and int(folds) >= 2 else None


def fold_plan(rows, config: dict, n_folds: int):
    """The folds of the training ``rows`` from the config's ``[validation]`` section (scheme, group or
    time column, split_seed: not the training seed, so a seed sweep changes the models and never the
    rows they are scored on), with ``n_folds`` folds."""
    check_k_folds(config.get("validation"), n_folds)
    validation = {**config.get("validation", {}), "folds": n_folds}
    target = validation.pop("target", None)
    return assign_folds(rows, validation, target=rows[target] if target else None)


def train_folds(competition: Competition, config: dict, data_dir: Path, workspace: Path, n_folds: int,
                only_fold: int | None = None, device=None, resume: Run | None = None, echo=True,
                progress=None, on_run=None, on_fold=None, folds_file=None, devices=None) -> Run:
    """Train the K fold models of ``competition`` (or fold ``only_fold`` alone) into one run folder.

    ``on_run(run)`` is called once the run folder exists; ``on_fold(i, scores)`` after each fold with
    the fold scores so far (tuning reports their running mean to the pruner, which may stop the run).
    ``folds_file``: train on the folds of this CSV (another run's folds.csv), so the models can be blended.
    ``devices`` (e.g. ["cuda:0", "cuda:1"] or ["cpu", "cpu"]): train the folds in parallel, one process each.
    """
    if devices and (only_fold is not None or on_fold is not None):
        raise HarnessError("--devices trains the folds in parallel; --fold I (one fold) trains on one device: drop one")
    started = time.time()
    with using_workspace(workspace):
        raw = competition.load(data_dir, config)
        competition.check_inputs(raw, config)
        rows = competition.fold_rows(raw, config)
        if rows is None:
            raise HarnessError(f"{competition.name} cannot train under K folds yet (its plugin gives no fold_rows); "
                               "train it without --folds")
        if resume is not None:
            run = resume
            plan = read_folds(run, rows)
            check_folds_fit(competition, config, plan, device, devices)
        else:
            if folds_file:
                plan = load_folds(folds_file, rows)
                if plan.n_folds < 2:
                    raise HarnessError(f"folds file {folds_file} has a single fold (fold 0): K folds need two or "
                                       "more; give a K-fold run's folds.csv, or train without --folds-file")
            else:
                plan = competition.predefined_folds(raw, config, rows) or fold_plan(rows, config, n_folds)
            if only_fold is not None:
                check_model_index(plan, only_fold)
            check_folds_fit(competition, config, plan, device, devices)
            run = Run.create(workspace, competition.name, partial=True)
            run.save_config(config)
            save_folds(plan, run.path("folds.csv"))
        if on_run is not None:
            on_run(run)
        n_models = model_count(plan)
        click.echo(plan.describe(), err=True)
        try:
            wanted = range(n_models) if only_fold is None else [only_fold]
            left = [i for i in wanted if not fold_folder(run, i).finished]  # the others trained before a kill
            if devices:
                if left:
                    train_on_devices(devices, competition, config, plan, run, left, data_dir, workspace)
            else:
                for i in left:
                    train_fold(competition, config, raw, plan, run, i, data_dir, workspace, device, echo=echo,
                               progress=progress)
                    if on_fold is not None:
                        done = [fold_folder(run, j) for j in range(n_models)]
                        on_fold(i, [r.summary()["primary_score"] for r in done if r.finished])
            if only_fold is None:
                combine_folds(competition, run, plan, started)
                run.finish()
                record_run(workspace, run, data_dir)
        except BaseException as exc:
            if not run.finished:
                run.mark_failed(exc)
            raise
    return run


def check_folds_fit(competition: Competition, config: dict, plan, device=None, devices=None) -> None:
    """What would fail inside a fold model, found before the run folder exists (as a single split finds it
    before its own): the devices, the metric, and ``train.batch_size`` against every fold's training rows."""
    from harness.train import distributed
    from harness.train.device import pick_device

    if devices:
        distributed.check_devices(devices)
    else:
        pick_device(device)
    competition.scored_by(config)  # a metric that does not fit the task
    batch_size = competition.training_batch_size(config)
    if not batch_size:
        return
    sizes = []
    for i in range(model_count(plan)):
        repeat, fold = split_of(plan, i)
        sizes.append(len(plan.train_index(fold, repeat)))
    smallest = int(np.argmin(sizes))
    if batch_size > sizes[smallest]:
        raise HarnessError(f"train.batch_size = {batch_size} is larger than the {sizes[smallest]} training rows of "
                           f"{model_label(plan, smallest)}; set train.batch_size to at most {sizes[smallest]}")


def model_count(plan) -> int:
    """How many fold models a plan trains: K, or R x K with repeats."""
    return plan.n_folds * plan.n_repeats


def split_of(plan, i: int) -> tuple[int, int]:
    """(repeat, fold) of fold model ``i``: the models are numbered repeat by repeat."""
    return divmod(i, plan.n_folds)


def check_model_index(plan, i: int) -> None:
    if not 0 <= i < model_count(plan):
        repeats = f" x {plan.n_repeats} repeats" if plan.n_repeats > 1 else ""
        raise HarnessError(f"fold {i} does not exist: the {plan.scheme} plan has {plan.n_folds} fold(s){repeats}, "
                           f"0..{model_count(plan) - 1}")


def model_label(plan, i: int) -> str:
    """``fold 3/5``, or ``fold 3/5 of repeat 2/2`` with repeats."""
    repeat, fold = split_of(plan, i)
    label = f"fold {fold + 1}/{plan.n_folds}"
    return label + (f" of repeat {repeat + 1}/{plan.n_repeats}" if plan.n_repeats > 1 else "")


def train_fold(competition: Competition, config: dict, raw, plan, run: Run, i: int, data_dir, workspace, device,
               echo=True, progress=None) -> Run:
    """Fold model ``i``, from the seed up (so a fold trains alike alone, in sequence or in parallel)."""
    from harness.runs import runner
    from harness.train import seed_everything

    fold_run = fold_folder(run, i)
    repeat, fold = split_of(plan, i)
    train_rows, valid_rows = plan.train_index(fold, repeat), plan.valid_index(fold, repeat)
    click.echo(f"{model_label(plan, i)}: {len(train_rows)} training rows, {len(valid_rows)} validation rows",
               err=True)
    resumed = fold_run.dir.exists() and fold_run.checkpoint.is_file()
    fold_run.dir.mkdir(parents=True, exist_ok=True)
    seed_everything(int(config.get("seed", 0)))
    prepared = competition.prepare(raw, config, rows=(train_rows, valid_rows))
    learn = runner.make_learner(competition, prepared, config, device, echo=echo, progress=progress)
    runner.finish_run(competition, config, raw, prepared, learn, fold_run, data_dir, workspace,
                      time.time(), resumed=resumed, record=False)
    return fold_folder(run, i)


def train_on_devices(devices, competition, config, plan, run: Run, folds, data_dir, workspace) -> None:
    """The ``folds`` in parallel, one process per device, each taking every len(devices)-th of them."""
    from harness.train import distributed

    count = min(len(devices), len(folds))
    click.echo(f"training {len(folds)} fold model(s) in {count} processes on {', '.join(devices[:count])}", err=True)
    # Each spawned process reads the data again rather than get a pickled copy of it.
    distributed.launch(count, train_fold_share, devices[:count], competition, config, plan,
                       str(run.dir), folds, str(data_dir), str(workspace), what="fold training",
                       then=f"`harness train {competition.name} --resume --run {run.id}` trains the folds left")


def train_fold_share(devices, competition, config, plan, run_dir, folds, data_dir, workspace) -> None:
    """One process of ``train_on_devices``: its share of the folds on its device, tables and bars off (they
    would interleave), one line per fold."""
    from harness.train import distributed

    device = distributed.device_of(devices)
    rank = distributed.local_rank()
    with using_workspace(workspace):
        raw = competition.load(Path(data_dir), config)
        for i in folds[rank::len(devices)]:
            fold_run = train_fold(competition, config, raw, plan, Run(Path(run_dir)), i, Path(data_dir), Path(workspace),
                                  device, echo=False, progress=False)
            summary = fold_run.summary()
            score = summary.get("primary_score")
            click.echo(f"{model_label(plan, i)} on {device}: {summary.get('primary_metric')} = "
                       + (f"{score:.5f}" if isinstance(score, float) else "-"), err=True)


def fold_folder(run: Run, i: int) -> Run:
    """Fold ``i``'s run folder inside the K-fold run: ``fold-<i>/`` when finished, else ``fold-<i>.partial/``."""
    done = run.path(f"fold-{i}")
    return Run(done if done.is_dir() else run.path(f"fold-{i}{PARTIAL}"))


def read_folds(run: Run, rows):
    """The folds a K-fold run was started with (its folds.csv), checked against today's rows."""
    return load_folds(run.path("folds.csv"), rows)


def combine_folds(competition: Competition, run: Run, plan, started: float) -> None:
    """OOF predictions and the CV score from the fold runs; the mean of their test outputs as the submission.
    The CV score is on the rows some fold validates (all of them, but for time folds' earliest rows); with
    repeats, on each row's mean OOF prediction over the repeats, and per repeat too."""
    import pandas as pd
    import torch

    n_models = model_count(plan)
    fold_runs = [fold_folder(run, i) for i in range(n_models)]
    missing = [i for i, r in enumerate(fold_runs) if not r.finished]
    if missing:
        raise HarnessError(f"run {run.id}: fold(s) {', '.join(map(str, missing))} not trained yet; train them with "
                           f"`harness train {competition.name} --resume --run {run.id}`")
    metric = competition.scored_by(run.config())[0]
    first = fold_runs[0].array("valid_preds.npy")
    first_targets = fold_runs[0].array("valid_targets.npy")

    def score(outputs, truth) -> float:
        return float(metric(torch.from_numpy(outputs.astype(first.dtype)),
                            torch.from_numpy(truth.astype(first_targets.dtype))))

    per_repeat = np.full((plan.n_repeats, plan.n_rows, *first.shape[1:]), np.nan, dtype=np.float64)
    targets = np.full((plan.n_rows, *first_targets.shape[1:]), np.nan, dtype=np.float64)
    table = []
    for i, fold_run in enumerate(fold_runs):
        repeat, fold = split_of(plan, i)
        rows = plan.valid_index(fold, repeat)
        per_repeat[repeat, rows], targets[rows] = fold_run.array("valid_preds.npy"), fold_run.array("valid_targets.npy")
        table.append({**({"repeat": repeat} if plan.n_repeats > 1 else {}), "fold": fold, "rows": len(rows),
                      metric.name: fold_run.summary()["primary_score"]})
    oof = per_repeat.mean(axis=0)  # each row is validated once per repeat
    validated = plan.validated()
    cv = score(oof[validated], targets[validated])
    repeat_scores = [score(per_repeat[r][validated], targets[validated]) for r in range(plan.n_repeats)]
    scores = np.array([row[metric.name] for row in table], dtype=np.float64)
    run.save_array("oof_preds.npy", oof)
    run.save_array("oof_targets.npy", targets)
    write_csv(run.path("cv.csv"), pd.DataFrame(table))
    from harness.train.plots import plot_fold_scores

    plot_fold_scores([row[metric.name] for row in table], metric.name, cv, run.path("cv.png"),
                     title=f"{competition.name} {run.id}")
    repeat_head = f"{'repeat':>6}  " if plan.n_repeats > 1 else ""
    click.echo(f"{repeat_head}{'fold':>6}  {'rows':>8}  {metric.name:>12}")
    for row in table:
        repeat_cell = f"{row['repeat'] + 1:>6}  " if plan.n_repeats > 1 else ""
        click.echo(f"{repeat_cell}{row['fold'] + 1:>6}  {row['rows']:>8}  {row[metric.name]:>12.5f}")
    if plan.n_repeats > 1:
        click.echo(f"CV {metric.name} per repeat: {', '.join(f'{v:.5f}' for v in repeat_scores)}; "
                   f"on the mean of each row's {plan.n_repeats} out-of-fold predictions:")
    click.echo(f"CV {metric.name} on all {len(validated)} out-of-fold rows = {cv:.5f}; "
               f"per fold {scores.mean():.5f} ± {scores.std(ddof=1):.5f} (mean ± sd)")
    summary = {
        "competition": competition.name, "run": run.id, "folds": plan.n_folds,
        # a plan read back from folds.csv (a resumed run) says "file": the config names the scheme
        "scheme": plan.scheme if plan.scheme != "file" else run.config().get("validation", {}).get("scheme", "kfold"),
        "primary_metric": metric.name, "primary_score": cv, "direction": metric.direction,
        "cv_score": cv, "fold_scores": scores.tolist(), "fold_mean": float(scores.mean()),
        "fold_sd": float(scores.std(ddof=1)),
        **({"repeats": plan.n_repeats, "repeat_scores": repeat_scores} if plan.n_repeats > 1 else {}),
        "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
        "train_seconds": round(time.time() - started, 2), "epochs": fold_runs[0].summary().get("epochs"),
        "device": fold_runs[0].summary().get("device"),
    }
    if all(r.path("test_preds.npy").exists() for r in fold_runs):
        average_test_outputs(competition, run, fold_runs, valid=(oof[validated], targets[validated]))
        summary["submission"] = str(run.final_dir / "submission.csv")
    run.save_summary(summary)
    if math.isnan(cv):
        raise HarnessError(f"run {run.id}: the CV score is NaN; see the folds' history.csv")


def average_test_outputs(competition: Competition, run: Run, fold_runs: list[Run], valid=None) -> None:
    """The fold models' test outputs averaged on the scale blending uses, turned into one submission;
    ``valid`` (the OOF outputs and targets) chooses a label submission's threshold."""
    import pandas as pd

    mean = np.mean([r.array("test_preds.npy") for r in fold_runs], axis=0)
    template = pd.read_csv(fold_runs[0].path("submission.csv"))
    if valid is None and run.path("oof_preds.npy").is_file():  # `harness predict` of a finished K-fold run
        oof, targets = run.array("oof_preds.npy"), run.array("oof_targets.npy")
        rows = ~np.isnan(oof.reshape(len(oof), -1)).any(axis=1)
        valid = (oof[rows], targets[rows])
    run.save_array("test_preds.npy", mean)
    write_csv(run.path("submission.csv"), competition.submission_from_outputs(mean, template, valid=valid,
                                                                              config=run.config()))


def is_k_fold(run: Run) -> bool:
    return run.path("folds.csv").is_file()


def predict_folds(competition: Competition, run: Run, data_dir: Path, device=None) -> Path:
    """Predict the test set with every fold model of a K-fold run and write their mean as its submission."""
    from harness.runs import runner

    fold_runs = [Run(p) for p in sorted(run.dir.glob("fold-*")) if p.is_dir() and Run(p).finished]
    if not fold_runs:
        raise HarnessError(f"run {run.id} has no trained fold models; train them with "
                           f"`harness train {competition.name} --resume --run {run.id}`")
    for fold_run in fold_runs:
        runner.predict(competition, fold_run, data_dir, device=device)
    average_test_outputs(competition, run, fold_runs)
    return run.path("submission.csv")
