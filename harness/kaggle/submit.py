"""`harness submit NAME --run RUN`: validate a run's submission, upload it, wait for the score, record it.

The order is what keeps an invalid file off Kaggle: the file is checked by the competition
(``check_submission`` on its loaded data) and against the sample submission (columns, id set,
duplicates, NaN/inf, range, probabilities) before any network call. Competitions without a Kaggle
counterpart (``kaggle_slug = None``) are scored here against their held-out answers file instead;
that file is checked on its own first, so its faults (a short solution.csv, text ratings) name it
and not the submission.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

import click
import numpy as np
import pandas as pd

from harness.data.files import read_table
from harness.errors import HarnessError
from harness.runs.leaderboard import Leaderboard, now
from harness.progress import progress_bar
from harness.runs.folder import Run
from harness.scoring.submission import check_answers, validate_submission
from harness.workspace import data_dir_for

@dataclass
class SubmitResult:
    run_id: str
    path: Path
    status: str  # dry-run, local, scored, pending
    public_score: float | None = None
    private_score: float | None = None
    kaggle_ref: int | None = None


def find_sample(data_dir: Path, config: dict | None = None) -> Path | None:
    """The sample submission: the one the config declares (data.sample_submission), else the file named like
    one, whatever the competition calls it (harness.scoring.sample.find_sample)."""
    from harness.scoring import sample

    declared = ((config or {}).get("data") or {}).get("sample_submission") or ""
    if declared and (Path(data_dir) / declared).is_file():
        return Path(data_dir) / declared
    return sample.find_sample(data_dir)


def solution_path(competition, data_dir: Path) -> Path:
    return Path(data_dir) / competition.solution_file


def submission_file(competition, run: Run, data_dir: Path) -> Path:
    """The run's submission.csv; a trained run without one predicts the test set first."""
    path = run.path("submission.csv")
    if path.exists():
        return path
    if run.path("model.pt").exists():
        from harness.runs import runner

        click.echo(f"run {run.id} has no submission.csv; predicting the test set with its model")
        return runner.predict(competition, run, data_dir)
    raise HarnessError(f"{path} is missing and the run has no model to predict with; "
                       f"train with `harness train {competition.name}` or blend runs into one")


def _run_config(competition, run: Run) -> dict:
    return run.config() if run.path("config.toml").exists() else competition.default_config()


def known_test_ids(raw, id_column: str) -> list | None:
    """The test set's ids where the loaded data shows them (a ``test`` table holding ``id_column``)."""
    test = raw.get("test") if isinstance(raw, dict) else getattr(raw, "test", None)
    if isinstance(test, pd.DataFrame) and id_column in test.columns:
        return test[id_column].tolist()
    return None


def read_answers(competition, raw, path: Path, columns: list) -> pd.DataFrame:
    """A locally scored competition's held-out answers, checked on their own so that their faults
    (missing, extra or repeated ids, text ratings) name this file and not the submission.

    ``columns``: those of a submission that passed the competition's ``check_submission``, so they
    are the competition's format and the answers must have them too.
    """
    answers = read_table(path)
    hint = f"restore it, or `harness data {competition.name} --sample --force` writes generated data with one"
    check_answers(answers, str(path), columns=columns, test_ids=known_test_ids(raw, str(answers.columns[0])),
                  hint=hint)
    return answers


def about_file(message: str, competition, path: Path) -> str:
    """A ``check_submission`` message, naming ``path``. The check was handed a table, not a file, so it may
    call it "submission: ..." or "NAME submission: ..."; the path takes that label's place rather than
    standing before it ("submission.csv: submission: ...")."""
    for label in ("submission: ", f"{competition.name} submission: "):
        if message.startswith(label):
            return f"{path}: {message.removeprefix(label)}"
    return f"{path}: {message}"


def validate(competition, run: Run, data_dir: Path, path: Path) -> tuple[pd.DataFrame, dict, pd.DataFrame | None]:
    """Every check we can make before uploading; HarnessError naming the file and the fault.

    Returns the submission, the run's config and, for a competition scored locally, its checked answers.
    """
    config = _run_config(competition, run)
    submission = read_table(path)
    raw = competition.load(data_dir, config)
    try:
        competition.check_submission(submission, raw)
    except HarnessError as exc:
        raise HarnessError(about_file(str(exc), competition, path)) from None
    answers = None
    solution = solution_path(competition, data_dir)
    if competition.kaggle_slug is None and solution.exists():
        answers = read_answers(competition, raw, solution, list(submission.columns))
    sample_path = find_sample(data_dir, config)
    if sample_path is not None:
        sample, reference = read_table(sample_path), "the sample submission"
    elif answers is not None:
        sample, reference = answers, solution.name  # same columns and ids as a sample would have
    else:
        click.echo(f"warning: no sample submission in {data_dir}; only {competition.name}'s own checks ran", err=True)
        return submission, config, answers
    # A sample of text labels (class names) holds no numbers to check: the competition's own check did.
    numeric = all(pd.api.types.is_numeric_dtype(sample[c]) for c in sample.columns[1:])
    validate_submission(submission, sample, id_column=str(sample.columns[0]), value_range=competition.submission_range,
                        probabilities=competition.submission_probabilities, name=str(path), reference=reference,
                        numeric=numeric)
    return submission, config, answers


def score_locally(competition, config: dict, submission: pd.DataFrame, answers: pd.DataFrame) -> float:
    """The competition's primary metric of ``submission`` against the checked held-out answers, aligned by id."""
    scorer = getattr(competition, "score_submission", None)
    if scorer is not None:
        return float(scorer(submission, answers))
    id_column = str(answers.columns[0])
    values = [c for c in answers.columns if c != id_column]
    merged = answers.merge(submission, on=id_column, suffixes=("_true", "_pred"))
    targets = merged[[f"{c}_true" for c in values]].to_numpy(dtype=np.float64)
    preds = merged[[f"{c}_pred" for c in values]].to_numpy(dtype=np.float64)
    if len(values) == 1:  # one prediction column: plain vectors, as the metrics expect
        targets, preds = targets[:, 0], preds[:, 0]
    return float(competition.metrics(config)[0](preds, targets))


def _score(value) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def wait_for_score(client, slug: str, ref: int, wait: float, poll: float = 5.0, sleep=time.sleep):
    """Poll the submission list until ``ref`` is scored; (status, public, private, error)."""
    from kagglesdk.competitions.types.submission_status import SubmissionStatus

    from harness.kaggle.client import DAILY_LIMIT, daily_limit_error

    start = time.monotonic()
    with progress_bar(total=round(wait), desc="scoring", unit="s", bar_format="{desc}: {n}/{total} s") as bar:
        while True:
            mine = [s for s in client.submissions(slug) if s is not None and int(s.ref or 0) == ref]
            if mine and mine[0].status == SubmissionStatus.COMPLETE:
                return "scored", _score(mine[0].public_score), _score(mine[0].private_score), None
            if mine and mine[0].status == SubmissionStatus.ERROR:
                error = (mine[0].error_description or "").strip() or "no error message given"
                if DAILY_LIMIT.search(error):
                    raise daily_limit_error(slug, error)
                return "failed", None, None, error
            if time.monotonic() - start + poll > wait:
                return "pending", None, None, None
            sleep(poll)
            poll = min(poll * 1.5, 30.0)
            bar.update(min(round(time.monotonic() - start), bar.total) - bar.n)


def submit(competition, workspace: Path, run_id: str = "latest", message: str | None = None, dry_run: bool = False,
           data_dir=None, wait: float = 600.0, poll: float = 5.0, client=None) -> SubmitResult:
    from harness.data.fingerprint import data_fingerprint, workspace_cache

    run = Run.find(workspace, competition.name, run_id)
    data_dir = data_dir_for(workspace, competition, data_dir)
    path = submission_file(competition, run, data_dir)
    submission, config, answers = validate(competition, run, data_dir, path)
    click.echo(f"{path}: valid ({len(submission)} rows, columns {', '.join(map(str, submission.columns[:6]))}"
               f"{', ...' if len(submission.columns) > 6 else ''})")
    board = Leaderboard(workspace)
    board.record_run(run, data_fingerprint(data_dir, workspace_cache(workspace)))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    summary = run.summary()
    message = message or f"harness {competition.name} run {run.id} config {summary.get('config_hash', '-')}"

    if competition.kaggle_slug is None:
        solution = solution_path(competition, data_dir)
        if not solution.exists():
            raise HarnessError(f"{competition.name} has no Kaggle counterpart and {solution} (its held-out answers) "
                               f"is missing; `harness data {competition.name} --sample` writes one")
        if dry_run:
            click.echo("dry run: the file is valid; not scored")
            return SubmitResult(run.id, path, "dry-run")
        score = score_locally(competition, config, submission, answers)
        board.add_submission(competition.name, run.id, "local", message, digest, public_score=score, scored=now())
        metric = summary.get("primary_metric") or competition.metrics(config)[0].name
        click.echo(f"scored locally against {solution.name}: {metric} = {score:.5f} "
                   f"(validation {_fmt(summary.get('primary_score'))})")
        return SubmitResult(run.id, path, "local", public_score=score)

    slug = competition.kaggle_slug
    from harness.kaggle.download import download_info

    if download_info(data_dir) is None:
        click.echo(f"note: {data_dir} was not downloaded from Kaggle; if it is generated sample data (--sample), "
                   f"Kaggle will reject its ids: use `harness data {competition.name} --download`", err=True)
    if dry_run:
        click.echo(f"dry run: the file is valid; not uploaded to {slug}")
        return SubmitResult(run.id, path, "dry-run")
    from harness.kaggle.client import KaggleClient, daily_limit_error

    client = client or KaggleClient()
    if client.submissions_left_today(slug) == 0:
        raise daily_limit_error(slug, "no submissions left today")
    sub_id = board.add_submission(competition.name, run.id, "uploading", message, digest)
    try:
        ref = client.submit(path, message, slug)
        board.update_submission(sub_id, kaggle_ref=ref, status="pending")
        click.echo(f"submitted run {run.id} to {slug} (ref {ref}); waiting up to {wait:.0f} s for the public score")
        status, public, private, error = wait_for_score(client, slug, ref, wait, poll)
    except HarnessError as exc:
        board.update_submission(sub_id, status="failed", error=str(exc))
        raise
    board.update_submission(sub_id, status=status, public_score=public, private_score=private, error=error,
                            scored=now() if status == "scored" else None)
    if status == "failed":
        raise HarnessError(f"Kaggle could not score the submission of run {run.id} to {slug}: {error}")
    if status == "pending":
        click.echo(f"still scoring after {wait:.0f} s; `harness leaderboard {competition.name} --refresh` "
                   "fetches the score later")
    else:
        click.echo(f"public score {_fmt(public)} (validation {_fmt(summary.get('primary_score'))})"
                   + (f", private score {_fmt(private)}" if private is not None else ""))
    return SubmitResult(run.id, path, status, public, private, ref)


def reconcile_uploads(competition, workspace: Path, client=None, remote: list | None = None) -> int:
    """Settle the submissions left "uploading" (a kill between Kaggle's answer and the leaderboard's write):
    one Kaggle lists with the same message, not yet claimed by another row, becomes theirs (so it is never
    uploaded twice); one Kaggle never got is marked failed. Returns how many it settled."""
    board = Leaderboard(workspace)
    rows = board.submissions(competition.name)
    stuck = [s for s in rows if s["status"] == "uploading" and not s["kaggle_ref"]]
    if not stuck or competition.kaggle_slug is None:
        return 0
    if remote is None:
        from harness.kaggle.client import KaggleClient

        remote = (client or KaggleClient()).submissions(competition.kaggle_slug)
    claimed = {s["kaggle_ref"] for s in rows if s["kaggle_ref"]}
    for row in stuck:
        match = next((r for r in remote if r is not None and int(r.ref or 0) not in claimed
                      and (r.description or "") == (row["message"] or "")), None)
        if match is None:
            board.update_submission(row["id"], status="failed", error="the upload never reached Kaggle (interrupted)")
        else:
            claimed.add(int(match.ref))
            board.update_submission(row["id"], kaggle_ref=int(match.ref), status="pending")
    return len(stuck)


def refresh(competition, workspace: Path, client=None) -> int:
    """Fetch the scores of this competition's Kaggle submissions (pending ones, private scores after the end);
    an upload interrupted before its reference was written is matched to Kaggle's list first."""
    from harness.kaggle.client import KaggleClient

    board = Leaderboard(workspace)
    if competition.kaggle_slug is None:
        return 0
    if not any(s["kaggle_ref"] or s["status"] == "uploading" for s in board.submissions(competition.name)):
        return 0
    client = client or KaggleClient()
    listed = client.submissions(competition.kaggle_slug)
    reconcile_uploads(competition, workspace, remote=listed)
    ours = {s["kaggle_ref"]: s for s in board.submissions(competition.name) if s["kaggle_ref"]}
    from kagglesdk.competitions.types.submission_status import SubmissionStatus

    updated = 0
    for remote in listed:
        local = ours.get(int(remote.ref or 0)) if remote is not None else None
        if local is None:
            continue
        status = {SubmissionStatus.COMPLETE: "scored", SubmissionStatus.ERROR: "failed"}.get(remote.status, "pending")
        board.update_submission(local["id"], status=status, public_score=_score(remote.public_score),
                                private_score=_score(remote.private_score),
                                error=(remote.error_description or None) if status == "failed" else None,
                                scored=local["scored"] or (now() if status == "scored" else None))
        updated += 1
    return updated


def _fmt(value) -> str:
    return f"{value:.5f}" if isinstance(value, (int, float)) else "-"
