"""Three Kaggle tabular competitions entered with `harness new` and a TOML only: 5-fold CV of the
entity-embedding network, LightGBM (model.kind = "gbm") and their honest (nested) OOF blend.

Everything runs through the `harness` command line, as a user would; no Python is written for any of the
competitions. The folds are the harness's own (validation.split_seed = 0), which are scikit-learn's
KFold / StratifiedKFold(5, shuffle=True, random_state=0): the same rows as bench/tabular_peers.py, which
this script checks when that script's folds files are in --peer-dir.

    .venv/bin/python bench/tabular_kinds.py [--only bike-sharing-demand] [--data-dir ../shared/data]
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.bench_report import RESULTS, command_line, environment, write_section  # noqa: E402

COMPETITIONS = ("bike-sharing-demand", "amazon-employee-access-challenge",
                "otto-group-product-classification-challenge")
SHORT = {"bike-sharing-demand": "bike", "amazon-employee-access-challenge": "amazon",
         "otto-group-product-classification-challenge": "otto"}
HARNESS = str(Path(sys.executable).parent / "harness")


def harness(workspace: Path, *args) -> str:
    """Run one harness command; its output, or the command's error and exit."""
    command = [HARNESS, "--workspace", str(workspace), *map(str, args)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(command)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done.stdout + done.stderr


def run_id(output: str) -> str:
    return re.findall(r"^run (\d{8}-\d{6}\S*?):", output, flags=re.M)[-1]


def summary(workspace: Path, name: str, run: str) -> dict:
    return json.loads((workspace / "runs" / name / run / "summary.json").read_text())


def check_same_folds(workspace: Path, name: str, run: str, peer_dir: Path, slug: str) -> str:
    peer = peer_dir / slug / "folds.csv"
    if not peer.is_file():
        peer = next(iter(sorted(peer_dir.glob(f"{slug}*folds*.csv"))), None) if peer_dir.is_dir() else None
    if peer is None or not peer.is_file():
        return "peer folds not found (run bench/tabular_peers.py first to compare)"
    ours = pd.read_csv(workspace / "runs" / name / run / "folds.csv")
    theirs = pd.read_csv(peer)
    same = len(ours) == len(theirs) and np.array_equal(ours["fold"].to_numpy(), theirs["fold"].to_numpy())
    if not same:
        sys.exit(f"{name}: the harness's folds differ from {peer}; the comparison would not be on the same rows")
    return f"identical to {peer}"


def enter(slug: str, data_dir: Path, workspace: Path, peer_dir: Path, methods) -> dict:
    name = SHORT[slug]
    result = {"competition": slug}
    harness(workspace, "new", name, "--from", data_dir / slug, "--force")
    runs = {}
    for kind in ("nn", "gbm"):
        started = time.time()
        out = harness(workspace, "train", name, "--folds", 5, "--set", f'model.kind="{kind}"')
        runs[kind] = run_id(out)
        s = summary(workspace, name, runs[kind])
        result[kind] = {"run": runs[kind], "cv": s["cv_score"], "fold_mean": s["fold_mean"], "fold_sd": s["fold_sd"],
                        "seconds": round(time.time() - started, 1)}
        result["metric"], result["direction"] = s["primary_metric"], s["direction"]
    result["folds"] = check_same_folds(workspace, name, runs["nn"], peer_dir, slug)
    for method in methods:
        started = time.time()
        out = harness(workspace, "blend", name, "--runs", f"{runs['nn']},{runs['gbm']}", "--method", method)
        blend = Path(re.findall(r"^run folder: (\S+)", out, flags=re.M)[-1]).name
        s = summary(workspace, name, blend)
        result[f"blend_{method}"] = {"run": blend, "cv": s["primary_score"], "in_sample": s.get("in_sample_score"),
                                     "weights": s.get("weights"), "seconds": round(time.time() - started, 1)}
        harness(workspace, "submit", name, "--run", blend, "--dry-run")
    return result


def peer_figures(peer_dir: Path, slug: str) -> dict:
    """The peers' OOF scores on the same folds (bench/tabular_peers.py, bench/autogluon_peer.py), where run."""
    found = {}
    for key, file in (("LightGBM defaults", "lightgbm.json"), ("LightGBM defaults, ids as categories", "lightgbm_cat.json"),
                      ("AutoGluon medium_quality 60 s/fold", "autogluon.json"),
                      ("AutoGluon medium_quality 150 s/fold", "autogluon_t150.json")):
        path = peer_dir / slug / file
        if path.is_file():
            found[key] = json.loads(path.read_text())["oof"]
    return found


def report(results: list[dict], peer_dir: Path, methods) -> str:
    lines = ["### harness (NN, GBM, blend), entered with `harness new` and a TOML only", "",
             f"Command: `{command_line()}`", "", *environment(), "",
             "Every figure is out of fold on the same 5 folds as the peers (checked row for row when the peers' "
             "folds files are present). `nn` and `gbm` are `harness train NAME --folds 5` with the tabular kind's "
             "defaults (chosen before these runs, on Rossmann's training period: see bench/results/tabular_defaults.md); "
             "the blends are `harness blend NAME --runs NN,GBM --method M` and their figure is the nested CV (each "
             "fold's rows predicted by a blender fitted on the other folds' OOF rows only).", ""]
    header = ["competition", "metric", "nn", "gbm", *[f"blend {m}" for m in methods], "best peer", "ratio best/peer"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in results:
        peers = peer_figures(peer_dir, r["competition"])
        higher = r["direction"] == "maximize"
        ours = [r["nn"]["cv"], r["gbm"]["cv"], *[r[f"blend_{m}"]["cv"] for m in methods]]
        best = max(ours) if higher else min(ours)
        lgbm = peers.get("LightGBM defaults, ids as categories") or peers.get("LightGBM defaults")
        row = [r["competition"], r["metric"], *[f"{v:.5f}" for v in ours],
               f"{lgbm:.5f} (LightGBM)" if lgbm is not None else "not run",
               f"{best / lgbm:.4f}" if lgbm is not None else ""]
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "Fold sd and wall time (seconds, 5 folds, on a machine shared with other jobs):", "",
              "| competition | nn sd | gbm sd | nn s | gbm s |", "|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['competition']} | {r['nn']['fold_sd']:.5f} | {r['gbm']['fold_sd']:.5f} | "
                     f"{r['nn']['seconds']:.0f} | {r['gbm']['seconds']:.0f} |")
    lines += ["", "Peers on the same folds (from their JSON files):", ""]
    for r in results:
        for name, value in peer_figures(peer_dir, r["competition"]).items():
            lines.append(f"- {r['competition']}, {name}: {value:.5f}")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"))
    parser.add_argument("--workspace", default="/tmp/bench-tabular-kinds")
    parser.add_argument("--peer-dir", default="/tmp/tabular-peers", help="bench/tabular_peers.py's --out")
    parser.add_argument("--only", choices=COMPETITIONS, action="append")
    parser.add_argument("--methods", default="mean,weights,stack")
    parser.add_argument("--out", default=str(RESULTS / "tabular_peers.md"))
    args = parser.parse_args()
    methods = args.methods.split(",")
    results = []
    for slug in args.only or COMPETITIONS:
        result = enter(slug, Path(args.data_dir), Path(args.workspace), Path(args.peer_dir), methods)
        results.append(result)
        print(json.dumps(result, indent=1), flush=True)
    (Path(args.workspace) / "results.json").write_text(json.dumps(results, indent=1))
    section = report(results, Path(args.peer_dir), methods)
    print(section)
    write_section(Path(args.out), "bench/tabular_kinds.py", section)


if __name__ == "__main__":
    main()
