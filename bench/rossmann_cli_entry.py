"""Rossmann's best recipe as a user runs it: `harness train` and `harness blend` commands, no Python.

`bench/rossmann_blend.py` measures the mean of the network's seed ensemble and LightGBM in-process. This
script runs the same recipe through the CLI, as subprocesses in a scratch workspace, on the 100-store
history (linked as train.csv.gz in a scratch folder, nothing copied), and reads every figure from the
runs' `summary.json`: the default network with seeds 0, 1, 2 and `model.kind = "gbm"` (seed 0), each
validated on the config's last 48 days; `harness blend rossmann --runs NN0,NN1,NN2` (their plain mean),
then `harness blend rossmann --runs SEEDS,GBM`. Nothing is fitted or chosen on the 48 days.

    .venv/bin/python bench/rossmann_cli_entry.py --data-dir ../shared/data/rossmann

Writes its section of bench/results/rossmann_quality.md (``--out`` for another file).
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_report import RESULTS, command_line, environment, write_section  # noqa: E402
from bench.kfold_quality import Cli  # noqa: E402
from bench.rossmann_blend import TARGET  # noqa: E402  (issue 12's target on the held-out 48 days)
from bench.rossmann_quality import data_folder  # noqa: E402
from harness.progress import echo  # noqa: E402

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="the network's seeds")
    parser.add_argument("--threads", type=int, default=1, help="OMP/MKL threads of each command")
    parser.add_argument("--out", type=Path, default=RESULTS / "rossmann_quality.md")
    args = parser.parse_args()
    workspace = Path(tempfile.mkdtemp(prefix="rossmann-cli-entry-"))
    cli = Cli(workspace, args.threads, "cpu", echo)
    folder = data_folder(args.data_dir)
    try:
        train = ["train", "rossmann", "--data-dir", str(folder)]
        nets = [cli("rossmann", *train, "--set", f"seed={seed}") for seed in args.seeds]
        gbm = cli("rossmann", *train, "--set", 'model.kind="gbm"', "--set", "seed=0")
        seeds = cli("rossmann", "blend", "rossmann", "--runs", ",".join(n["run"] for n in nets), device=False)
        entry = cli("rossmann", "blend", "rossmann", "--runs", f"{seeds['run']},{gbm['run']}", device=False)
    finally:
        if folder != args.data_dir.resolve():
            shutil.rmtree(folder, ignore_errors=True)  # symlinks only
        shutil.rmtree(workspace, ignore_errors=True)

    labels = {**{n["run"]: f"NN{seed}" for seed, n in zip(args.seeds, nets)}, gbm["run"]: "GBM", seeds["run"]: "SEEDS"}

    def row(what, result, seconds=True):
        shown = result["argv"].replace(str(folder), "ROSSMANN")
        for run, label in labels.items():  # run ids are times: name them by what they hold
            shown = shown.replace(run, label)
        return (f"| `{shown}` | {what} | {result['summary']['primary_score']:.4f} | "
                + (f"{result['wall']:.0f} |" if seconds else "- |"))

    score = entry["summary"]["primary_score"]
    lines = ["## The same recipe through the CLI: train, blend, blend", "", f"Command: `{command_line()}`", "",
             *environment(), "",
             "Each figure is the run's own `summary.json` `primary_score` (RMSPE on the config's last 48 days, "
             "2015-06-14 to 2015-07-31); the blends are plain means, nothing fitted on those days.", "",
             "| command | what | RMSPE on the 48 days | seconds |", "|---|---|---|---|"]
    lines += [row(f"network, seed {seed}", n) for seed, n in zip(args.seeds, nets)]
    lines += [row("LightGBM (its defaults)", gbm), row("the network's seed ensemble", seeds, False),
              row("**the entry**: mean of the seed ensemble and LightGBM", entry, False), "",
              f"- The entry: {score:.4f}; issue 12's target of {TARGET} is "
              + ("met" if score <= TARGET else f"not met (by {score - TARGET:.4f})")]
    section = "\n".join(lines) + "\n"
    print(section)
    write_section(args.out, "bench/rossmann_cli_entry.py", section)


if __name__ == "__main__":
    main()
