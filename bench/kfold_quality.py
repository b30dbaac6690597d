"""K-fold training and honest OOF blends through the real CLI: MovieLens ml-100k (u1..u5) and Rossmann.

Every figure comes from `harness` commands run as subprocesses in a scratch workspace (the real CLI,
its real output files); the script only reads their ``summary.json`` files and times them.

1. MovieLens ml-100k, the standard protocol: ``harness train movielens --folds 5 --set
   validation.scheme=predefined`` (GroupLens' u1.test .. u5.test as the five folds, so fold 0 is u1) for
   the config's default ``dot`` model and for the ``nn`` model with its own chosen settings; each run's
   CV RMSE over all 100,000 out-of-fold rows and its per-fold mean ± sd. Then ``harness blend movielens
   --runs DOT,NN --method mean|weights|stack``: the blend's nested (honest) CV, its per-fold scores
   (fold 0's is the ensemble's u1.test RMSE) and, labelled optimistic, the in-sample figure.
2. The overhead of K folds: the wall and CPU time of the ``dot`` ``--folds 5`` command against the sum
   of five plain ``harness train movielens --set data.split=uN`` commands (N = 1..5), same settings, run
   right after it in the same script run.
3. Rossmann, the 100-store history: ``harness train rossmann --folds 3`` (the config's expanding time
   folds of 48 days); the CV RMSPE and the per-fold scores.

Nothing here is chosen on the rows reported: the MovieLens settings are the ones
bench/movielens_quality.py chose on a random 10% of u1.base; Rossmann runs its config's defaults
(``--rossmann-epochs`` lowers the epochs for time, and the section then says so). Blend weights and
level-2 models are fitted inside the folds by ``harness blend`` itself (nested).

    .venv/bin/python bench/kfold_quality.py --movielens-dir ../shared/data/movielens/ml-100k \
        --rossmann-dir ../shared/data/rossmann --threads 1

Writes its section of bench/results/kfold.md (``--out`` for another file) with the command, date,
machine and code it ran on.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_report import RESULTS, ROOT, command_line, environment, write_section  # noqa: E402
from bench.rossmann_quality import data_folder  # noqa: E402  (the Kaggle layout as symlinks)

FOLDS = ("u1", "u2", "u3", "u4", "u5")
# `model.kind = "dot"`: the config's defaults (competitions/movielens.toml), chosen by
# bench/movielens_quality.py on a random 10% of u1.base. `model.kind = "nn"`: what the same script chose
# for nn on the same split (l2 0.05, lr 0.01, 10 epochs; bench/results/movielens.md).
MODELS = {
    "dot": [],
    "nn": ["model.kind=nn", "model.l2=0.05", "train.lr=0.01", "train.epochs=10"],
    # what the same script chose for svdpp on the same split (bench/results/movielens_svdpp.md)
    "svdpp": ["model.kind=svdpp", "model.implicit=all", "model.l2=0.2", "train.lr=0.01", "train.epochs=5"],
    # and for autorec (bench/results/movielens_autorec.md)
    "autorec": ["model.kind=autorec", "model.n_factors=100", "model.l2=0.3", "train.lr=0.005", "train.epochs=10"],
}
BLEND_METHODS = ("mean", "weights", "stack")
TARGET_U1 = 0.905


def harness_exe() -> str:
    local = ROOT / ".venv" / "bin" / "harness"
    return str(local) if local.exists() else (shutil.which("harness") or "harness")


class Cli:
    """Runs `harness --workspace WS ...` as a subprocess; returns the new run folder and the times."""

    def __init__(self, workspace: Path, threads: int | None, device: str, log):
        self.workspace, self.device, self.log = workspace, device, log
        self.env = dict(os.environ)
        if threads:
            for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
                self.env[name] = str(threads)

    def runs(self, competition: str) -> set[str]:
        folder = self.workspace / "runs" / competition
        return {p.name for p in folder.iterdir() if p.is_dir()} if folder.is_dir() else set()

    def __call__(self, competition: str, *args: str, device: bool = True) -> dict:
        argv = [harness_exe(), "--workspace", str(self.workspace), *args]
        if device:
            argv += ["--device", self.device]
        before = self.runs(competition)
        cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        proc = subprocess.run(argv, cwd=ROOT, env=self.env, capture_output=True, text=True)
        wall = time.perf_counter() - started
        cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
        shown = " ".join(["harness", *argv[1:]]).replace(str(self.workspace), "WS")
        self.log(f"$ {shown}\n  exit {proc.returncode}, {wall:.1f} s wall, {cpu:.1f} s CPU")
        if proc.returncode != 0:
            raise RuntimeError(f"{shown} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        new = sorted(self.runs(competition) - before)
        new = [n for n in new if not n.endswith(".partial")]
        if len(new) != 1:
            raise RuntimeError(f"{shown}: expected one new run folder, found {new}")
        folder = self.workspace / "runs" / competition / new[0]
        summary = json.loads((folder / "summary.json").read_text())
        return {"run": new[0], "dir": folder, "summary": summary, "wall": wall, "cpu": cpu,
                "output": proc.stdout + proc.stderr, "argv": shown}


def mean_sd(scores) -> str:
    sd = statistics.stdev(scores) if len(scores) > 1 else 0.0
    return f"{statistics.mean(scores):.4f} ± {sd:.4f}"


def oof_rows(folder: Path) -> int:
    oof = np.load(folder / "oof_preds.npy")
    return int((~np.isnan(oof.reshape(len(oof), -1)).any(axis=1)).sum())


def sets(items) -> list[str]:
    return [arg for item in items for arg in ("--set", item)]


def shown_settings(items) -> str:
    return ", ".join(f"`{s}`" for s in items) if items else "the config's defaults"


def movielens(cli: Cli, data_dir: Path, lines: list[str], overhead: bool, quick: bool) -> None:
    base = ["train", "movielens", "--data-dir", str(data_dir)]
    extra = ["train.epochs=1"] if quick else []
    lines += [f"## MovieLens ml-100k: five predefined folds (u1..u5), {len(MODELS)} models and their blends", "",
              "Each model: `harness train movielens --data-dir ml-100k --folds 5 --set validation.scheme=predefined` "
              "plus the settings shown (fold 0 validates on u1.test, fold 4 on u5.test; the five test files "
              "partition the 100,000 ratings). CV RMSE: on all out-of-fold rows at once; per fold: mean ± sd of "
              "the five fold RMSEs (`summary.json`).", ""]
    if quick:
        lines += ["**--quick: 1 epoch per model, a check of the script, not a result.**", ""]
    runs = {}
    for kind, settings in MODELS.items():
        runs[kind] = cli("movielens", *base, "--folds", "5", *sets(["validation.scheme=predefined", *settings, *extra]))
    lines += ["| model | settings | OOF rows | CV RMSE (all OOF rows) | u1 | u2 | u3 | u4 | u5 | per fold mean ± sd "
              "| command wall (s) |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for kind, result in runs.items():
        s = result["summary"]
        folds = s["fold_scores"]
        lines.append(f"| {kind} | {shown_settings(MODELS[kind])} | {oof_rows(result['dir']):,} | {s['cv_score']:.4f} | "
                     + " | ".join(f"{f:.4f}" for f in folds)
                     + f" | {s['fold_mean']:.4f} ± {s['fold_sd']:.4f} | {result['wall']:.0f} |")
    lines.append("")

    ids = ",".join(result["run"] for result in runs.values())
    blends = {m: cli("movielens", "blend", "movielens", "--runs", ids, "--method", m, device=False)
              for m in BLEND_METHODS}
    lines += [f"Blends: `harness blend movielens --runs {','.join(k.upper() for k in MODELS)} --method M` over the {len(MODELS)} runs above. Nested CV (honest): "
              "each fold's rows are predicted by a blender fitted on the other four folds' OOF rows only; fold 0's "
              "nested RMSE is therefore the ensemble's u1.test RMSE, with members trained on u1.base and a blender "
              "that never saw u1.test. In-sample (optimistic): the blender fitted on all 100,000 OOF rows and "
              "scored on them; not an estimate of anything (for `mean` nothing is fitted, so the two agree).", "",
              "| method | fitted blender | nested CV RMSE (honest) | u1 (fold 0) | u2 | u3 | u4 | u5 | per fold mean ± sd "
              "| in-sample RMSE (optimistic) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for method, result in blends.items():
        s = result["summary"]
        folds = s["fold_scores"]
        lines.append(f"| {method} | {describe_blender(s)} | {s['cv_score']:.4f} | "
                     + " | ".join(f"{f:.4f}" for f in folds)
                     + f" | {mean_sd(folds)} | {s['in_sample_score']:.4f} |")
    lines.append("")
    best_single_u1 = min(r["summary"]["fold_scores"][0] for r in runs.values())
    lines += [f"Target (issue 12): the ensemble's u1.test RMSE ≤ {TARGET_U1} (fastai 2.8: 0.934, "
              "`bench/results/movielens.md`: 0.9337). The ensemble's u1 (fold 0) nested RMSE:", ""]
    for method, result in blends.items():
        u1 = result["summary"]["fold_scores"][0]
        verdict = "met" if u1 <= TARGET_U1 else f"not met (by {u1 - TARGET_U1:.4f})"
        lines.append(f"- `{method}`: {u1:.4f}, target {verdict}; against the better single model's u1 "
                     f"{best_single_u1:.4f}: {u1 - best_single_u1:+.4f}")
    lines.append("")
    lines += ["The three blends are all reported; none is picked as \"the\" ensemble on these rows.", ""]

    if overhead:
        singles = [cli("movielens", *base, *sets([f"data.split={fold}", *extra])) for fold in FOLDS]
        k = runs["dot"]
        wall_sum, cpu_sum = sum(r["wall"] for r in singles), sum(r["cpu"] for r in singles)
        train_sum = sum(r["summary"]["train_seconds"] for r in singles)
        lines += ["## Overhead of K folds over K single runs (MovieLens, `dot`)", "",
                  "The `dot` `--folds 5` command above, against five plain `harness train movielens --data-dir ml-100k "
                  "--set data.split=uN` commands (N = 1..5, the same settings), run one after the other right after "
                  "the blends. Wall: each command's elapsed time, start-up included (one process for the K-fold "
                  "run, five for the single runs); CPU: user + system time of the command's process (steadier on "
                  "a shared machine); train: the `train_seconds` each run's `summary.json` records (from just before "
                  "the data is read to the end of the run: the K-fold run reads it once, each single run once).", "",
                  "| | command wall (s) | command CPU (s) | train_seconds | u1 | u2 | u3 | u4 | u5 |",
                  "|---|---|---|---|---|---|---|---|---|",
                  f"| `--folds 5 --set validation.scheme=predefined` | {k['wall']:.1f} | {k['cpu']:.1f} | "
                  f"{k['summary']['train_seconds']:.1f} | "
                  + " | ".join(f"{f:.4f}" for f in k["summary"]["fold_scores"]) + " |",
                  f"| five `--set data.split=uN` runs, summed | {wall_sum:.1f} | {cpu_sum:.1f} | {train_sum:.1f} | "
                  + " | ".join(f"{r['summary']['primary_score']:.4f}" for r in singles) + " |",
                  f"| ratio K-fold / sum of singles | {k['wall'] / wall_sum:.3f} | {k['cpu'] / cpu_sum:.3f} | "
                  f"{k['summary']['train_seconds'] / train_sum:.3f} | | | | | |", "",
                  "Per single run (wall s): " + ", ".join(f"{fold} {r['wall']:.1f}" for fold, r in zip(FOLDS, singles))
                  + ". The RMSE columns are for information: a fold model trains on the same ratings as the "
                  "matching single run, read from u.data rather than uN.base (so in another row order), hence "
                  "close but not identical figures.", ""]


def describe_blender(summary: dict) -> str:
    """The blender fitted on all OOF rows (the one that combines the test outputs), from its summary.json:
    weights by member, or the level-2 model with its coefficients and intercept."""
    names = dict(zip(summary.get("members", []), MODELS))  # run id -> model name, in --runs order
    weights = summary.get("weights")
    if isinstance(weights, dict):
        return "weights " + ", ".join(f"{names.get(run, run)} {w:.3f}" for run, w in weights.items())
    coefficients = summary.get("coefficients")
    if isinstance(coefficients, list):
        text = f"{summary.get('level2', 'level 2')}: " + ", ".join(
            f"{name} {float(np.ravel(c)[0]):.3f}" for name, c in zip(MODELS, coefficients))
        intercept = summary.get("intercept")
        if intercept is not None:
            text += f", intercept {float(np.ravel(intercept)[0]):.3f}"
        return text
    return "see its summary.json"


def rossmann(cli: Cli, source: Path, epochs: int | None, lines: list[str], default_epochs: int) -> None:
    folder = data_folder(source)
    args = ["train", "rossmann", "--data-dir", str(folder), "--folds", "3"]
    if epochs is not None:
        args += ["--epochs", str(epochs)]
    try:
        result = cli("rossmann", *args)
    finally:
        if folder != source.resolve():
            shutil.rmtree(folder, ignore_errors=True)  # symlinks only
    s = result["summary"]
    plan = [line.strip() for line in result["output"].splitlines()
            if line.startswith("time:") or re.match(r"fold \d+/\d+: ", line)]
    lines += ["## Rossmann, the 100-store history: expanding time folds", "",
              "`harness train rossmann --data-dir ROSSMANN --folds 3"
              + (f" --epochs {epochs}`" if epochs is not None else "`")
              + " (the 100-store `train_subset_100stores.csv.gz` linked as `train.csv.gz` in a scratch folder, "
              "nothing copied; no `googletrend.csv`, so no trend columns). Scheme from "
              "`competitions/rossmann.toml`'s `[validation]`: `time` on `Date`, 48-day validation windows, gap 0, "
              "each fold training on every earlier day; the last fold's window is the config's usual 48-day "
              "holdout. Zero-sales rows are in no fold.", ""]
    if epochs is not None and epochs != default_epochs:
        lines += [f"**Run with `--epochs {epochs}`, fewer than the config's {default_epochs}, to fit the time "
                  "budget: these figures are not comparable with the default config's.**", ""]
    else:
        lines += [f"The config's defaults throughout ({default_epochs} epochs).", ""]
    lines += ["The fold plan as the command printed it:", "", "```", *plan, "```", "",
              "| OOF rows | CV RMSPE (all OOF rows) | " + " | ".join(f"fold {i}" for i in range(len(s["fold_scores"])))
              + " | per fold mean ± sd | command wall (s) |",
              "|---|---|" + "---|" * len(s["fold_scores"]) + "---|---|",
              f"| {oof_rows(result['dir']):,} | {s['cv_score']:.4f} | "
              + " | ".join(f"{f:.4f}" for f in s["fold_scores"])
              + f" | {s['fold_mean']:.4f} ± {s['fold_sd']:.4f} | {result['wall']:.0f} |", "",
              f"Fold {len(s['fold_scores']) - 1} validates on the same 48 days as `bench/results/rossmann_quality.md`'s "
              "reported window (the default network there over seeds 0..2; the config's seed here is 42), trained "
              "on the same earlier days.", ""]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--movielens-dir", type=Path, default=Path("../shared/data/movielens/ml-100k"))
    ap.add_argument("--rossmann-dir", type=Path, default=Path("../shared/data/rossmann"))
    ap.add_argument("--rossmann-epochs", type=int, default=None,
                    help="fewer epochs than the config's for Rossmann (the section then says so)")
    ap.add_argument("--parts", default="movielens,overhead,rossmann", help="comma-separated parts to run")
    ap.add_argument("--threads", type=int, default=1, help="OMP/MKL threads of each harness process "
                                                           "(1: least noise on a shared machine; 0: torch's default)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--quick", action="store_true", help="1 MovieLens epoch: a check of the script, not a result")
    ap.add_argument("--keep", action="store_true", help="keep the scratch workspace")
    ap.add_argument("--out", type=Path, default=RESULTS / "kfold.md")
    args = ap.parse_args()
    parts = set(args.parts.split(","))

    started = time.perf_counter()
    workspace = Path(tempfile.mkdtemp(prefix="kfold-bench-ws-"))
    log = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    cli = Cli(workspace, args.threads or None, args.device, log)
    lines = ["## K-fold training and honest OOF blends (through the CLI)", "",
             f"Command: `{command_line()}`", "", *environment(), ""]
    lines += [f"Every figure is read from the `summary.json` of a `harness` command run as a subprocess (scratch "
              f"workspace, `--device {args.device}`, "
              + (f"`OMP_NUM_THREADS={args.threads}`" if args.threads else "torch's default threads") + ").", "",
              "How the settings were chosen: MovieLens `dot` runs the config's defaults (`competitions/movielens.toml`: "
              "l2 0.12, lr 0.005, 20 epochs) and `nn`, `svdpp` and `autorec` the settings `bench/movielens_quality.py` "
              "chose for each (shown in the table); all were chosen on a random 10% of u1.base (numpy seed 0), so nothing of u1.test "
              "took part. Those 8,000 validation ratings do lie in u2..u5.test, so folds 1..4 are not entirely "
              "untouched by that choice; the u1 column is the clean one. Rossmann runs its config's defaults "
              "(set in earlier sessions, partly by looking at a window that overlaps its last fold, see "
              "`bench/results/rossmann_quality.md`). Nothing in this script is chosen on the folds it reports; the "
              "blends' weights and level-2 models are fitted inside the folds by `harness blend`.", ""]
    try:
        if "movielens" in parts:
            movielens(cli, args.movielens_dir.resolve(), lines, "overhead" in parts, args.quick)
        if "rossmann" in parts:
            default_epochs = read_rossmann_epochs()
            rossmann(cli, args.rossmann_dir, args.rossmann_epochs, lines, default_epochs)
    finally:
        if not args.keep:
            shutil.rmtree(workspace, ignore_errors=True)
        else:
            log(f"scratch workspace kept: {workspace}")
    lines += [f"Whole script: {time.perf_counter() - started:.0f} s wall."]
    log(lines[-1])
    section = "\n".join(lines)
    print(section)
    write_section(args.out, "bench/kfold_quality.py", section)
    print(f"\nwritten to {args.out}")


def read_rossmann_epochs() -> int:
    import tomllib

    return int(tomllib.loads((ROOT / "competitions" / "rossmann.toml").read_text())["train"]["epochs"])


if __name__ == "__main__":
    main()
