"""The plan of an automated entry: its steps, its budget, and which model kind gets the next trial.

Cheap to import (no numpy, torch or Optuna): the CLI checks ``--budget`` with it before anything heavy loads.

The budget is wall time (``--budget 2h``), a number of tuning trials (``--trials N``) or both, whichever
ends first. It counts from the session's start, across kills and resumes (the state file keeps the time
spent). Baselines always finish; tuning starts a trial only when the trial is expected to end before the
budget does (its kind's median trial time so far, else its baseline's time), leaving ``reserve`` seconds
for the ensemble and the report; a trial still running when only the reserve is left is stopped
(harness.auto.session.alarm).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from harness.errors import HarnessError

STEPS = ("check", "baselines", "tune", "ensemble", "decide", "submit", "report")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
EXPLORE = 2  # tuning trials every kind gets before the budget follows improvement
WINDOW = 3  # the last results whose improvement decides where the next trial goes


def parse_budget(text: str) -> float:
    """Seconds in ``90``, ``90s``, ``20m``, ``2h``, ``1h30m`` or ``1.5h``."""
    clean = str(text).strip().lower().replace(" ", "")
    if re.fullmatch(r"\d+(\.\d+)?", clean):
        seconds = float(clean)
    else:
        parts = re.findall(r"(\d+(?:\.\d+)?)([smhd])", clean)
        if not parts or "".join(n + u for n, u in parts) != clean:
            raise HarnessError(f"--budget {text!r}: give a wall time such as 90s, 20m, 2h or 1h30m")
        seconds = sum(float(n) * UNITS[u] for n, u in parts)
    if not seconds > 0:
        raise HarnessError(f"--budget {text!r}: give a wall time above 0, such as 20m")
    return seconds


def check_limits(budget: float | None, trials: int | None) -> None:
    """At least one of --budget and --trials, each sensible (checked before anything heavy is imported)."""
    if budget is None and trials is None:
        raise HarnessError("say how long to work: --budget 2h (wall time) and/or --trials N (tuning trials)")
    if trials is not None and trials < 0:
        raise HarnessError(f"--trials {trials}: give 0 (baselines and ensemble only) or more tuning trials")


def format_seconds(seconds: float) -> str:
    """``3h05m``, ``12m30s``, ``45s``."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def reserve(budget: float | None) -> float:
    """Seconds kept back from tuning for the ensemble and the report."""
    return 0.0 if budget is None else min(120.0, max(5.0, 0.02 * budget))


@dataclass
class Limits:
    """What this session may spend: ``budget`` seconds of wall time and/or ``trials`` tuning trials."""

    budget: float | None = None
    trials: int | None = None

    def seconds_left(self, spent: float) -> float | None:
        return None if self.budget is None else self.budget - spent

    def trials_left(self, done: int) -> int | None:
        return None if self.trials is None else self.trials - done

    def describe_left(self, spent: float, done: int) -> str:
        """``budget left 12m30s``, ``trials left 3 of 5``, or both."""
        parts = []
        if self.budget is not None:
            parts.append(f"budget left {format_seconds(max(0.0, self.budget - spent))} of "
                         f"{format_seconds(self.budget)}")
        if self.trials is not None:
            parts.append(f"trials left {max(0, self.trials - done)} of {self.trials}")
        return ", ".join(parts)

    def stop_reason(self, spent: float, done: int, next_seconds: float) -> str | None:
        """Why no further trial may start (None: one may)."""
        if self.trials is not None and done >= self.trials:
            return f"the {self.trials} trial(s) of --trials are done"
        if self.budget is not None:
            left = self.budget - spent - reserve(self.budget)
            if left <= 0:
                return "the budget is spent"
            if next_seconds > left:
                return (f"the next trial would take about {format_seconds(next_seconds)}, more than the "
                        f"{format_seconds(left)} left for tuning")
        return None


def better(a: float, b: float, direction: str) -> bool:
    return a < b if direction == "minimize" else a > b


def best_of(values, direction: str) -> float | None:
    found = [v for v in values if v is not None]
    if not found:
        return None
    return min(found) if direction == "minimize" else max(found)


def rank_kinds(history: dict[str, list[tuple[float | None, float]]], direction: str) -> list[str]:
    """The model kinds in the order they should get the next trial (the first whose trial fits the budget
    gets it).

    ``history``: kind -> its results in order, baseline first: (CV score, or None for a pruned or failed
    trial; seconds it took). Kinds with fewer than ``EXPLORE`` tuning trials come first (fewest first, then
    the better score). Then the kinds that improved over their last ``WINDOW`` results, fastest per second
    spent on them first, since that is where more time is likely to pay; then the rest, best score first
    (the leader's gains matter most to the ensemble).
    """
    if not history:
        raise HarnessError("no model kind to tune")
    kinds = list(history)
    sign = 1.0 if direction == "minimize" else -1.0
    best = {k: best_of([v for v, _ in history[k]], direction) for k in kinds}

    def score_key(kind):  # better scores first; a kind without one last
        return (best[kind] is None, sign * best[kind] if best[kind] is not None else 0.0, kinds.index(kind))

    exploring = sorted((k for k in kinds if len(history[k]) - 1 < EXPLORE),
                       key=lambda k: (len(history[k]), *score_key(k)))
    rates = {}
    for kind in kinds:
        if kind in exploring:
            continue
        results = history[kind]
        cut = max(1, len(results) - WINDOW)  # the baseline always counts as "before"
        before = best_of([v for v, _ in results[:cut]], direction)
        seconds = sum(s for _, s in results[cut:]) or 1.0
        if before is not None and best[kind] is not None and sign * (before - best[kind]) > 0:
            rates[kind] = sign * (before - best[kind]) / seconds
    improving = sorted(rates, key=lambda k: (-rates[k], kinds.index(k)))
    rest = sorted((k for k in kinds if k not in exploring and k not in rates), key=score_key)
    return exploring + improving + rest


def next_kind(history: dict[str, list[tuple[float | None, float]]], direction: str) -> str:
    """The kind first in line for the next trial (see ``rank_kinds``)."""
    return rank_kinds(history, direction)[0]
