"""A thin wrapper around the official kaggle client: lazy import, retries and clear errors.

Every call goes through ``KaggleClient.call``, which
- retries 429 (rate limited) and 5xx answers with exponential backoff, honouring Retry-After;
- turns the failures Kaggle users hit into one HarnessError line that says what to do: 401 (bad or
  revoked credentials), 403 (competition rules not accepted: the rules page to visit), 404, the daily
  submission limit, and an unreachable network;
- scrubs the credentials from every message, so they are never printed.

The client honours ``KAGGLE_API_ENVIRONMENT=LOCALHOST`` (the tests' fake server); we never pass it
``--verbose``, which would print the request headers and with them the credentials.
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import time
from typing import Callable


from harness.errors import HarnessError
from harness.kaggle.credentials import Credentials, config_dir, find_credentials, setup_help
from harness.progress import echo, stderr_is_terminal

# How Kaggle words a refused submission when the team has used up its daily allowance.
DAILY_LIMIT = re.compile(r"daily|per day|allowance|submission limit|max(imum)? (number of )?submissions", re.I)
MAX_DELAY = 300.0  # the longest Retry-After we honour, in seconds
UPLOAD_FAILED = "Could not submit to competition"  # KaggleApi.COMPETITION_SUBMIT_UPLOAD_FAILED_MESSAGE


def rules_url(slug: str) -> str:
    return f"https://www.kaggle.com/competitions/{slug}/rules"


class DailyLimitError(HarnessError):
    """Kaggle refused a submission because the team's daily allowance is used up."""


def daily_limit_error(slug: str, detail: str) -> DailyLimitError:
    return DailyLimitError(f"Kaggle's daily submission limit for {slug} is reached ({detail.strip()}); nothing was "
                           "scored; the allowance resets at midnight UTC, submit again then")


def _import_kaggle_api():
    """The KaggleApi class. Importing kaggle authenticates at import time and prints a help text when no
    credentials are set; we have checked them already, so that noise is swallowed."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        from kaggle.api.kaggle_api_extended import KaggleApi
    return KaggleApi


def _endpoint() -> str:
    try:
        from kagglesdk.kaggle_env import get_endpoint, get_env

        return get_endpoint(get_env())
    except Exception:  # an unknown KAGGLE_API_ENVIRONMENT; the call itself will say so
        return "Kaggle"


def _retry_after(response) -> float | None:
    value = response.headers.get("Retry-After") if response is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


class KaggleClient:
    """The official client with the harness's retries, error messages and credential hygiene."""

    def __init__(self, credentials: Credentials | None = None, retries: int = 5, backoff: float = 2.0,
                 sleep: Callable[[float], None] = time.sleep):
        self.credentials = credentials or find_credentials()
        self.retries, self.backoff, self.sleep = retries, backoff, sleep
        self._api = None

    # ------------------------------------------------------------------ the client
    @property
    def api(self):
        if self._api is None:
            api = _import_kaggle_api()()
            # Per-instance settings: the class reads its environment once, at import time.
            folder = config_dir()
            api.config_dir, api.config = str(folder), str(folder / "kaggle.json")
            api.args = ["--local"] if os.environ.get("KAGGLE_API_ENVIRONMENT") == "LOCALHOST" else []
            with contextlib.redirect_stdout(io.StringIO()):
                try:
                    self.call("signing in", api.authenticate)
                except SystemExit:
                    raise HarnessError(f"Kaggle did not accept the credentials from {self.credentials.source} "
                                       f"(expired or revoked?); {setup_help()}") from None
            self._api = api
        return self._api

    def call(self, what: str, fn, *args, slug: str | None = None, **kwargs):
        """``fn(*args, **kwargs)`` with retries on 429/5xx; failures become one clear HarnessError."""
        import requests

        for attempt in range(1, self.retries + 1):
            try:
                return fn(*args, **kwargs)
            except requests.HTTPError as exc:
                status = exc.response.status_code if exc.response is not None else None
                if status is not None and (status == 429 or status >= 500) and attempt < self.retries:
                    delay = _retry_after(exc.response)
                    delay = self.backoff * 2 ** (attempt - 1) if delay is None else min(delay, MAX_DELAY)
                    reason = "rate limited" if status == 429 else "server error"
                    echo(f"Kaggle answered {status} ({reason}) to {what}; retrying in {delay:.1f} s "
                         f"(attempt {attempt} of {self.retries})", err=True)
                    self.sleep(delay)
                    continue
                raise self.error(exc, status, what, slug) from None
            except (requests.ConnectionError, requests.Timeout) as exc:
                reason = self.credentials.redact(str(exc).split(":")[-1].strip(" )'\"") or type(exc).__name__)
                raise HarnessError(f"cannot reach Kaggle at {_endpoint()} for {what} (network unreachable: {reason}); "
                                   "check the internet connection or proxy settings, then rerun") from None
            except (HarnessError, SystemExit, KeyboardInterrupt):
                raise
            except Exception as exc:  # the client's own ValueErrors and RuntimeErrors
                raise HarnessError(f"{what} failed in the kaggle client: "
                                   f"{self.credentials.redact(str(exc)).splitlines()[0] if str(exc) else type(exc).__name__}") from None
        raise AssertionError("unreachable")

    def error(self, exc, status: int | None, what: str, slug: str | None) -> HarnessError:
        message = self.credentials.redact(str(exc)).strip().splitlines()[0] if str(exc).strip() else ""
        who = f"the account in {self.credentials.source}"
        if status == 401:
            return HarnessError(f"Kaggle rejected the credentials from {self.credentials.source} (401 Unauthorized) "
                                f"during {what}; they may be mistyped, old or revoked: {setup_help()}")
        if status == 403 and slug:
            return HarnessError(f"Kaggle refused {what} (403 Forbidden: {message}); accept the rules of {slug} at "
                                f"{rules_url(slug)} signed in as {who}, then rerun")
        if status == 403:
            return HarnessError(f"Kaggle refused {what} (403 Forbidden: {message}) for {who}")
        if status == 404 and slug:
            return HarnessError(f"Kaggle has no competition {slug!r} (404 during {what}); check the plugin's kaggle_slug "
                                f"against https://www.kaggle.com/competitions/{slug}")
        if status == 429:
            return HarnessError(f"Kaggle kept rate-limiting {what} (429) after {self.retries} attempts; "
                                "wait a few minutes and rerun")
        if slug and DAILY_LIMIT.search(message):
            return daily_limit_error(slug, message)
        if status is not None and status >= 500:
            return HarnessError(f"Kaggle failed with {status} during {what} after {self.retries} attempts ({message}); "
                                "this is on Kaggle's side, try again later")
        return HarnessError(f"Kaggle answered {status} to {what}: {message}")

    # ------------------------------------------------------------------ operations
    def download_competition(self, slug: str, folder) -> None:
        """Download the competition's files (one zip) into ``folder``, with the client's progress bar on a
        terminal (piped to a log it would fill the log with \\r frames)."""
        api = self.api
        self.call(f"downloading {slug}", api.competition_download_files, slug, path=str(folder), force=True,
                  quiet=not stderr_is_terminal(), slug=slug)

    def submissions_left_today(self, slug: str) -> int | None:
        """How many submissions Kaggle allows now, or None when it cannot tell (no team yet, old server)."""
        try:
            limits = self.call(f"checking submission limits of {slug}", self.api.competition_get_submission_limits,
                               slug, slug=slug)
        except HarnessError:
            return None
        if limits is None or (limits.num_today == 0 and limits.num_total == 0):
            return None  # all zero: not on a team yet, so nothing is used up
        return limits.num_allowed_now

    def submit(self, path, message: str, slug: str) -> int:
        """Upload a submission file; its Kaggle ref. Failures reported as a message become HarnessErrors."""
        api = self.api
        with contextlib.redirect_stdout(io.StringIO()) as out:  # the upload prints raw exceptions
            response = self.call(f"submitting to {slug}", api.competition_submit, str(path), message, slug,
                                 quiet=True, slug=slug)
        answer = self.credentials.redact((getattr(response, "message", "") or "").strip())
        ref = getattr(response, "ref", 0) or 0
        if answer == UPLOAD_FAILED:  # the client's way of saying the PUT of the file failed
            printed = out.getvalue().strip()
            detail = f" ({self.credentials.redact(printed.splitlines()[-1])})" if printed else ""
            raise HarnessError(f"uploading {path} to Kaggle failed{detail}; nothing was submitted to {slug}; "
                               "rerun `harness submit` to try again")
        if not ref and DAILY_LIMIT.search(answer):
            raise daily_limit_error(slug, answer)
        if not ref:
            raise HarnessError(f"Kaggle did not accept the submission to {slug}: "
                               f"{answer or 'its answer holds no submission reference'}")
        return int(ref)

    def submissions(self, slug: str) -> list:
        return self.call(f"listing submissions of {slug}", self.api.competition_submissions, slug, slug=slug) or []

    def leaderboard(self, slug: str, n: int = 20) -> list:
        with contextlib.redirect_stdout(io.StringIO()):  # it prints the next page's token
            return self.call(f"reading the leaderboard of {slug}", self.api.competition_leaderboard_view, slug,
                             page_size=n, slug=slug) or []
