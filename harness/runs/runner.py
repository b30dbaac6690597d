"""The shared flow from raw files to a trained run and a submission, for any competition.

In a group of processes (data-parallel training, ``harness.train.distributed``) every process runs the
same flow on the same data and config; rank 0 alone writes the run folder, the leaderboard entry and the
prediction, shows the bar and prints the table. The others train in a scratch run folder of their own
(a recipe's extra files land there) that goes when they finish.
"""
from __future__ import annotations

import math
import pickle
import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from harness.host.competition import Competition, Predictions, Prepared, TrainContext
from harness.config.loading import config_hash
from harness.errors import HarnessError
from harness.runs.leaderboard import record_run
from harness.runs.folder import PARTIAL, Run
from harness.train import Learner, distributed, seed_everything
from harness.train.callbacks import Checkpoint, EarlyStopping, ProgressBar, Recorder
from harness.workspace import using_workspace, write_csv, write_json


def make_learner(competition: Competition, prepared, config: dict, device=None, callbacks=(), echo=True,
                 progress=None) -> Learner:
    own = competition.make_learner(prepared, config, echo=echo, progress=progress)
    if own is not None:  # a model that is not a torch network (gradient boosting) brings its own learner
        distributed.refuse(f"{type(own).__name__} (model.kind = {config.get('model', {}).get('kind')!r})")
        return own
    t = config["train"]
    model = competition.build_model(prepared.state, config)
    # progress: None shows the bar on a terminal only; True forces it on, False off. Rank 0's only.
    main = distributed.is_main()
    bar = ProgressBar(disable=(None if progress is None else not progress) if main else True)
    cbs = [Recorder(echo=echo and main), bar, *competition.callbacks(config), *callbacks]
    if t.get("early_stopping_patience", 0):
        cbs.append(EarlyStopping(t["early_stopping_patience"]))
    return Learner(
        model, prepared.train_dl, prepared.valid_dl, competition.loss_fn(config), competition.scored_by(config),
        layer_groups=competition.layer_groups(model), wd=t.get("wd", 0.01), betas=tuple(t.get("betas", (0.9, 0.99))),
        clip=t.get("clip") or None, device=device, mixed_precision=t.get("mixed_precision", "auto"), callbacks=cbs,
    )


def train(competition: Competition, config: dict, data_dir: Path, workspace: Path, device=None,
          resume: Run | None = None, callbacks=(), echo=True, progress=None, on_run=None) -> Run:
    """Train one run end to end: preprocess, fit (with checkpoints), score, predict the test set.

    The run is built in ``<id>.partial/`` and renamed when complete; if anything raises, the folder is
    marked failed (``failed.json``) and keeps its checkpoints, so ``--resume`` can finish it.
    ``on_run(run)`` is called as soon as the run folder exists (tuning records the trial's run).
    In a group of processes, ``resume`` need exist on rank 0 only (the others get its checkpoint from it).
    """
    started = time.time()
    main = distributed.is_main()
    if resume is not None and main:
        check_resumable(resume)
    with using_workspace(workspace):  # caches deep in the plugin (tokens, activations) go under it
        seed_everything(int(config.get("seed", 0)))
        raw = competition.load(data_dir, config)
        competition.check_inputs(raw, config)  # what can fail without a model fails before training
        prepared = competition.prepare(raw, config)
        # The model is built before the run folder exists, so a bad config leaves nothing behind.
        learn = make_learner(competition, prepared, config, device, callbacks, echo=echo, progress=progress)
        run = (resume or Run.create(workspace, competition.name, partial=True)) if main else scratch_run()
        if on_run is not None and main:
            on_run(run)
        try:
            finish_run(competition, config, raw, prepared, learn, run, data_dir, workspace, started,
                       resumed=resume is not None)
        except BaseException as exc:
            if not run.finished:
                run.mark_failed(exc)
            raise
        finally:
            if not main:
                shutil.rmtree(run.dir.parent, ignore_errors=True)
    return run


def scratch_run() -> Run:
    """A throwaway run folder for a process other than rank 0 (outside the workspace)."""
    folder = Path(tempfile.mkdtemp(prefix=f"harness-rank{distributed.rank()}-")) / f"scratch{PARTIAL}"
    folder.mkdir()
    return Run(folder)


def check_resumable(run: Run) -> None:
    if run.finished:
        raise HarnessError(f"run {run.id} of {run.competition} finished already; nothing to resume")
    if not run.checkpoint.is_file():
        raise HarnessError(f"run {run.id} of {run.competition} cannot be resumed: {run.checkpoint} is missing "
                           f"(the run stopped before its first epoch ended, or the file was removed); "
                           f"start a new run with `harness train {run.competition}`")


def finish_run(competition, config, raw, prepared, learn: Learner, run: Run, data_dir, workspace, started,
               resumed: bool, record: bool = True) -> None:
    """Everything after the run folder exists: fit (or continue), score, predict, summary, rename; and
    (``record``) the run on the local leaderboard (a K-fold run records itself, not its folds).
    In a group of processes all train and validate; rank 0 alone goes on to write the rest."""
    main = distributed.is_main()
    if main:
        run.save_config(config)
        run.save_state(prepared.state)
    # In every process: a checkpoint gathers each process's random state; rank 0 writes it.
    learn.add_callbacks([Checkpoint(run.path("checkpoints"))])
    if resumed:
        try:
            learn.resume_from(run.checkpoint)
        except Exception as exc:  # torch raises several kinds for a cut or foreign file
            raise run.damaged("checkpoints/last.pt", f"cannot be read ({load_problem(exc)})") from None
    competition.train(TrainContext(learn=learn, config=config, prepared=prepared, run=run, workspace=Path(workspace)))
    if learn.valid_dl is not None and math.isnan(learn.valid_loss):
        # A run resumed after its last epoch's checkpoint trains no more; score the restored model.
        learn.validate()
    if not main:
        return
    learn.save_model(run.path("model.pt"))
    history = run.save_history(learn.recorder, title=f"{competition.name} {run.id}")
    if learn.valid_preds is not None:
        run.save_array("valid_preds.npy", np.asarray(learn.valid_preds))
        run.save_array("valid_targets.npy", np.asarray(learn.valid_targets))
    primary = learn.primary_score
    summary = {
        "competition": competition.name, "run": run.id, "config_hash": config_hash(config),
        "valid_loss": learn.valid_loss, "metrics": learn.metrics,
        "primary_metric": learn.primary_metric.name if learn.primary_metric else "valid_loss",
        "primary_score": None if primary is None or math.isnan(primary) else primary,
        "direction": learn.primary_metric.direction if learn.primary_metric else "minimize",
        "epochs": len(history), "device": str(learn.device), "processes": distributed.world_size(),
        "torch": torch.__version__,
        "machine": platform.node(), "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
        "train_seconds": round(time.time() - started, 2),
    }
    if learn.valid_dl is None:
        summary["note"] = "no validation split; the run has no validation score"
    predictions = competition.predict(learn, prepared.state, raw, config)
    if predictions is not None:
        save_predictions(run, competition, predictions, raw)
        summary["submission"] = str(run.final_dir / "submission.csv")
    run.save_summary(summary)
    run.finish()
    if record:
        record_run(workspace, run, data_dir)  # the local leaderboard; cheap, never fatal


def save_predictions(run: Run, competition: Competition, predictions: Predictions, raw) -> None:
    competition.check_submission(predictions.submission, raw)
    if predictions.test_metrics:
        write_json(run.path("test_metrics.json"), predictions.test_metrics)
    run.save_array("test_preds.npy", predictions.raw)
    write_csv(run.path("submission.csv"), predictions.submission)


def load_learner(competition: Competition, run: Run, device=None) -> Learner:
    """Rebuild a trained run's model from its config and preprocessing state, with its weights."""
    config, state = run.config(), run.state()
    learn = competition.make_learner(Prepared(None, None, state), config, echo=False, progress=False)
    if learn is None:
        model = competition.build_model(state, config)
        learn = Learner(model, None, None, competition.loss_fn(config), competition.scored_by(config),
                        layer_groups=competition.layer_groups(model), device=device)
    weights = run.path("model.pt")
    if not weights.is_file():
        if run.finished:  # --resume would call it finished: its folder was renamed or copied without the file
            raise HarnessError(f"{weights} is missing: run {run.id} is incomplete (its folder was renamed or copied "
                               f"without it); copy model.pt back, or train again with `harness train {competition.name}`")
        raise HarnessError(f"{weights} is missing; the run did not finish (resume it with --resume)")
    try:
        learn.load_model(weights)
    except Exception as exc:  # a cut file, another model's weights, not a torch file at all
        raise run.damaged("model.pt", f"cannot be loaded ({load_problem(exc)})") from None
    return learn


def predict(competition: Competition, run: Run, data_dir: Path, device=None) -> Path:
    config = run.config()
    learn = load_learner(competition, run, device)
    with using_workspace(run.workspace):
        raw = competition.load(data_dir, config)
        predictions = competition.predict(learn, run.state(), raw, config)
    if predictions is None:
        raise HarnessError(f"{data_dir} has no test file for {competition.name} to predict")
    save_predictions(run, competition, predictions, raw)
    return run.path("submission.csv")


def load_problem(exc: Exception) -> str:
    """Why torch could not load a file, in a few words. Its unpickling errors advise weights_only=False,
    which would run whatever code the file holds: never worth repeating for a cut or foreign file."""
    text = str(exc)
    unreadable = ("weights_only", "PytorchStreamReader", "zip archive", "pickle")
    if isinstance(exc, (EOFError, pickle.UnpicklingError)) or any(w in text for w in unreadable) or not text.strip():
        return "cut short, or not a file that torch saved"
    return text.strip().splitlines()[0][:200]
