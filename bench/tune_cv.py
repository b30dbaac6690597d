"""Tuning under CV: the honest CV of a blend of a study's top trials against the best single trial's CV, same study.

Every figure comes from `harness` commands run as subprocesses in a scratch workspace (the real CLI);
the script reads the study with Optuna and the runs' ``summary.json`` files.

1. A config copied from ``competitions/movielens.toml`` with ``[validation] folds = 5`` and ``scheme =
   "predefined"`` (GroupLens' u1.test .. u5.test as folds 0..4; they partition the 100,000 ratings), so each
   trial is a K-fold run whose value is its CV RMSE on all 100,000 out-of-fold rows. ``--epochs`` below the
   config's 20 is written into the copy and the section says so.
2. ``harness tune movielens --config CFG --data-dir ML100K --trials N --seed S``: the config's ``[search]``
   (n_factors, l2, lr), TPE sampler, median pruner (under folds: a trial whose running fold mean is worse
   than the median of earlier trials' at the same fold stops there).
3. From the study (``optuna.load_study`` on WS/tune/optuna.db, study "movielens"): the best trial's CV, and
   the top K complete trials' runs (trial user attribute ``run``); then ``harness blend movielens --runs
   ... --method mean|weights|stack``, each reporting its nested (honest) CV beside the in-sample one.
4. For reference, the config's default settings as one plain ``harness train --folds 5`` run on the same
   folds (not a trial; its settings were chosen elsewhere, on a random 10% of u1.base).

What the comparison means is stated in the section: the best trial's CV is the minimum over the study of
scores measured on the very folds that rank the trials, so it is optimistic by construction; the blend's
weights / level-2 model are fitted inside the folds (nested), but its members are also the top K by CV on
these folds, so it shares the selection bias of choosing trials, not that of fitting the blender.

    .venv/bin/python bench/tune_cv.py --data-dir ../shared/data/movielens/ml-100k --trials 8 --threads 1

Writes its section of bench/results/tune_cv.md (``--out`` for another file) with the command, date,
machine and code it ran on.
"""
from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_report import RESULTS, ROOT, command_line, environment, write_section  # noqa: E402
from bench.kfold_quality import Cli, harness_exe, mean_sd  # noqa: E402

CONFIG = ROOT / "competitions" / "movielens.toml"
FOLDS = 5


def make_config(path: Path, epochs: int | None) -> dict:
    """The built-in config with five predefined folds (and fewer epochs if asked), written to ``path``."""
    from harness.config.loading import dump_config

    config = tomllib.loads(CONFIG.read_text())
    config["validation"] = {**config.get("validation", {}), "scheme": "predefined", "folds": FOLDS}
    if epochs is not None:
        config["train"]["epochs"] = epochs
    path.write_text("# bench/tune_cv.py: competitions/movielens.toml with [validation] folds = 5, "
                    "scheme = predefined\n" + dump_config(config))
    return config


def run_tune(workspace: Path, argv_tail: list[str], env: dict, log) -> tuple[float, float, str]:
    argv = [harness_exe(), "--workspace", str(workspace), *argv_tail]
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    shown = " ".join(["harness", *argv[1:]]).replace(str(workspace), "WS")
    log(f"$ {shown}\n  exit {proc.returncode}, {wall:.1f} s wall, {cpu:.1f} s CPU")
    if proc.returncode != 0:
        raise RuntimeError(f"{shown} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return wall, cpu, proc.stdout + proc.stderr


def fold_cells(scores) -> str:
    return " | ".join(f"{s:.4f}" for s in scores)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=Path("../shared/data/movielens/ml-100k"))
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0, help="the sampler's seed (the training seed is the config's)")
    ap.add_argument("--top-k", type=int, default=5, help="blend the K best complete trials (at most)")
    ap.add_argument("--methods", default="mean,weights,stack")
    ap.add_argument("--epochs", type=int, default=None, help="fewer epochs than the config's (the section says so)")
    ap.add_argument("--no-default", action="store_true", help="skip the reference run of the default settings")
    ap.add_argument("--threads", type=int, default=1, help="OMP/MKL threads of each harness process")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--keep", action="store_true", help="keep the scratch workspace")
    ap.add_argument("--out", type=Path, default=RESULTS / "tune_cv.md")
    args = ap.parse_args()
    methods = [m for m in args.methods.split(",") if m]

    import optuna

    default_epochs = int(tomllib.loads(CONFIG.read_text())["train"]["epochs"])
    started = time.perf_counter()
    scratch = Path(tempfile.mkdtemp(prefix="tune-cv-bench-"))
    workspace = scratch / "ws"
    cfg = scratch / "movielens-5fold.toml"
    log = lambda text: print(text, file=sys.stderr, flush=True)  # noqa: E731
    cli = Cli(workspace, args.threads or None, args.device, log)
    data_dir = args.data_dir.resolve()

    lines = ["## Tuning under CV: the blend's honest CV against the best single trial's CV (same study)", "",
             f"Command: `{command_line()}`", "", *environment({"optuna": optuna.__version__}), ""]
    try:
        config = make_config(cfg, args.epochs)
        space = ", ".join(f"`{k}` {v['low']}..{v['high']}{' (log)' if v.get('log') else ''}"
                          for k, v in config["search"].items())
        tune_args = ["tune", "movielens", "--config", str(cfg), "--data-dir", str(data_dir),
                     "--trials", str(args.trials), "--seed", str(args.seed), "--device", args.device]
        tune_wall, tune_cpu, tune_output = run_tune(workspace, tune_args, cli.env, log)

        storage = f"sqlite:///{workspace / 'tune' / 'optuna.db'}"
        study = optuna.load_study(study_name="movielens", storage=storage)
        trials = sorted(study.trials, key=lambda t: t.number)
        complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
        pruned = [t for t in trials if t.state == optuna.trial.TrialState.PRUNED]
        failed = [t for t in trials if t.state not in (optuna.trial.TrialState.COMPLETE,
                                                       optuna.trial.TrialState.PRUNED)]
        ranked = sorted(complete, key=lambda t: t.value)
        best = study.best_trial
        top = ranked[:args.top_k]
        if len(top) < 2:
            raise RuntimeError(f"only {len(top)} complete trial(s); nothing to blend")
        runs_dir = workspace / "runs" / "movielens"
        import json

        def run_summary(run_id):
            return json.loads((runs_dir / run_id / "summary.json").read_text())

        best_summary = run_summary(best.user_attrs["run"])
        ids = ",".join(t.user_attrs["run"] for t in top)
        blends = {m: cli("movielens", "blend", "movielens", "--runs", ids, "--method", m, device=False)
                  for m in methods}
        default = None
        if not args.no_default:
            extra = [] if args.epochs is None else ["--set", f"train.epochs={args.epochs}"]
            default = cli("movielens", "train", "movielens", "--data-dir", str(data_dir), "--folds", str(FOLDS),
                          "--set", "validation.scheme=predefined", *extra)
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            log(f"scratch kept: {scratch}")

    # ------------------------------------------------------------------ the section
    lines += [f"Every figure is read from the study (`optuna.load_study` on `WS/tune/optuna.db`, study `movielens`) "
              f"or from the `summary.json` of a `harness` command run as a subprocess (scratch workspace, "
              f"`--device {args.device}`, "
              + (f"`OMP_NUM_THREADS={args.threads}`" if args.threads else "torch's default threads") + ").", "",
              f"Config: `competitions/movielens.toml` copied with `[validation] folds = {FOLDS}`, `scheme = "
              f"\"predefined\"` (u1.test .. u5.test as folds 0..4, which partition the 100,000 ratings; every trial "
              f"trains five fold models, each on the matching uN.base, and is scored on all 100,000 out-of-fold "
              f"rows)" + (f", `train.epochs = {args.epochs}`." if args.epochs is not None else
                          f"; everything else as in the config ({default_epochs} epochs)."), ""]
    if args.epochs is not None and args.epochs != default_epochs:
        lines += [f"**Run with {args.epochs} epoch(s), not the config's {default_epochs}, to fit the time budget: "
                  "these figures are not comparable with the default config's.**", ""]
    lines += [f"Study: `harness tune movielens --config CFG --data-dir ml-100k --trials {args.trials} --seed {args.seed} "
              f"--device {args.device}` ({tune_wall:.0f} s wall, {tune_cpu:.0f} s CPU): search space {space}; TPE "
              f"sampler (Optuna's TPE samples its first 10 trials at random, so a study of {args.trials} trials is a "
              f"random search), median pruner over folds (once 5 trials have completed, a trial whose running mean "
              f"after a fold is worse than the earlier trials' median at that fold stops there).", "",
              f"Trials: {len(trials)} in the study, {len(complete)} complete, {len(pruned)} pruned"
              + (f", {len(failed)} failed or other" if failed else "") + ".", "",
              "| trial | state | n_factors | l2 | lr | folds run | CV RMSE (complete: all 100,000 OOF rows) "
              "| running mean at its last fold | in the blend |", "|---|---|---|---|---|---|---|---|---|"]
    top_numbers = {t.number for t in top}
    for t in trials:
        steps = sorted(t.intermediate_values)
        last = t.intermediate_values[steps[-1]] if steps else None
        p = t.params
        lines.append(f"| {t.number}{' (best)' if t.number == best.number else ''} | {t.state.name.lower()} | "
                     f"{p.get('model.n_factors', '')} | {p.get('model.l2', float('nan')):.4f} | "
                     f"{p.get('train.lr', float('nan')):.5f} | {steps[-1] if steps else 0} | "
                     f"{'' if t.value is None else f'{t.value:.4f}'} | {'' if last is None else f'{last:.4f}'} | "
                     f"{'yes' if t.number in top_numbers else ''} |")
    lines += ["", f"The blends: `harness blend movielens --runs R1,...,R{len(top)} --method M` over the runs of the "
              f"{len(top)} best complete trials ({', '.join(str(t.number) for t in top)}, ranked by their CV on "
              "these folds). Nested CV (honest about the blender): each fold's rows are predicted by a blender "
              "fitted on the other four folds' OOF rows only. In-sample (optimistic): the blender fitted and scored "
              "on all 100,000 OOF rows (for `mean` nothing is fitted, so the two agree).", "",
              "| | what the figure is | CV RMSE | u1 | u2 | u3 | u4 | u5 | per fold mean ± sd | in-sample RMSE "
              "(optimistic) | weights / level 2 |", "|---|---|---|---|---|---|---|---|---|---|---|",
              f"| best single trial ({best.number}) | its own CV; the minimum over {len(complete)} complete trials, "
              f"chosen on these folds | {best.value:.4f} | {fold_cells(best_summary['fold_scores'])} | "
              f"{mean_sd(best_summary['fold_scores'])} | | |"]
    names = {t.user_attrs["run"]: f"t{t.number}" for t in top}
    for method, result in blends.items():
        s = result["summary"]
        lines.append(f"| blend `{method}` of the top {len(top)} | nested CV | {s['cv_score']:.4f} | "
                     f"{fold_cells(s['fold_scores'])} | {mean_sd(s['fold_scores'])} | {s['in_sample_score']:.4f} | "
                     f"{describe(s, names)} |")
    if default is not None:
        s = default["summary"]
        lines.append(f"| default settings (reference, not a trial) | its CV; settings chosen on a random 10% of "
                     f"u1.base | {s['cv_score']:.4f} | {fold_cells(s['fold_scores'])} | "
                     f"{s['fold_mean']:.4f} ± {s['fold_sd']:.4f} | | |")
    lines.append("")
    blend_walls = ", ".join(f"{m} {r['wall']:.1f} s" for m, r in blends.items())
    lines += [f"Command wall times: the study {tune_wall:.0f} s ({tune_wall / max(len(trials), 1):.0f} s a trial on "
              f"average, pruned ones included); blends {blend_walls}"
              + (f"; the default run {default['wall']:.0f} s." if default is not None else "."), ""]

    lines += ["What the comparison means:", "",
              f"- The best trial's CV ({best.value:.4f}) is itself chosen on these folds: it is the smallest of "
              f"{len(complete)} CV scores measured on the same 100,000 OOF rows that rank the trials, so part of its "
              "lead is luck of those rows (the winner's curse). It is optimistic by construction"
              + (", and the study's sampler also steered the later trials by these scores." if len(trials) > 10 else
                 f" (here the sampler drew all {len(trials)} trials at random, so only the pick of the best, not "
                 "the search, used these scores)."),
              "- A blend's nested CV is honest about the blender only: weights and the level-2 model never saw the "
              "labels of the fold they predict. Its members, though, are the top trials by CV on the same folds, so "
              "it inherits the same selection as the best trial (choosing which trials), not an extra one from the "
              "fit. Both figures thus share the bias of trial selection; the blend's adds none of its own, while "
              "its in-sample figure would.",
              "- So the difference blend − best trial is a like-for-like measure of what blending adds over picking "
              "the single best trial on the same rows (the selection bias is roughly common to both, and if anything "
              "larger for the single best, the minimum of single scores, than for an average of several trials). Neither figure "
              "is an unbiased estimate of the error on new ratings: that needs ratings outside the study (the five "
              "test files hold all 100,000, so here: nested tuning, the whole study rerun inside each outer fold, or "
              "ratings held out from every fold before tuning).",
              "- The default's settings were chosen on a random 10% of u1.base (bench/movielens_quality.py), "
              "ratings that lie in u2..u5.test; they were not chosen by this study, so its row is a reference "
              "free of this study's selection (not of that earlier one).", ""]
    diffs = [f"`{m}` {r['summary']['cv_score'] - best.value:+.4f}" for m, r in blends.items()]
    lines += ["Blend nested CV − best trial's CV: " + ", ".join(diffs) + "."
              + (f" Best trial's CV − default's CV: {best.value - default['summary']['cv_score']:+.4f}."
                 if default is not None else ""), ""]
    lines += [f"Whole script: {time.perf_counter() - started:.0f} s wall."]
    log(lines[-1])
    section = "\n".join(lines)
    print(section)
    write_section(args.out, "bench/tune_cv.py", section)
    print(f"\nwritten to {args.out}")


def describe(summary: dict, names: dict) -> str:
    weights = summary.get("weights")
    if isinstance(weights, dict):
        return ", ".join(f"{names.get(run, run)} {w:.3f}" for run, w in weights.items())
    coefficients = summary.get("coefficients")
    if isinstance(coefficients, list):
        import numpy as np

        text = f"{summary.get('level2', 'level 2')}: " + ", ".join(
            f"{name} {float(np.ravel(c)[0]):.3f}" for name, c in zip([names.get(r, r) for r in summary.get("members", [])], coefficients))
        intercept = summary.get("intercept")
        if intercept is not None:
            text += f", intercept {float(np.ravel(intercept)[0]):.3f}"
        return text
    return "equal" if summary.get("method") == "mean" else ""


if __name__ == "__main__":
    main()
