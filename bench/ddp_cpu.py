"""Data-parallel training on the CPU: two processes (gloo, one thread each) against one, with the same
global batch, through the CLI as a user runs it.

For each workload it alternates `harness train NAME ... --set train.batch_size=2B` (one process with
torch's default threads, one per core; and one process with OMP_NUM_THREADS=1) and `harness train NAME ...
--nproc 2 --set train.batch_size=B` (two), ``--repeats`` times each, and reports the median seconds per
epoch (from the run's history.csv: training plus validation, the first epoch left out as a warm-up) and
of the whole command, and the ratios one / two (above 1: two processes are faster), with the final
validation scores (equal up to float noise, since the global batches are the same, but for dropout).

    .venv/bin/python bench/ddp_cpu.py --movielens ../shared/data/movielens/ml-100k --rossmann ../shared/data/rossmann

Writes its section of bench/results/ddp.md (``--out`` for another file).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_report import RESULTS, command_line, cpu_model, write_section  # noqa: E402

HARNESS = str(Path(sys.executable).with_name("harness"))


def workloads(args) -> list[tuple[str, str, Path, list[str], int]]:
    """(label, competition, data folder, --set overrides, global batch)."""
    found = []
    if args.movielens:
        for kind in ("dot", "nn", "autorec"):
            found.append((f"MovieLens ml-100k u1.base, {kind}", "movielens", Path(args.movielens),
                          ["data.split=u1", f"model.kind={kind}"], 1024))
    if args.rossmann:
        from bench.rossmann_quality import data_folder

        found.append(("Rossmann, 100 stores", "rossmann", data_folder(Path(args.rossmann)), [], 256))
    return found


def train(competition: str, data: Path, overrides: list[str], batch: int, nproc: int, epochs: int,
          threads: int | None = None) -> dict:
    with tempfile.TemporaryDirectory(prefix="ddp-bench-") as workspace:
        command = [HARNESS, "--workspace", workspace, "train", competition, "--data-dir", str(data),
                   "--epochs", str(epochs), "--set", f"train.batch_size={batch // nproc}"]
        for item in overrides:
            command += ["--set", item]
        if nproc > 1:
            command += ["--nproc", str(nproc)]
        env = {**os.environ, **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - started
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
        (run,) = [p for p in (Path(workspace) / "runs" / competition).iterdir() if p.is_dir()]
        history = pd.read_csv(run / "history.csv")
        summary = json.loads((run / "summary.json").read_text())
    return {"epoch_s": float(history["time_s"].iloc[1:].median()), "wall_s": wall,
            "score": summary["primary_score"], "metric": summary["primary_metric"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--movielens", help="the ml-100k folder (u.data, u1.base, ...)")
    ap.add_argument("--rossmann", help="the Rossmann folder (train.csv or train_subset_100stores.csv.gz, store.csv)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(RESULTS / "ddp.md"))
    args = ap.parse_args()
    if not (args.movielens or args.rossmann):
        ap.error("give --movielens and/or --rossmann")
    import torch

    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    lines = [
        "## Two processes against one on the CPU (`bench/ddp_cpu.py`)", "",
        f"- Command: `{command_line()}`",
        f"- Date: {time.strftime('%a %b %d %H:%M:%S UTC %Y', time.gmtime())} (`date -u`)",
        f"- Machine: `nproc` = {os.cpu_count()}, `uname -m` = {platform.machine()}, CPU {cpu_model()}; "
        f"load average at the start {load} (the machine is shared)",
        f"- Software: Python {platform.python_version()}, torch {torch.__version__}; one process uses "
        f"{torch.get_num_threads()} threads (\"one\") or 1 (\"one, 1 thread\"), each of two processes 1 (gloo)",
        f"- {args.epochs} epochs per run, runs alternated, {args.repeats} of each; seconds per epoch "
        "(training + validation) are the median over epochs 2.. of a run, then over its repeats", "",
        "| workload | global batch | s/epoch: one / one, 1 thread / two | ratio one / two | ratio one, 1 thread / two "
        "| command wall s: one / one, 1 thread / two | validation score: one / two |",
        "|---|---|---|---|---|---|---|",
    ]
    setups = {"one": (1, None), "one, 1 thread": (1, 1), "two": (2, None)}
    for label, competition, data, overrides, batch in workloads(args):
        results = {name: [] for name in setups}
        for _ in range(args.repeats):
            for name, (nproc, threads) in setups.items():
                results[name].append(train(competition, data, overrides, batch, nproc, args.epochs, threads))
                print(f"{label}: {name}: {results[name][-1]}", file=sys.stderr, flush=True)
        epoch = {n: statistics.median(r["epoch_s"] for r in results[n]) for n in setups}
        wall = {n: statistics.median(r["wall_s"] for r in results[n]) for n in setups}
        lines.append(f"| {label} | {batch} | {epoch['one']:.2f} / {epoch['one, 1 thread']:.2f} / {epoch['two']:.2f} "
                     f"| {epoch['one'] / epoch['two']:.2f} | {epoch['one, 1 thread'] / epoch['two']:.2f} "
                     f"| {wall['one']:.1f} / {wall['one, 1 thread']:.1f} / {wall['two']:.1f} "
                     f"| {results['one'][-1]['metric']} {results['one'][-1]['score']:.5f} / "
                     f"{results['two'][-1]['score']:.5f} |")
    section = "\n".join(lines)
    print(section)
    write_section(Path(args.out), "bench/ddp_cpu.py", section)


if __name__ == "__main__":
    main()
