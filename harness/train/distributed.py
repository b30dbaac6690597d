"""Many processes training one model: torch.distributed's process group, this process's rank, the launcher.

Each process of a job runs the same command. torchrun (any number of machines) or ``harness train NAME
--nproc N`` (torch's elastic launcher, the engine inside torchrun, on this machine) starts them and sets
RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT; ``init`` joins them with the env:// rendezvous,
NCCL on CUDA (one GPU per process, by local rank) and gloo on the CPU. The Learner wraps its model in
DistributedDataParallel and splits its loaders by rank (``split``); rank 0 alone writes files.

Outside a job (no WORLD_SIZE above 1) every helper here is a no-op: rank 0 of 1.
"""
from __future__ import annotations

import contextlib
import datetime
import logging
import os
import signal
import tempfile
import uuid
from pathlib import Path

import torch
import torch.distributed as dist

from harness.errors import HarnessError
from harness.train.device import pick_device

TIMEOUT_ENV = "HARNESS_DDP_TIMEOUT"
# Seconds a collective may wait for a silent process before the job fails (torch's own default is 30 min
# for gloo): long enough for rank 0's checkpoint and prediction, short enough not to look like a hang.
DEFAULT_TIMEOUT = 300


# ---------------------------------------------------------------------- where this process stands
def launched() -> bool:
    """Whether torchrun (or --nproc) started this process as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def active() -> bool:
    """Whether this process trains in a group of several."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def is_main() -> bool:
    """Rank 0: the process that writes files, prints tables and shows progress bars."""
    return rank() == 0


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def timeout_seconds() -> int:
    value = os.environ.get(TIMEOUT_ENV, str(DEFAULT_TIMEOUT))
    try:
        seconds = int(value)
    except ValueError:
        seconds = 0
    if seconds < 1:
        raise HarnessError(f"${TIMEOUT_ENV} = {value!r}: give the seconds a process may wait for the others (≥ 1)")
    return seconds


# ---------------------------------------------------------------------- joining and leaving
def process_device(requested: str | None) -> torch.device:
    """This process's device in a job: CUDA's GPU of its local rank (so ``--device cuda`` or ``auto``),
    else the CPU."""
    device = pick_device(requested)
    if device.type == "mps":
        raise HarnessError("--device mps: torch.distributed has no MPS backend; use --device cpu for several processes")
    if device.type != "cuda":
        return device
    if device.index is not None and requested not in (None, "auto", "cuda"):
        raise HarnessError(f"--device {requested}: each process of a job takes the GPU of its local rank; "
                           "give --device cuda (or auto)")
    index = local_rank()
    if index >= torch.cuda.device_count():
        raise HarnessError(f"process {index} of this machine has no GPU of its own ({torch.cuda.device_count()} "
                           "here); start at most one process per GPU")
    return torch.device("cuda", index)


def init(requested: str | None = "auto") -> torch.device:
    """Join the job's process group (env://); returns this process's device."""
    device = process_device(requested)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        backend = "gloo"
        if "OMP_NUM_THREADS" not in os.environ:  # as torchrun does: share this machine's cores between its processes
            per_machine = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // per_machine))
    dist.init_process_group(backend, init_method="env://", timeout=datetime.timedelta(seconds=timeout_seconds()))
    return device


def close() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@contextlib.contextmanager
def joined(requested: str | None = "auto"):
    """The process group for the block (yields this process's device); a collective that fails because
    another process died becomes one HarnessError line."""
    device = init(requested)
    try:
        yield device
    except RuntimeError as exc:
        if not from_a_lost_peer(exc):
            raise
        raise lost_peer(exc) from None
    finally:
        close()


def from_a_lost_peer(exc: BaseException) -> bool:
    """NCCL and timeouts raise torch's DistError; gloo a RuntimeError from its transport."""
    return isinstance(exc, dist.DistError) or "gloo" in str(exc) or "closed by peer" in str(exc)


class LostPeer(HarnessError):
    """A collective failed because another process of the job stopped (a consequence, not the cause)."""


def lost_peer(exc: BaseException) -> HarnessError:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    reason = reason.split("] ", 1)[-1][:120]  # without gloo's source path
    return LostPeer(f"process {rank()} lost contact with the other processes of the job ({reason}); the job "
                    "stopped: rerun the command with --resume to continue from the last checkpoint")


def has_training_buffers(model: torch.nn.Module) -> bool:
    """Whether DDP must send rank 0's buffers to the others each step. Only buffers that training changes
    need it (batch norm's running statistics, saved with the weights); the harness registers constant
    data (AutoRec's ratings, SVD++'s rated items) as non-persistent buffers, the same in every process
    because each builds them from the same state, and sending them is pure cost (6 MB a step on ml-100k)."""
    saved = set(model.state_dict())
    return any(name in saved for name, _ in model.named_buffers())


# ---------------------------------------------------------------------- collectives (no-ops alone)
def broadcast(obj, src: int = 0):
    """``obj`` of rank ``src`` on every process (any picklable object)."""
    if not active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def gather(obj) -> list:
    """Every process's ``obj``, in rank order, on every process."""
    if not active():
        return [obj]
    out = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def weighted_loss(loss: torch.Tensor, rows: int) -> tuple[torch.Tensor, float]:
    """This process's share of a global batch's mean loss, and that mean (for the history and the bar).

    DDP averages the processes' gradients; weighting each loss by ``processes x rows / global rows`` makes
    that average the gradient of the global batch's mean loss, as in one process, also when the batch
    splits unevenly (the last of an epoch). The weight is 1 when it splits evenly. One all-reduce.
    """
    if not active():
        return loss, loss.item()
    sums = torch.stack([loss.detach().float() * rows, torch.tensor(float(rows), device=loss.device)])
    dist.all_reduce(sums)
    total, global_rows = sums.tolist()
    return loss * (world_size() * rows / global_rows), total / global_rows


def from_main(compute):
    """``compute()`` on rank 0, its result on every process. If it raises, rank 0 raises that and the
    others a HarnessError with its message (so none waits for a result that never comes)."""
    if not active():
        return compute()
    result = failure = None
    if is_main():
        try:
            result = compute()
        except Exception as exc:
            failure = exc
    result, error = broadcast((result, None if failure is None else str(failure).splitlines()[0] if str(failure)
                                       else type(failure).__name__))
    if failure is not None:
        raise failure
    if error is not None:
        raise HarnessError(error)
    return result


@contextlib.contextmanager
def split(loader, whole_batches: bool):
    """Inside the block, ``loader`` yields this process's share of its batches (its ``split_over``).

    ``whole_batches`` (training): each batch of the one-process loader with ``batch_size x processes`` is
    split between the processes, so all of them take the same number of steps on the same global batches.
    Otherwise (evaluation) each process takes one block of rows; the blocks in rank order are the rows in
    order. Yields whether the loader was split: an evaluation loader that cannot be is read whole by every
    process; a training loader that cannot be is an error.
    """
    if not active() or loader is None:
        yield False
        return
    if not hasattr(loader, "split_over"):
        if whole_batches:
            raise HarnessError(f"the training loader ({type(loader).__name__}) cannot be split between processes; "
                               "train this competition in one process (without torchrun or --nproc)")
        yield False
        return
    loader.split_over(rank(), world_size(), whole_batches=whole_batches)
    try:
        yield True
    finally:
        loader.split_over(0, 1)


def refuse(what: str) -> None:
    """One line for a feature that cannot run in a group of processes."""
    if active():
        raise HarnessError(f"{what} runs in one process only; run it without torchrun or --nproc")


# ---------------------------------------------------------------------- one process per device
def check_devices(devices: list[str]) -> bool:
    """Every device of ``devices`` (``cpu``, ``cuda:N``) exists here; whether any is a GPU."""
    for device in devices:
        pick_device(device)
        if device.startswith("cuda:") and int(device.split(":")[1]) >= torch.cuda.device_count():
            raise HarnessError(f"--devices: there is no {device} here ({torch.cuda.device_count()} GPU(s))")
    return any(device.startswith("cuda") for device in devices)


def device_of(devices: list[str]) -> str:
    """This process's device among ``devices`` (by local rank), for processes that each train their own
    models (folds, trials) in no process group; CPU processes share the cores."""
    device = devices[local_rank()]
    if device == "cpu" and "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // devices.count("cpu")))
    return device


# ---------------------------------------------------------------------- starting a job on this machine
@contextlib.contextmanager
def quiet_launcher():
    """torch's launcher logs every start and stop; the harness says what matters in one line."""
    names = [name for name in logging.root.manager.loggerDict
             if name.startswith(("torch.distributed.elastic", "torch.distributed.launcher", "torch.multiprocessing",
                                 "torchelastic"))]
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def launch(nproc: int, fn, *args, what: str = "job", then: str = "") -> dict:
    """Run ``fn(*args)`` in ``nproc`` processes of this machine with torch's elastic launcher; returns
    {rank: what fn returned}.

    The processes are spawned, never forked: a fork copies this process's threads' locks (torch's and
    OpenMP's thread pools, a progress bar's monitor) in whatever state they are, and a forked child of a
    process that has trained already can crash (SIGSEGV) at random. Spawning costs an import of torch
    and the plugins (a second or two) per process. A process that fails stops the others at once (the launcher's job);
    its HarnessError, or how it died (followed by ``then``: what to do next), becomes this process's one
    HarnessError line.
    """
    from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    if launched():
        raise HarnessError("--nproc inside a job started by torchrun: leave --nproc out (torchrun starts the processes)")
    with tempfile.TemporaryDirectory(prefix="harness-job-") as job, quiet_launcher():
        errors = Path(job) / "errors"
        errors.mkdir()
        config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=uuid.uuid4().hex,
                              rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0,
                              start_method="spawn",
                              logs_specs=DefaultLogsSpecs(log_dir=str(Path(job) / "logs")))  # not left in /tmp
        try:
            return elastic_launch(config, as_rank)(str(errors), fn, *args)
        except ChildFailedError as exc:
            raise failure_line(exc, errors, nproc, what, then) from None


def as_rank(errors: str, fn, *args):
    """One process of ``launch``: its HarnessError is written for the launcher to report (exit code 2)."""
    try:
        return fn(*args)
    except HarnessError as exc:
        suffix = ".lost" if isinstance(exc, LostPeer) else ""
        (Path(errors) / f"{int(os.environ.get('RANK', '0'))}{suffix}").write_text(str(exc))
        raise SystemExit(exc.exit_code) from None


def failure_line(exc, errors: Path, nproc: int, what: str, then: str = "") -> HarnessError:
    """The cause, as one line: the first error a process gave, else how the first process that stopped
    by itself died, else what the others saw (they lost contact with it)."""
    failures = sorted(exc.failures.items(), key=lambda item: (item[1].timestamp, item[0]))
    for failed_rank, _ in failures:
        if (errors / str(failed_rank)).is_file():
            return HarnessError((errors / str(failed_rank)).read_text())
    causes = [item for item in failures if not (errors / f"{item[0]}.lost").is_file()]
    if not causes:
        return HarnessError((errors / f"{failures[0][0]}.lost").read_text())
    failed_rank, failure = causes[0]
    if failure.exitcode < 0:
        try:
            how = f"was killed by {signal.Signals(-failure.exitcode).name}"
        except ValueError:
            how = f"was killed by signal {-failure.exitcode}"
    else:
        how = f"exited with code {failure.exitcode}"
    return HarnessError(f"process {failed_rank} of {nproc} (pid {failure.pid}) {how}; the {what} stopped, "
                        "and the other processes with it" + (f"; {then}" if then else ""))
