"""`harness train`, `lr-find`, `predict` and `model`: train a competition's model, sweep its learning rate,
predict with a trained run, show the model's layers."""
from __future__ import annotations

import os
import time
from pathlib import Path

import click

from harness.cli.common import competition_named, config_for, pretrained_overrides, score_text, workspace_of
from harness.cli.options import config_option, data_dir_option, device_option, pretrained_options, set_option
from harness.errors import HarnessError
from harness.workspace import data_dir_for


def under_torchrun() -> bool:
    """Whether torchrun (or --nproc) started this process as one of several (torch-free: env vars only)."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


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
@click.option("--fold", "only_fold", type=int, help="With --folds: train fold I (0-based; with "
                                                    "validation.repeats R, fold k of repeat r is r*K+k) only; "
                                                    "`--resume --run ID` trains the rest and joins them.")
@click.option("--folds-file", help="Train K fold models on the folds of this CSV (a K-fold run's folds.csv: "
                                   "`row`, then `fold`), so they can be blended with that run.")
@click.option("--nproc", type=int, help="Train one model in N processes of this machine with DistributedDataParallel "
                                        "(gloo on the CPU; NCCL on CUDA, one GPU each); train.batch_size is each "
                                        "process's. Under torchrun leave it out.")
@click.option("--devices", help="With K folds: train the fold models in parallel, one process per device: "
                                "0,1 (GPUs), cpu,cpu, or a number of CPU processes.")
@data_dir_option
@device_option
@click.pass_context
def train(ctx, name, config_file, overrides, epochs, lr, schedule, pretrained, no_pretrained, resume, run_id, folds,
          only_fold, folds_file, nproc, devices, data_dir, device):
    """Train a model for competition NAME, score it on validation and write a submission."""
    comp = competition_named(name)
    workspace = workspace_of(ctx)
    if nproc is not None and nproc < 1:
        raise HarnessError(f"--nproc {nproc}: give the number of processes, 1 or more")
    if nproc and nproc > 1 and devices:
        raise HarnessError("--nproc trains one model in several processes, --devices spreads fold models over "
                           "devices; give one")
    device_list = parse_devices(devices) if devices is not None else None

    def resolve():
        """What to train: (config, run id to resume or None, K-fold?); None when nothing is left to do."""
        return job_for(comp, workspace, config_file, overrides, epochs, lr, schedule, pretrained, no_pretrained,
                       resume, run_id, folds, only_fold, folds_file)

    if under_torchrun() or (nproc or 1) > 1:
        train_data_parallel(comp, workspace, resolve, nproc, data_dir, device)
        return
    job = resolve()
    if job is None:
        return
    path = data_dir_for(workspace, comp, data_dir)
    # Config and file errors are reported above, before torch is imported (seconds on a busy machine).
    from harness.runs import runner
    from harness.runs.folder import Run
    from harness.runs.kfold import train_folds

    run = Run.at(workspace, name, job["resume"]) if job["resume"] else None
    if job["folds"] is not None:
        run = train_folds(comp, job["config"], path, workspace, job["folds"], only_fold=only_fold, device=device,
                          resume=run, folds_file=folds_file, devices=device_list)
        if not run.finished:  # --fold I: one fold of several
            click.echo(f"run {run.id}: fold {only_fold} trained; `harness train {name} --resume --run {run.id}` "
                       "trains the others and joins them")
            click.echo(f"run folder: {run.dir}")
            return
    else:
        if device_list:
            raise HarnessError("--devices spreads K fold models over devices; add --folds K (or use --nproc N to "
                               "train one model in N processes)")
        run = runner.train(comp, job["config"], path, workspace, device=device, resume=run)
    report(run)


def job_for(comp, workspace, config_file, overrides, epochs, lr, schedule, pretrained, no_pretrained, resume, run_id,
            folds, only_fold, folds_file) -> dict | None:
    """The config to train with, the run to resume (its id) and the number of folds (None: one split, 0: the
    folds of a resumed run or of --folds-file); None when a resumed run has finished already."""
    from harness.runs.folder import Run

    name = comp.name
    run = None
    if resume:
        if config_file or overrides or epochs or lr or schedule or pretrained or no_pretrained:
            raise HarnessError("--resume continues a run with its saved config; drop --config/--set/--epochs/--lr/--schedule")
        if folds or only_fold is not None or folds_file:
            raise HarnessError("--resume continues a K-fold run with its own folds; drop --folds/--fold/--folds-file")
        run = Run.find(workspace, name, run_id, unfinished=True)
        if run.finished:
            click.echo(f"run {run.id} of {name} finished already ({score_text(run.summary())}); nothing to resume")
            return None
        config = run.config()
        click.echo(f"resuming {name} run {run.id}")
    else:
        if run_id not in (None, "latest"):
            raise HarnessError(f"--run {run_id} names a run to continue: add --resume, or leave --run out to "
                               "train a new run")
        overrides = pretrained_overrides(comp, overrides, pretrained, no_pretrained)
        config = config_for(comp, config_file, overrides, epochs=epochs, lr=lr, schedule=schedule)
        if folds is not None and folds < 2:
            raise HarnessError(f"--folds {folds}: give 2 or more folds (or leave --folds out for one split)")
        if only_fold is not None and not folds:
            raise HarnessError("--fold I needs --folds K: the number of folds it is one of")
    from harness.data.folds import check_k_folds
    from harness.runs.kfold import config_folds  # torch-free

    asked = f"--folds {folds}" if folds else None
    folds = folds or (None if resume else config_folds(config))  # --folds K, or the config's validation.folds
    if folds_file and folds:
        raise HarnessError("--folds-file sets the folds; drop --folds")
    if folds:  # before the data is read (train_folds checks it again, for any caller)
        check_k_folds(config.get("validation"), folds, asked or f"validation.folds = {folds}")
    k_fold = folds or folds_file or (run is not None and run.path("folds.csv").exists())
    return {"config": config, "resume": run.id if run else None, "folds": (folds or 0) if k_fold else None}


def report(run) -> None:
    summary = run.summary()
    click.echo(f"run {run.id}: {score_text(summary)} ({summary['train_seconds']:.1f} s on {summary['device']}"
               + (f", {summary['processes']} processes" if summary.get("processes", 1) > 1 else "") + ")")
    click.echo(f"run folder: {run.dir}")
    if "submission" in summary:
        click.echo(f"submission: {summary['submission']}")


def train_data_parallel(comp, workspace, resolve, nproc, data_dir, device) -> None:
    """One model in several processes: started here (--nproc N, torch's elastic launcher) or by torchrun."""
    from harness.train import distributed

    if under_torchrun():
        if nproc and nproc > 1:
            raise HarnessError("--nproc inside a job started by torchrun: leave --nproc out (torchrun starts the processes)")
        with distributed.joined(device) as process_device:
            job = distributed.from_main(resolve)  # rank 0 reads the config (and the run to resume), the others get it
            if job is None:
                return
            main = distributed.is_main()
            run = train_process_body(comp, job, workspace, data_dir, process_device)
        if main:
            report(run)
        return
    job = resolve()
    if job is None:
        return
    data_dir_for(workspace, comp, data_dir)  # a missing data folder is said once, before any process starts
    cuda = distributed.process_device(device).type == "cuda"
    if cuda:
        import torch

        if nproc > torch.cuda.device_count():
            raise HarnessError(f"--nproc {nproc}: this machine has {torch.cuda.device_count()} GPU(s), one per process; "
                               "give at most that many, or --device cpu")
    check_one_model(job)
    results = distributed.launch(nproc, train_process, comp.name, job, str(workspace), data_dir, device,
                                 what="training", then="rerun the command with --resume to continue from the last checkpoint")
    from harness.runs.folder import Run

    report(Run(Path(results[0])))


def check_one_model(job: dict) -> None:
    if job["folds"] is not None:
        raise HarnessError("data-parallel training (--nproc, torchrun) trains one model; K fold models train in "
                           "parallel with --folds K --devices ...")


def train_process(name, job, workspace, data_dir, device):
    """One process of `harness train NAME --nproc N`; rank 0 returns its run folder."""
    from harness.train import distributed

    comp = competition_named(name)
    with distributed.joined(device) as process_device:
        run = train_process_body(comp, job, Path(workspace), data_dir, process_device)
        return str(run.dir) if distributed.is_main() else None


def train_process_body(comp, job, workspace, data_dir, device):
    """What every process of a data-parallel job runs (under torchrun or --nproc): the run flow on its
    device; rank 0 resumes or creates the run folder."""
    from harness.runs import runner
    from harness.runs.folder import Run

    check_one_model(job)
    path = data_dir_for(workspace, comp, data_dir)
    resume = Run.at(workspace, comp.name, job["resume"]) if job["resume"] else None
    return runner.train(comp, job["config"], path, workspace, device=str(device), resume=resume)


def parse_devices(text: str) -> list[str]:
    """--devices: 0,1 (GPUs), cuda:0,cpu,... or a number N (N CPU processes)."""
    items = [item.strip() for item in str(text).split(",") if item.strip()]
    if len(items) == 1 and items[0].isdigit() and "," not in str(text):
        count = int(items[0])
        if count < 1:
            raise HarnessError(f"--devices {text}: give a number of processes of 1 or more, or a list such as 0,1")
        return ["cpu"] * count
    devices = [f"cuda:{item}" if item.isdigit() else item for item in items]
    if not devices:
        raise HarnessError(f"--devices {text!r}: give devices such as 0,1 (GPUs), cpu,cpu, or a number of CPU processes")
    for item in devices:
        if not (item == "cpu" or item.startswith("cuda")):
            raise HarnessError(f"--devices {text}: {item!r} is not a device; use GPU numbers (0,1), cuda:N or cpu")
    return devices


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
    if under_torchrun():
        raise HarnessError("lr-find runs in one process only; run it without torchrun")
    comp = competition_named(name)
    workspace = workspace_of(ctx)
    config = config_for(comp, config_file, pretrained_overrides(comp, overrides, pretrained, no_pretrained))
    from harness.runs import runner  # after the config is checked: torch takes seconds to import
    from harness.train import seed_everything
    from harness.train.lr_find import check_sweep

    check_sweep(start_lr, end_lr, num_it)  # before the data is read and the model built
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
