"""One prepared script for a lent GPU machine: do the CUDA paths work, and how fast are they?

For the workloads that stand for the competitions (a collaborative-filtering dot product, I-AutoRec
with its ratings dense and sparse, a resnet34 on 224 px images, an AWD-LSTM language model) and each precision mode of the Learner
(fp32, bf16 autocast, fp16 autocast with a GradScaler), it trains a few steps through the shared
Learner and checks that parameters, batches and predictions sit on the device, that the loss is
finite and moves, and that a checkpoint saves and loads; then it reports throughput.

Then data-parallel training (``harness.train.distributed``: DistributedDataParallel, NCCL, one process per
GPU, every GPU of the machine; gloo and two CPU processes in the dry run): the resnet's images/s and the
AWD-LSTM's tokens/s per process, with each process's batch and data the one-process run's (weak scaling),
against one process on one device in the same script: scaling efficiency = per-process throughput / the
one process's. With a single GPU the job has one process (no gradient exchange): only the NCCL path is
checked.

    python bench/gpu_check.py                    # on the GPU machine (CUDA expected)
    python bench/gpu_check.py --device cpu --small   # a dry run here, to check the script itself

No test depends on it; results go to bench/results/gpu.md (data-parallel: bench/results/ddp.md) by hand,
with the date and the card.
"""
from __future__ import annotations

import argparse
import math
import platform
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from harness.data.loaders import TensorLoader
from harness.models.awd_lstm import AWDLSTM, LanguageModel
from harness.text.callbacks import ResetState
from harness.models.collab import DotProductBias
from harness.train import Callback, Learner, distributed
from harness.train.callbacks import Recorder


class DeviceCheck(Callback):
    """Fails loudly if a batch, a prediction or the loss is not where it should be."""

    def after_loss(self, learn):
        xb = learn.xb if isinstance(learn.xb, tuple) else (learn.xb,)
        for t in (*xb, learn.pred, learn.loss):
            assert t.device.type == learn.device.type, f"{tuple(t.shape)} on {t.device}, expected {learn.device}"
        assert math.isfinite(learn.loss.item()), "non-finite loss"


def collab(n, small):
    rows = 20_000 if small else 1_000_000
    g = torch.Generator().manual_seed(0)
    users, items = torch.randint(1, 1000, (rows,), generator=g), torch.randint(1, 2000, (rows,), generator=g)
    ratings = torch.randint(1, 6, (rows,), generator=g).float()
    model = DotProductBias(1000, 2000, 50)
    dl = TensorLoader((users, items), ratings, batch_size=1024, shuffle=True, device=n)
    return model, dl, nn.MSELoss(), rows, "ratings"


def autorec(n, small, dense_limit):
    """I-AutoRec on the same random ratings: its item-ratings buffer on the device, dense or sparse (the
    embedding-bag path that large MovieLens releases take)."""
    from harness.models.collab import ItemAutoRec

    model, dl, loss_fn, rows, unit = collab(n, small)
    users, items = dl.inputs
    model = ItemAutoRec(1000, 2000, 100, ratings=(users.tolist(), items.tolist(), dl.target.tolist()),
                        dense_limit=dense_limit)
    return model, dl, loss_fn, rows, unit


def vision(n, small, scale=1):
    """``scale``: that many times the images, for a job of that many processes (each with the same share)."""
    from harness.models.vision import VisionModel

    size, count = (64, 64) if small else (224, 512)
    count *= scale
    x = torch.randn(count, 3, size, size)
    y = torch.randint(0, 120, (count,))
    model = VisionModel(120, "resnet18" if small else "resnet34", pretrained=False)
    model = model.to(memory_format=torch.channels_last)
    dl = TensorLoader(x, y, batch_size=64, shuffle=True, device=n)
    return model, dl, nn.NLLLoss(), count, "images"


def language_model(n, small, scale=1):
    vocab, bs, bptt, batches = (2000, 16, 35, 8) if small else (30_000, 64, 70, 40)
    batches *= scale
    tokens = torch.randint(2, vocab, (batches * bs, bptt + 1), generator=torch.Generator().manual_seed(0))
    encoder = AWDLSTM(vocab, 100 if small else 400, 300 if small else 1150, 3)  # 1150: fast.ai wt103 (ulmfit)
    model = LanguageModel(encoder)
    dl = TensorLoader(tokens[:, :-1], tokens[:, 1:], batch_size=bs, device=n)
    return model, dl, model.loss, batches * bs * bptt, "tokens"


def check(name, build, device, mode, small):
    model, dl, loss_fn, units, unit_name = build(device, small)
    cbs = [Recorder(echo=False), DeviceCheck()] + ([ResetState()] if name == "awd-lstm" else [])
    learn = Learner(model, dl, None, loss_fn, device=device, mixed_precision=mode, callbacks=cbs)
    assert all(p.device.type == device.type for p in learn.model.parameters())
    learn.fit(1, 1e-3)  # warm-up: cuDNN autotuning, allocator
    first = learn.get_callback(Recorder).history[-1]["train_loss"]
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    learn.fit(1, 1e-3)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    last = learn.get_callback(Recorder).history[-1]["train_loss"]
    with tempfile.TemporaryDirectory() as tmp:
        learn.save_checkpoint(Path(tmp) / "ckpt.pt")
        learn.resume_from(Path(tmp) / "ckpt.pt")
    amp = {None: "fp32"}.get(learn.amp_dtype, str(learn.amp_dtype).replace("torch.", ""))
    return f"| {name} | {mode} ({amp}) | {units / seconds:,.0f} {unit_name}/s | {first:.4f} -> {last:.4f} | ok |"


def throughput(name, device, small, scale=1) -> float:
    """Units per second of this process in one epoch after a warm-up epoch, mixed precision "auto"; in a
    job each process trains its share (``scale`` = processes) of the data."""
    build = {"resnet": vision, "awd-lstm": language_model}[name]
    model, dl, loss_fn, units, _ = build(device, small, scale)
    cbs = [Recorder(echo=False), DeviceCheck()] + ([ResetState()] if name == "awd-lstm" else [])
    learn = Learner(model, dl, None, loss_fn, device=device, mixed_precision="auto", callbacks=cbs)
    learn.fit(1, 1e-3)
    synchronize(device)
    start = time.perf_counter()
    learn.fit(1, 1e-3)
    synchronize(device)
    return units / scale / (time.perf_counter() - start)


def synchronize(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()
    if distributed.active():
        torch.distributed.barrier()


def ddp_process(device_type, small, scale) -> dict:
    """One process of the data-parallel check: its images/s and tokens/s."""
    with distributed.joined(device_type) as device:
        return {name: throughput(name, device, small, scale) for name in ("resnet", "awd-lstm")}


def ddp_check(device, small) -> None:
    nproc = torch.cuda.device_count() if device.type == "cuda" else 2
    print(f"\n## data-parallel: {nproc} process(es), {'NCCL, one GPU each' if device.type == 'cuda' else 'gloo, CPU'}"
          f"{' (one process: no gradient exchange)' if nproc == 1 else ''}")
    print("| workload | one process | per process in the job (min .. max) | job total | scaling efficiency |")
    print("|---|---|---|---|---|")
    single = {name: throughput(name, device, small) for name in ("resnet", "awd-lstm")}
    try:
        results = distributed.launch(nproc, ddp_process, device.type, small, nproc,
                                     what="data-parallel check")
    except Exception as exc:  # report, as the table above does
        print(f"| all | - | - | - | FAILED: {type(exc).__name__}: {exc} |", flush=True)
        return
    for name, unit in (("resnet", "images"), ("awd-lstm", "tokens")):
        each = [results[rank][name] for rank in sorted(results)]
        per = sum(each) / len(each)
        print(f"| {name} | {single[name]:,.0f} {unit}/s | {per:,.0f} {unit}/s ({min(each):,.0f} .. {max(each):,.0f}) "
              f"| {sum(each):,.0f} {unit}/s | {per / single[name]:.0%} |", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--small", action="store_true", help="tiny sizes, for a dry run on the CPU")
    args = ap.parse_args()
    device = torch.device(args.device)
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} {card}, torch {torch.__version__}, "
          f"cuda {torch.version.cuda}")
    print("| workload | precision | throughput (one epoch after a warm-up epoch) | train loss | device, checkpoint |")
    print("|---|---|---|---|---|")
    modes = ["none", "bf16", "fp16"] if device.type == "cuda" else ["none"]
    workloads = (("dot product", collab), ("autorec, dense", lambda n, small: autorec(n, small, 10**9)),
                 ("autorec, sparse", lambda n, small: autorec(n, small, 0)), ("resnet", vision),
                 ("awd-lstm", language_model))
    for name, build in workloads:
        for mode in modes:
            try:
                print(check(name, build, device, mode, args.small), flush=True)
            except Exception as exc:  # report every failure, keep checking the rest
                print(f"| {name} | {mode} | - | - | FAILED: {type(exc).__name__}: {exc} |", flush=True)
    ddp_check(device, args.small)


if __name__ == "__main__":
    main()
