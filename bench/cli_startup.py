"""Where a CLI call's time goes: the wall time of commands that do little work, and what they import.

    .venv/bin/python bench/cli_startup.py [--repeats 5] [--compare REV] [--out bench/results/cli_startup.md]

Each command runs ``--repeats`` times in a fresh process, alternating with the same command of git
revision ``--compare`` (checked out into a temporary worktree) when given, so both see the same load;
the table gives the median wall times and their ratio. ``-X importtime`` then gives the cumulative
import time of the heaviest top-level packages for one of them.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The CLI of the source tree on PYTHONPATH (this checkout, or a worktree of another revision).
CLI = [sys.executable, "-c", "from harness.cli import cli; cli(prog_name='harness')"]

COMMANDS = {
    "harness --version": ["--version"],
    "harness list": ["list"],
    "bad --set key (error, exit 2)": ["train", "movielens", "--set", "train.nope=1"],
    "--set train.epochs=0 (error, exit 2)": ["train", "movielens", "--set", "train.epochs=0"],
    "missing data (error, exit 2)": ["train", "movielens", "--data-dir", "/nonexistent"],
}


def wall(args: list[str], workspace: str, tree: Path) -> tuple[float, int]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    start = time.perf_counter()
    proc = subprocess.run([*CLI, "--workspace", workspace, *args], capture_output=True, text=True, cwd=tree, env=env)
    return time.perf_counter() - start, proc.returncode


def import_times(args: list[str], workspace: str) -> dict[str, float]:
    """Cumulative import seconds of each top-level package imported by one call."""
    code = ("import sys; from harness.cli import cli; "
            f"sys.argv = ['harness', '--workspace', {workspace!r}, *{args!r}]; cli()")
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, cwd=ROOT)
    totals: dict[str, float] = {}
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = line.split("|")
        if name.startswith(" ") and not name.startswith("  "):  # top level: one leading space
            package = name.strip().split(".")[0]
            try:
                totals[package] = totals.get(package, 0.0) + int(cumulative) / 1e6
            except ValueError:
                continue
    return dict(sorted(totals.items(), key=lambda kv: -kv[1])[:8])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--compare", help="a git revision to measure beside this checkout")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    command = "bench/cli_startup.py --repeats %d%s" % (args.repeats, f" --compare {args.compare}" if args.compare else "")
    lines = ["# CLI start-up time", "",
             f"Command: `.venv/bin/python {command}` at commit {head}  ",
             f"Date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; machine: {platform.machine()}, "
             f"{os.cpu_count()} cores, Python {platform.python_version()}; the machine was shared (load "
             f"average {os.getloadavg()[0]:.1f}), so read the ratios", ""]
    if args.compare:
        lines += [f"| command | {args.compare} s | this checkout s | ratio | exit code |", "|---|---:|---:|---:|---:|"]
    else:
        lines += ["| command | median wall s | exit code |", "|---|---:|---:|"]
    with tempfile.TemporaryDirectory() as ws, tempfile.TemporaryDirectory() as old_root:
        old = Path(old_root) / "tree"
        if args.compare:
            subprocess.run(["git", "worktree", "add", "--detach", str(old), args.compare], cwd=ROOT, check=True,
                           capture_output=True)
        try:
            for label, argv in COMMANDS.items():
                ours, theirs = [], []
                for _ in range(args.repeats):
                    ours.append(wall(argv, ws, ROOT))
                    if args.compare:
                        theirs.append(wall(argv, ws, old))
                now = statistics.median(t for t, _ in ours)
                if args.compare:
                    before = statistics.median(t for t, _ in theirs)
                    lines.append(f"| `{label}` | {before:.2f} | {now:.2f} | {now / before:.2f} | {ours[-1][1]} |")
                else:
                    lines.append(f"| `{label}` | {now:.2f} | {ours[-1][1]} |")
        finally:
            if args.compare:
                subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=ROOT, capture_output=True)
        lines += ["", "Cumulative import time of the top-level packages in `harness train movielens --set "
                  "train.epochs=0` (one run of `-X importtime`):", "", "| package | s |", "|---|---:|"]
        for package, seconds in import_times(COMMANDS["--set train.epochs=0 (error, exit 2)"], ws).items():
            lines.append(f"| {package} | {seconds:.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(args.out)


if __name__ == "__main__":
    main()
