"""Finding Kaggle credentials (without ever printing them) and scrubbing them from any text we show.

The official client looks, in this order, for an access token (``KAGGLE_API_TOKEN``, a value or a file;
``~/.kaggle/access_token``), a legacy API key (``KAGGLE_USERNAME`` + ``KAGGLE_KEY``, or ``kaggle.json``)
and OAuth credentials from ``kaggle auth login``. We check the same places first, so that a missing or
broken set-up gives one actionable line instead of the client's help text and ``exit(1)``.
"""
from __future__ import annotations

import base64
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

import click

from harness.errors import HarnessError

TOKEN_PAGE = "https://www.kaggle.com/settings/api"


@dataclass
class Credentials:
    source: str  # where they came from, safe to print: "KAGGLE_USERNAME/KAGGLE_KEY", a file path...
    username: str | None = None
    secrets: list[str] = field(default_factory=list, repr=False)  # values that must never be shown

    def __repr__(self):  # never show the secrets, even in a debugger or a traceback
        return f"Credentials(source={self.source!r}, username={self.username!r})"

    def redact(self, text: str) -> str:
        """``text`` with every secret (and its basic-auth encoding) replaced by ***."""
        text = str(text)
        for secret in self._all_forms():
            text = text.replace(secret, "***")
        return text

    def _all_forms(self) -> list[str]:
        forms = [s for s in self.secrets if s]
        if self.username:
            for s in self.secrets:
                if s:
                    forms.append(base64.b64encode(f"{self.username}:{s}".encode()).decode())
        return sorted(set(forms), key=len, reverse=True)


def config_dir() -> Path:
    """The kaggle client's config folder: $KAGGLE_CONFIG_DIR, else ~/.kaggle, else the XDG folder."""
    if os.environ.get("KAGGLE_CONFIG_DIR"):
        return Path(os.environ["KAGGLE_CONFIG_DIR"])
    home = Path(os.path.expanduser("~")) / ".kaggle"
    if home.exists():
        return home
    xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(xdg) / "kaggle"


def setup_help() -> str:
    """How to set up credentials, with kaggle.json where the client will look for it."""
    return (f"create an API token at {TOKEN_PAGE} (\"Create New Token\") and save the downloaded kaggle.json "
            f"as {config_dir() / 'kaggle.json'} (chmod 600), or set KAGGLE_USERNAME and KAGGLE_KEY, or set "
            "KAGGLE_API_TOKEN to a token (or a token file)")


def _text_of(path: Path, named: str, remedy: str) -> str:
    """A credentials file's text; a folder, or a file that is not text, is one error naming it."""
    if path.is_dir():
        raise HarnessError(f"{named} is a directory, not a file; {remedy}")
    try:
        return path.read_text()
    except UnicodeDecodeError:
        raise HarnessError(f"{named} is not a text file; {remedy}") from None
    except OSError as exc:
        raise HarnessError(f"cannot read {named}: {exc.strerror or exc}; {remedy}") from None


def _read_token(value: str) -> str:
    """KAGGLE_API_TOKEN's token: the value itself, or the text of the file it names."""
    path = Path(value)
    try:
        exists = path.exists()
    except OSError:  # a token too long to be a path
        exists = False
    if not exists:
        return value.strip()
    return _text_of(path, f"KAGGLE_API_TOKEN={path}",
                    "set KAGGLE_API_TOKEN to a token, or to the path of a file holding one").strip()


def find_credentials() -> Credentials:
    """The credentials the kaggle client will use, checked; HarnessError saying how to set them up."""
    token = os.environ.get("KAGGLE_API_TOKEN")
    if token:
        value = _read_token(token)
        if not value:
            raise HarnessError(f"KAGGLE_API_TOKEN points to an empty token file; {setup_help()}")
        return Credentials("KAGGLE_API_TOKEN", secrets=[value, token])
    token_file = Path(os.path.expanduser("~/.kaggle/access_token"))
    if token_file.exists():
        saved = _text_of(token_file, str(token_file), f"remove it, or save a token from {TOKEN_PAGE} in it").strip()
        if saved:
            return Credentials(str(token_file), secrets=[saved])

    user, key = os.environ.get("KAGGLE_USERNAME"), os.environ.get("KAGGLE_KEY")
    if user and key:
        return Credentials("KAGGLE_USERNAME/KAGGLE_KEY", user, [key])
    if bool(user) != bool(key):
        have, missing = ("KAGGLE_USERNAME", "KAGGLE_KEY") if user else ("KAGGLE_KEY", "KAGGLE_USERNAME")
        raise HarnessError(f"{have} is set but {missing} is not; set both (from kaggle.json), or unset {have} "
                           f"to use {config_dir() / 'kaggle.json'}")

    path = config_dir() / "kaggle.json"
    if path.exists():
        text = _text_of(path, str(path), f"remove it and save the kaggle.json from {TOKEN_PAGE} (\"Create New "
                                         "Token\") there")
        try:
            data = json.loads(text)
            user, key = data["username"], data["key"]
        except (ValueError, KeyError, TypeError):
            raise HarnessError(f"{path} is not a kaggle.json with \"username\" and \"key\"; download a new one from "
                               f"{TOKEN_PAGE} (\"Create New Token\")") from None
        if os.name == "posix" and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            click.echo(f"warning: {path} is readable by other users; run `chmod 600 {path}`", err=True)
        return Credentials(str(path), str(user), [str(key)])

    oauth = Path(os.path.expanduser("~/.kaggle/credentials.json"))
    if oauth.exists():
        try:
            data = json.loads(_text_of(oauth, str(oauth), "remove it and sign in again with `kaggle auth login`"))
        except ValueError:
            data = {}
        data = data if isinstance(data, dict) else {}
        secrets = [str(v) for k, v in data.items() if "token" in k.lower() and isinstance(v, str)]
        return Credentials(str(oauth), data.get("username"), secrets)

    raise HarnessError(f"no Kaggle credentials found (looked at KAGGLE_API_TOKEN, KAGGLE_USERNAME/KAGGLE_KEY and "
                       f"{path}); {setup_help()}")
