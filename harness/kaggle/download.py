"""`harness data NAME --download`: the competition's files from Kaggle, unzipped, checked and fingerprinted.

The download goes to a temporary folder beside the destination and is renamed into place only once the
competition's own ``check_raw`` accepts it. A marker file records the slug and the data fingerprint;
with it present a second run downloads nothing.
"""
from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path

import click

from harness.errors import HarnessError
from harness.fingerprint import data_files, data_fingerprint, workspace_cache
from harness.workspace import atomic_dir, write_json

MARKER = ".harness-download.json"


def extract_archives(folder: Path, max_depth: int = 3) -> int:
    """Unzip every .zip under ``folder`` in place (Kaggle zips the bundle, and often files inside it)."""
    count = 0
    for _ in range(max_depth):
        archives = sorted(Path(folder).rglob("*.zip"))
        if not archives:
            break
        for archive in archives:
            try:
                with zipfile.ZipFile(archive) as z:
                    z.extractall(archive.parent)  # extractall drops '..' and absolute prefixes
            except zipfile.BadZipFile:
                raise HarnessError(f"{archive.name} from Kaggle is not a valid zip file; rerun the download "
                                   "with --force") from None
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
