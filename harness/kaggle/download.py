"""`harness data NAME --download`: the competition's files from Kaggle, unzipped, checked and fingerprinted.

The download goes to a temporary folder beside the destination and is renamed into place only once the
competition's own ``check_raw`` accepts it. A marker file records the slug and the data fingerprint;
with it present a second run downloads nothing.

Unzipping is guarded against hostile archives: a member may not land outside the folder (absolute
paths are made relative, ``..`` members are skipped, each with a note), and all archives of one
download together may unpack to at most ``$HARNESS_UNZIP_LIMIT`` bytes (default 50 GiB, more than any
competition this harness runs; e.g. ``HARNESS_UNZIP_LIMIT=200G``). The limit is checked against the
sizes the zips declare before anything is written, and again on the bytes actually written, since a
member's header may lie about its size.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import time
import zipfile
from pathlib import Path, PurePosixPath

import click

from harness.errors import HarnessError
from harness.data.fingerprint import data_files, data_fingerprint, workspace_cache
from harness.progress import echo
from harness.workspace import atomic_dir, write_json

MARKER = ".harness-download.json"
UNZIP_LIMIT_ENV = "HARNESS_UNZIP_LIMIT"
DEFAULT_UNZIP_LIMIT = 50 * 2**30
CHUNK = 2**20
UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def human_size(n: int) -> str:
    for unit in ("T", "G", "M", "K"):
        if n >= UNITS[unit]:
            return f"{n / UNITS[unit]:.1f} {unit}iB"
    return f"{n} bytes"


def unzip_limit() -> int:
    """The most bytes one download may unpack to: ``$HARNESS_UNZIP_LIMIT`` (e.g. 200G, 500M, bytes)."""
    text = os.environ.get(UNZIP_LIMIT_ENV, "").strip()
    if not text:
        return DEFAULT_UNZIP_LIMIT
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)(?:i?B)?", text, re.I)
    if not match or float(match[1]) <= 0:
        raise HarnessError(f"{UNZIP_LIMIT_ENV}={text!r}: give a size above 0 in bytes or with a unit, e.g. 200G or 500M")
    return int(float(match[1]) * UNITS[match[2].upper()])


class Unpacked:
    """Bytes written so far by one download's extraction, against its limit."""

    def __init__(self, limit: int):
        self.limit, self.total = limit, 0

    def too_big(self, archive: Path, size: int, how: str) -> HarnessError:
        return HarnessError(f"{archive.name} {how} {human_size(size)}, beyond the {human_size(self.limit)} limit on "
                            f"unpacked data (a zip bomb?); if the competition really is that big, raise the limit, "
                            f"e.g. {UNZIP_LIMIT_ENV}=200G")


def member_path(name: str) -> tuple[str | None, str | None]:
    """Where a member goes, relative to the archive's folder (None: skip it), and why it moved or is skipped."""
    relative = name.replace("\\", "/").lstrip("/")
    relative = re.sub(r"^[A-Za-z]:/*", "", relative)  # a Windows drive
    parts = [p for p in PurePosixPath(relative).parts if p not in ("", ".")]
    if ".." in parts:
        return None, "its path climbs out of the folder ('..')"
    if not parts:
        return None, "it has no file name"
    absolute = name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) is not None
    return "/".join(parts), ("an absolute path, written inside the folder" if absolute else None)


def extract_zip(archive: Path, unpacked: Unpacked) -> None:
    """Unzip ``archive`` into its folder: members checked one by one, bytes counted against the limit."""
    folder = archive.parent
    try:
        with zipfile.ZipFile(archive) as z:
            plan, seen = [], set()
            for info in z.infolist():
                relative, note = member_path(info.filename)
                if relative is None:
                    echo(f"note: {archive.name}: skipped member {info.filename!r}: {note}", err=True)
                    continue
                if note:
                    echo(f"note: {archive.name}: member {info.filename!r} is {note} as {relative}", err=True)
                if info.is_dir():
                    plan.append((info, relative))
                    continue
                if relative in seen:
                    echo(f"note: {archive.name}: skipped member {info.filename!r}: a second file of that name "
                         "(the first one is kept)", err=True)
                    continue
                seen.add(relative)
                plan.append((info, relative))
            declared = sum(info.file_size for info, _ in plan if not info.is_dir())
            if unpacked.total + declared > unpacked.limit:
                raise unpacked.too_big(archive, unpacked.total + declared, "would unpack (with what came before) to")
            free = shutil.disk_usage(folder).free
            if declared > free:
                raise HarnessError(f"{archive.name} unpacks to {human_size(declared)} but only {human_size(free)} is "
                                   f"free in {folder}; free some space and download again")
            for info, relative in plan:
                target = folder / relative
                if info.is_dir():
                    if target.exists() and not target.is_dir():
                        echo(f"note: {archive.name}: skipped folder {info.filename!r}: a file of that name is there",
                             err=True)
                    else:
                        target.mkdir(parents=True, exist_ok=True)
                    continue
                in_the_way = next((p for p in target.parents if folder in p.parents and p.exists() and not p.is_dir()),
                                  None)
                if target.exists() or in_the_way is not None:
                    what = (f"{in_the_way.relative_to(folder)} is a file, not a folder" if in_the_way is not None
                            else f"a {'folder' if target.is_dir() else 'file'} of that name is already there")
                    echo(f"note: {archive.name}: skipped member {info.filename!r}: {what}", err=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    with z.open(info) as src, open(target, "wb") as dst:
                        while chunk := src.read(CHUNK):
                            unpacked.total += len(chunk)
                            if unpacked.total > unpacked.limit:
                                raise unpacked.too_big(archive, unpacked.total, f"member {info.filename!r} unpacked "
                                                       "past its declared size, to a total of")
                            dst.write(chunk)
                except BaseException:
                    target.unlink(missing_ok=True)  # no half-written member left behind
                    raise
    except zipfile.BadZipFile as exc:
        raise HarnessError(f"{archive.name} from Kaggle is not a valid zip file or is damaged ({exc}); rerun the "
                           "download with --force") from None
    except OSError as exc:  # a full disk, say
        raise HarnessError(f"cannot unzip {archive.name} into {folder}: {exc.strerror or exc}") from None


def extract_archives(folder: Path, max_depth: int = 3, limit: int | None = None) -> int:
    """Unzip every .zip under ``folder`` in place (Kaggle zips the bundle, and often files inside it).

    ``limit`` (default: ``unzip_limit()``) bounds the bytes all of them together unpack to.
    """
    unpacked = Unpacked(unzip_limit() if limit is None else limit)
    count = 0
    for _ in range(max_depth):
        archives = sorted(p for p in Path(folder).rglob("*.zip") if p.is_file())
        if not archives:
            break
        for archive in archives:
            extract_zip(archive, unpacked)
            archive.unlink()
            count += 1
    return count


def download_info(dest: Path) -> dict | None:
    try:
        return json.loads((Path(dest) / MARKER).read_text())
    except (OSError, ValueError):
        return None


def download_data(competition, dest: Path, force: bool = False, client=None) -> tuple[dict, bool]:
    """Make ``dest`` hold the competition's Kaggle files; (the recorded info, whether it downloaded)."""
    name, slug = competition.name, competition.kaggle_slug
    if not slug:
        raise HarnessError(f"{name} has no Kaggle counterpart (it is scored locally); use `harness data {name} "
                           f"--sample` or `harness data {name} --from DIR`")
    dest = Path(dest)
    info = download_info(dest)
    if dest.exists() and not force:
        if info is None or info.get("slug") != slug:
            raise HarnessError(f"{dest} holds data that was not downloaded from Kaggle; pass --force to replace it")
        competition.check_raw(dest)
        click.echo(f"{name}: already downloaded from Kaggle ({slug}, data fingerprint {info['fingerprint']}) "
                   f"in {dest}; pass --force to download again")
        return info, False

    from harness.kaggle.client import KaggleClient

    client = client or KaggleClient()
    with atomic_dir(dest) as tmp:
        click.echo(f"{name}: downloading competition {slug} from Kaggle")
        client.download_competition(slug, tmp)
        if not any(tmp.iterdir()):
            raise HarnessError(f"Kaggle sent no files for {slug}")
        extract_archives(tmp)
        try:
            competition.check_raw(tmp)
        except HarnessError as exc:
            raise HarnessError(f"the files Kaggle sent for {slug} are not what the {name} plugin expects: {exc}") from None
    # Fingerprinted in place, so the workspace's cache (dest is <workspace>/data/<name>) serves later runs.
    files = data_files(dest)
    info = {
        "source": "kaggle", "slug": slug, "fingerprint": data_fingerprint(dest, workspace_cache(dest.parent.parent)),
        "files": len(files), "bytes": sum(p.stat().st_size for p in files),
        "downloaded": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    write_json(dest / MARKER, info)  # last: without it, a later --download knows the folder is incomplete
    click.echo(f"{name}: {info['files']} files ({info['bytes'] / 1e6:.1f} MB) ready in {dest}; "
               f"data fingerprint {info['fingerprint']}")
    return info, True
