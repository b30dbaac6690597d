"""`harness auto` on the three Kaggle tabular competitions: the automated entry's CV against the defaults.

For each competition, through the `harness` command line as a user would run it:

1. ``harness new NAME --from DIR --force`` (the TOML and the data copy);
2. ``harness train NAME --folds 5``: the defaults (the entity-embedding network), its CV score;
3. ``harness auto NAME --budget B --dry-run --seed 0``: baselines (network and LightGBM), tuning within the
   budget, the nested OOF ensemble, the submit decision (no upload), the report.

It reports the entry's CV (the ensemble's nested CV) against step 2's, and the ensemble's CV against its best
member's (the best single run: chosen as the best on these folds, so optimistic). Each competition writes its
own section of ``--out`` (default bench/results/auto.md), headed by the command, date and machine, with the
session's report tables beneath.

    .venv/bin/python bench/auto_tabular.py --only bike-sharing-demand --budget 10m
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import bench_report  # noqa: E402
from harness.workspace import write_text  # noqa: E402

COMPETITIONS = ("bike-sharing-demand", "amazon-employee-access-challenge",
                "otto-group-product-classification-challenge")
SHORT = {"bike-sharing-demand": "bike", "amazon-employee-access-challenge": "amazon",
         "otto-group-product-classification-challenge": "otto"}
HARNESS = str(Path(sys.executable).parent / "harness")


def harness(workspace: Path, log, *args) -> tuple[str, float]:
    """Run one harness command, its output appended to ``log``; (its output, wall seconds). Exits on failure."""
    command = [HARNESS, "--workspace", str(workspace), *map(str, args)]
    log.write(f"\n$ {' '.join(command)}\n")
    log.flush()
    started = time.time()
    done = subprocess.run(command, capture_output=True, text=True)
    log.write(done.stdout + done.stderr)
    log.flush()
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(command)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done.stdout + done.stderr, time.time() - started


def latest_session(workspace: Path, name: str) -> Path:
    return sorted(p for p in (workspace / "auto" / name).iterdir() if (p / "state.json").is_file())[-1]


def fmt(value, digits=5) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) else "-"


def enter(slug: str, data_dir: Path, workspace: Path, budget: str, log) -> dict:
    name = SHORT[slug]
    harness(workspace, log, "new", name, "--from", data_dir / slug, "--force")
    out, train_seconds = harness(workspace, log, "train", name, "--folds", 5)
    run = re.findall(r"^run (\d{8}-\d{6}\S*?):", out, flags=re.M)[-1]
    default = json.loads((workspace / "runs" / name / run / "summary.json").read_text())
    auto_command = ["auto", name, "--budget", budget, "--dry-run", "--seed", 0, "--restart"]
    out, auto_seconds = harness(workspace, log, *auto_command)
    folder = latest_session(workspace, name)
    state = json.loads((folder / "state.json").read_text())
    trials = [t for kind in state["tuning"]["kinds"].values() for t in kind["trials"]]
    return {"slug": slug, "name": name, "metric": default["primary_metric"], "direction": default["direction"],
            "default": {"run": run, "cv": default["cv_score"], "sd": default["fold_sd"], "seconds": train_seconds},
            "state": state, "trials": trials, "auto_seconds": auto_seconds, "report": folder / "report.md",
            "auto_command": "harness " + " ".join(map(str, auto_command))}


def section(result: dict, command: str) -> str:
    state, metric = result["state"], result["metric"]
    entry, best = state["ensemble"], state["ensemble"]["best_member"]
    sign = 1 if result["direction"] == "minimize" else -1
    vs_default = sign * (result["default"]["cv"] - entry["cv"])
    vs_best = sign * (best["cv"] - entry["cv"])
    counts = {}
    for t in result["trials"]:
        counts[t["state"]] = counts.get(t["state"], 0) + 1
    tally = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none"
    baselines = "; ".join(f"{k} {fmt(v.get('cv'))} ± {fmt(v.get('sd'))}" for k, v in state["baselines"].items())
    lines = [
        f"### {result['slug']} ({metric}, {'lower' if sign == 1 else 'higher'} is better)",
        "",
        f"- Command: `{command}`",
        f"- The two commands it runs: `harness train {result['name']} --folds 5` and `{result['auto_command']}`",
        *bench_report.environment(),
        "",
        "| what | CV | fold sd | wall time |",
        "|---|---|---|---|",
        f"| `harness train --folds 5` defaults (network), run {result['default']['run']} | "
        f"{fmt(result['default']['cv'])} | {fmt(result['default']['sd'])} | {result['default']['seconds']:.0f} s |",
        f"| auto baselines | {baselines} | | |",
        f"| auto trials | {len(result['trials'])} ({tally}) | | |",
        f"| auto best member: {best['kind']} {best['source']} (optimistic: the best of the runs on these folds) | "
        f"{fmt(best['cv'])} | {fmt(best.get('sd'))} | |",
        f"| **auto entry**: {entry.get('method') or 'single run'} {entry['kind']} of {len(entry['members'])} "
        f"run(s), nested CV | **{fmt(entry['cv'])}** | {fmt(entry.get('sd'))} | {result['auto_seconds']:.0f} s |",
        "",
        f"- Entry against the defaults: {fmt(abs(vs_default))} {'better' if vs_default >= 0 else 'worse'} "
        f"({vs_default / abs(result['default']['cv']) * 100:+.1f}% of the default's CV).",
        f"- Ensemble against its best member: {fmt(abs(vs_best))} {'better' if vs_best >= 0 else 'worse'}.",
        f"- Decision (dry run): {state['decision']['reason']}.",
        "",
        "<details><summary>The session's report (tables; the PNGs stay in the workspace)</summary>",
        "",
    ]
    report = result["report"].read_text().splitlines()
    lines += [line for line in report[1:] if not line.startswith("![")]
    lines += ["", "</details>"]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--workspace", default="/tmp/bench-auto-tabular")
    parser.add_argument("--only", choices=COMPETITIONS, action="append")
    parser.add_argument("--budget", default="20m", help="harness auto's --budget for each competition")
    parser.add_argument("--out", default=str(bench_report.RESULTS / "auto.md"))
    args = parser.parse_args()
    command = bench_report.command_line()
    workspace = Path(args.workspace)
    workspace.mkdir(parents=True, exist_ok=True)
    out = Path(args.out)
    if not out.exists():
        write_text(out, "# `harness auto` on the tabular competitions (issue 14's benchmark)\n\n"
                                     "Written by `bench/auto_tabular.py`, one section per competition.\n")
    with open(workspace / "bench.log", "a") as log:
        for slug in args.only or COMPETITIONS:
            result = enter(slug, Path(args.data_dir), workspace, args.budget, log)
            text = section(result, command)
            bench_report.write_section(out, f"bench/auto_tabular.py {slug}", text)
            print(text, flush=True)
    print(f"written: {out}")


if __name__ == "__main__":
    main()
