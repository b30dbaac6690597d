"""The report of an automated entry: ``report.md`` and four PNGs in the session folder.

    models.png    every baseline and trial's CV score with its fold sd as an error bar, per model kind
    ensemble.png  the ensemble's members: their CV scores and weights
    history.png   CV and public score of the competition's submissions over time
    steps.png     the time each step took

Nothing secret reaches it: the storage URL is shown without its password, and the whole text passes
through the Kaggle credentials' redaction (when credentials are set up) before it is written.
"""
from __future__ import annotations

import math
from pathlib import Path

from harness.auto import plan
from harness.errors import HarnessError
from harness.workspace import write_text


def fmt(value, digits: int = 5) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) and math.isfinite(value) else "-"


def redact(text: str) -> str:
    """``text`` without the Kaggle credentials (their values and basic-auth form), when any are set up."""
    from harness.kaggle.credentials import find_credentials

    try:
        credentials = find_credentials()
    except HarnessError:
        return text
    return credentials.redact(text)


def model_rows(data: dict) -> list[dict]:
    """Baselines, then this session's trials: kind, source, run, state, CV, sd, seconds."""
    rows = []
    for label, b in data.get("baselines", {}).items():
        source = "baseline" + (f" (from session {b['reused']})" if b.get("reused") else "")
        rows.append({"kind": label, "source": source, "run": b.get("run"), "state": b.get("status"),
                     "cv": b.get("cv"), "sd": b.get("sd"), "seconds": b.get("seconds"), "error": b.get("error")})
    for label, kind in data.get("tuning", {}).get("kinds", {}).items():
        for t in kind["trials"]:
            rows.append({"kind": label, "source": f"trial {t['number']}", "run": t.get("run"), "state": t["state"],
                         "cv": t.get("value"), "sd": t.get("sd"), "seconds": t.get("seconds"), "error": t.get("error")})
    for w in data.get("tuning", {}).get("wasted", []):
        rows.append({"kind": w["kind"], "source": f"trial {w['number']}", "run": None, "state": "killed (wasted)",
                     "cv": None, "sd": None, "seconds": None, "error": None})
    return rows


# ---------------------------------------------------------------------- plots
def plot_models(rows: list[dict], entry: dict, metric: str, path: Path) -> None:
    from harness.train.plots import plt, save_figure

    fig, ax = plt.subplots(figsize=(max(6, 0.35 * len(rows) + 3), 4))
    kinds = list(dict.fromkeys(r["kind"] for r in rows))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, kind in enumerate(kinds):
        mine = [(x, r) for x, r in enumerate(rows) if r["kind"] == kind and r["cv"] is not None]
        if mine:
            ax.errorbar([x for x, _ in mine], [r["cv"] for _, r in mine],
                        yerr=[r["sd"] if r["sd"] is not None else 0.0 for _, r in mine], fmt="o", capsize=3,
                        color=colours[i % len(colours)], label=kind)
    if entry.get("cv") is not None:
        label = "ensemble" if entry.get("kind") == "ensemble" else "entry"
        ax.axhline(entry["cv"], color="tab:red", ls="--", lw=1, label=f"{label}: {entry['cv']:.4f}")
    ax.set_xticks(range(len(rows)), [f"{r['kind']} {r['source'].split(' (')[0]}" for r in rows], rotation=45,
                  ha="right", fontsize=7)
    ax.set(ylabel=f"CV {metric} (± fold sd)", title="CV score per model (pruned, failed or killed: no point)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize=8)
    save_figure(fig, path)


def plot_ensemble(entry: dict, metric: str, path: Path) -> None:
    from harness.train.plots import plt, save_figure

    members = entry.get("members", [])
    weights = entry.get("weights") or {}
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 0.4 * len(members) + 2), sharey=True)
    ys = list(range(len(members)))
    left.errorbar([m["cv"] for m in members], ys, xerr=[m.get("sd") or 0.0 for m in members], fmt="o", capsize=3,
                  color="tab:blue")
    left.set_yticks(ys, [f"{m['kind']} {m['source']}" for m in members], fontsize=8)
    left.invert_yaxis()
    left.set(xlabel=f"CV {metric} (± fold sd)", title="members")
    if entry.get("cv") is not None:
        left.axvline(entry["cv"], color="tab:red", ls="--", lw=1, label=f"ensemble {entry['cv']:.4f}")
        left.legend(fontsize=8, loc="best")
    right.barh(ys, [float(weights.get(m["run"], 0.0)) for m in members], color="tab:green", alpha=0.7)
    method = entry.get("method") or "single run"
    right.set(xlabel="weight", title=f"{method}: weights" if weights else f"{method}: a level-2 model, no weights")
    save_figure(fig, path)


def plot_history(history: list[dict], metric: str, path: Path) -> None:
    from harness.train.plots import plt, save_figure

    fig, ax = plt.subplots(figsize=(8, 4))
    xs = list(range(1, len(history) + 1))
    if history:
        ax.plot(xs, [h["cv"] if h["cv"] is not None else math.nan for h in history], "o-", label="CV")
        ax.plot(xs, [h["public"] if h["public"] is not None else math.nan for h in history], "s-", label="public")
        ax.set_xticks(xs, [h["submitted"][5:16] for h in history], rotation=30, fontsize=7, ha="right")
        ax.legend(loc="best", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no submissions yet", ha="center", va="center", transform=ax.transAxes)
    ax.set(xlabel="submission (time)", ylabel=metric, title="CV and public score of each submission")
    save_figure(fig, path)


def plot_steps(steps: dict, path: Path) -> None:
    from harness.train.plots import plt, save_figure

    names = [s for s in plan.STEPS if s in steps]
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.barh(range(len(names)), [steps[s].get("seconds", 0.0) for s in names], color="tab:purple", alpha=0.7)
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set(xlabel="seconds (wall time, over all resumes)", title="time per step")
    save_figure(fig, path)


# ---------------------------------------------------------------------- markdown
def table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return lines


def write_report(session, history: list[dict], storage: str | None = None) -> Path:
    """Write ``report.md`` and its PNGs into the session folder; the report's path."""
    from harness.tune.study import default_storage, shown_url

    data = session.data
    folder = session.folder
    metric, direction = data.get("metric", "score"), data.get("direction", "minimize")
    entry = data.get("ensemble", {})
    rows = model_rows(data)
    steps = data.get("steps", {})
    plot_models(rows, entry, metric, folder / "models.png")
    if entry.get("members"):
        plot_ensemble(entry, metric, folder / "ensemble.png")
    plot_history(history, metric, folder / "history.png")
    plot_steps(steps, folder / "steps.png")

    options = data.get("options", {})
    shown = {k: v for k, v in options.items() if v not in (None, False, [])}
    shown["storage"] = shown_url(storage) if storage else default_storage(session.folder.parents[2]) + " (default)"
    if "budget" in shown:
        shown["budget"] = plan.format_seconds(shown["budget"])
    for flag in ("dry_run", "download"):
        if shown.pop(flag, False):
            shown[flag.replace("_", " ")] = "(yes)"
    slug = data.get("kaggle_slug")
    decision = data.get("decision", {})
    submission = data.get("submission", {})
    processes = f" over {data['resumed'] + 1} processes (resumed after a stop)" if data.get("resumed") else ""
    lines = [
        f"# harness auto: {data['competition']}, session {data['session']}",
        "",
        f"- Competition: {data['competition']} ({f'Kaggle {slug}' if slug else 'scored locally against its held-out answers'}); "
        f"metric {metric} ({direction}d); {data.get('folds_described', '-')}",
        f"- Data: {data.get('data_dir', '-')} ({data.get('rows', '-')} training rows, fingerprint "
        f"{data.get('fingerprint', '-')})",
        "- Options: " + ", ".join(f"{k} {v}" if v != "(yes)" else k for k, v in shown.items()),
        f"- Started {data.get('started')}; {plan.format_seconds(data.get('spent', 0))} of wall time spent{processes}; "
        f"trials wasted by kills: {len(data.get('tuning', {}).get('wasted', []))}",
        "",
        "## Result",
        "",
    ]
    if entry:
        best = entry.get("best_member", {})
        if entry.get("kind") == "ensemble":
            lines.append(f"- Entry: the {entry['method']} ensemble of {len(entry['members'])} runs, run {entry['run']}: "
                         f"CV {metric} **{fmt(entry['cv'])}** ± {fmt(entry.get('sd'))} (nested: each fold predicted by a "
                         f"blender fitted on the other folds only; in-sample, optimistic: {fmt(entry.get('in_sample'))})")
        else:
            lines.append(f"- Entry: run {entry['run']} alone: CV {metric} **{fmt(entry['cv'])}** ± {fmt(entry.get('sd'))}")
        if best:
            lines.append(f"- Best member: {best['kind']} {best['source']} (run {best['run']}): CV {fmt(best['cv'])} ± "
                         f"{fmt(best.get('sd'))} (chosen as the best of the runs on these folds: optimistic)")
    if decision:
        lines.append(f"- Decision: {'submit' if decision['submit'] else 'do not submit'}: {decision['reason']}"
                     + (f" ({decision['limit_note']})" if decision.get("limit_note") else ""))
    if submission:
        lines.append(f"- Submission: {submission.get('note', '-')}")
        if submission.get("message"):
            lines.append(f"- Message: `{submission['message']}`")
    lines += ["", "## Models tried", "", "![CV per model](models.png)", ""]
    lines += table(["kind", "model", "run", "state", f"CV {metric}", "fold sd", "seconds"],
                   [[r["kind"], r["source"], r["run"] or "-", r["state"] + (f": {r['error']}" if r.get("error") else ""),
                     fmt(r["cv"]), fmt(r["sd"]), fmt(r["seconds"], 1)] for r in rows])
    if entry.get("members"):
        weights = entry.get("weights") or {}
        lines += ["", "## Ensemble", "", "![members and weights](ensemble.png)", ""]
        lines += table(["member", "kind", "run", f"CV {metric}", "fold sd", "weight"],
                       [[m["source"], m["kind"], m["run"], fmt(m["cv"]), fmt(m.get("sd")),
                         fmt(weights.get(m["run"]), 4) if weights else "(level-2 model)"] for m in entry["members"]])
    lines += ["", "## CV and public score over time", "", "![CV and public score](history.png)", ""]
    if history:
        lines += table(["submitted", "run", f"CV {metric}", "public", "status"],
                       [[h["submitted"], h["run"], fmt(h["cv"]), fmt(h["public"]), h["status"]] for h in history])
    else:
        lines.append(f"No submissions of {data['competition']} yet.")
    lines += ["", "## Time per step", "", "![time per step](steps.png)", ""]
    lines += table(["step", "seconds", "note"],
                   [[s, fmt(steps[s].get("seconds"), 1), steps[s].get("note") or steps[s].get("status", "")]
                    for s in plan.STEPS if s in steps])
    lines.append("")
    lines.append("(The report step's own time is counted after this report is written.)")
    path = folder / "report.md"
    write_text(path, redact("\n".join(lines) + "\n"))
    return path
