"""The submit decision: is the new entry worth one of the day's submissions?

It is when its CV score beats the best CV score among the competition's earlier submissions by more than
the CV's own noise, the standard deviation of its fold scores (a smaller gain could be the luck of the
folds), and Kaggle's daily limit leaves a submission. Otherwise the decision says which rule stopped it.
Earlier submissions are those the leaderboard holds as accepted (scored, pending, or scored locally)
whose runs were scored by the same metric.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

ACCEPTED = ("scored", "pending", "local")


@dataclass(frozen=True)
class Earlier:
    """The best earlier submission by CV score."""

    run: str
    cv: float
    count: int  # earlier submissions compared


@dataclass(frozen=True)
class Decision:
    submit: bool
    reason: str


def best_earlier(submissions: list[dict], runs: list[dict], metric: str, direction: str,
                 exclude: str | None = None) -> Earlier | None:
    """The best CV among earlier accepted submissions (leaderboard rows), scored by ``metric``."""
    scores = {r["run_id"]: r.get("validation_score") for r in runs if r.get("metric") == metric}
    found = [(scores[s["run_id"]], s["run_id"]) for s in submissions
             if s.get("status") in ACCEPTED and s["run_id"] != exclude and scores.get(s["run_id"]) is not None]
    if not found:
        return None
    pick = min if direction == "minimize" else max
    cv, run = pick(found, key=lambda item: item[0])
    return Earlier(run, float(cv), len(found))


def decide(cv: float | None, sd: float | None, direction: str, earlier: Earlier | None,
           left_today: int | None) -> Decision:
    """Submit or not, and why. ``left_today``: Kaggle's count of submissions allowed now (None: unknown, or
    no daily limit, as for a competition scored locally)."""
    if cv is None or not math.isfinite(cv):
        return Decision(False, "the entry has no finite CV score")
    noise = sd if sd is not None and math.isfinite(sd) else 0.0
    if earlier is None:
        why = "no earlier submission to beat"
    else:
        gain = (earlier.cv - cv) if direction == "minimize" else (cv - earlier.cv)
        than = f"the best earlier submission's {earlier.cv:.5f} (run {earlier.run}, best of {earlier.count})"
        if gain <= 0:
            return Decision(False, f"CV {cv:.5f} is not better than {than}")
        if gain <= noise:
            return Decision(False, f"CV {cv:.5f} beats {than} by {gain:.5f}, within the noise "
                                   f"(fold sd {noise:.5f})")
        why = f"CV {cv:.5f} beats {than} by {gain:.5f}, more than the fold sd {noise:.5f}"
    if left_today is not None and left_today <= 0:
        return Decision(False, f"{why}, but Kaggle's daily submission limit is reached (none left today; it resets "
                               "at midnight UTC)")
    if left_today is not None:
        why += f"; {left_today} submission(s) left today"
    return Decision(True, why)
