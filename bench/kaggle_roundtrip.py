"""Kaggle round trip on the real Rossmann files: the real kaggle client against the tests' fake Kaggle API.

No network: the fake server (tests/fake_kaggle_server.py) runs on 127.0.0.1 and serves a zip of the real
Kaggle files from --data-dir. Measured, in wall-clock seconds:
  - `harness data rossmann --download`: download, unzip, the plugin's check_raw, data fingerprint;
  - the same command again (nothing downloaded);
  - `harness submit rossmann --dry-run` of a full-size submission (every row of the real sample submission);
  - `harness submit rossmann`: validation, upload, poll, record (the uploaded bytes are compared);
  - the leaderboard's cost per training run (record_run: cached fingerprint + SQLite write);
  - a data fingerprint of --fingerprint-dir without the workspace cache (its first-run cost).

    python bench/kaggle_roundtrip.py --data-dir /work/shared/data/rossmann --fingerprint-dir /work/shared/data/imdb
"""
from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def kaggle_zip(data_dir: Path) -> tuple[bytes, str]:
    """What Kaggle serves for rossmann-store-sales: train.csv, test.csv, store.csv, sample_submission.csv."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name in ("store.csv", "test.csv", "sample_submission.csv"):
            z.write(data_dir / name, name)
        if (data_dir / "train.csv").exists():
            z.write(data_dir / "train.csv", "train.csv")
            note = "train.csv"
        else:  # the shared copy holds 100 stores' full history
            z.writestr("train.csv", gzip.decompress((data_dir / "train_subset_100stores.csv.gz").read_bytes()))
            note = "train.csv = train_subset_100stores.csv.gz"
    return buf.getvalue(), note


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True, type=Path, help="The Rossmann Kaggle files.")
    parser.add_argument("--fingerprint-dir", type=Path, help="A (read-only) folder to fingerprint uncached.")
    args = parser.parse_args()
    if not (args.data_dir / "sample_submission.csv").exists():
        sys.exit(f"{args.data_dir} has no sample_submission.csv")

    tmp = Path(tempfile.mkdtemp(prefix="kaggle-bench-"))
    (tmp / "home").mkdir()
    (tmp / "config").mkdir()
    os.environ.update(HOME=str(tmp / "home"), KAGGLE_CONFIG_DIR=str(tmp / "config"), KAGGLE_API_ENVIRONMENT="LOCALHOST")
    for var in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN"):
        os.environ.pop(var, None)
    sys.path.insert(0, str(ROOT / "tests"))
    from fake_kaggle_server import FakeKaggle
    from kagglesdk.kaggle_env import KaggleEnv, _env_to_endpoint

    import pandas as pd
    from click.testing import CliRunner

    from harness.cli import cli
    from harness.runs.leaderboard import record_run
    from harness.host.plugins import get_competition
    from harness.runs.folder import Run
    from harness.workspace import write_csv

    fake = FakeKaggle().start()
    archive, note = kaggle_zip(args.data_dir)
    fake.add_competition("rossmann-store-sales", archive)
    fake.polls_until_scored = 0
    _env_to_endpoint[KaggleEnv.LOCAL] = fake.url
    (tmp / "config" / "kaggle.json").write_text(json.dumps({"username": fake.username, "key": fake.key}))
    (tmp / "config" / "kaggle.json").chmod(0o600)
    ws = tmp / "ws"
    runner = CliRunner()

    def harness(*argv):
        result = runner.invoke(cli, ["--workspace", str(ws), *argv], catch_exceptions=False)
        if result.exit_code != 0:
            sys.exit(f"harness {' '.join(argv)} failed:\n{result.output}")
        return result.output

    rows = []
    seconds, _ = timed(lambda: harness("data", "rossmann", "--download"))
    rows.append((f"data --download ({len(archive) / 1e6:.1f} MB zip; {note})", seconds))
    seconds, out = timed(lambda: harness("data", "rossmann", "--download"))
    assert "already downloaded" in out and fake.called("DownloadDataFiles") == 1
    rows.append(("data --download again (no download)", seconds))

    comp = get_competition("rossmann")
    run = Run.create(ws, "rossmann")
    run.save_config(comp.default_config())
    run.save_summary({"primary_metric": "exp_rmspe", "primary_score": 0.12, "direction": "minimize"})
    sample = pd.read_csv(ws / "data" / "rossmann" / "sample_submission.csv")
    write_csv(run.path("submission.csv"), sample.assign(Sales=5000.0))
    seconds, _ = timed(lambda: harness("submit", "rossmann", "--run", run.id, "--dry-run"))
    rows.append((f"submit --dry-run ({len(sample)} rows)", seconds))
    assert fake.uploads == []
    seconds, out = timed(lambda: harness("submit", "rossmann", "--run", run.id, "--wait", "60"))
    assert fake.uploads == [run.path("submission.csv").read_bytes()], "the uploaded bytes differ from the file"
    assert "public score 0.12345" in out
    rows.append(("submit (validate, upload, poll, record)", seconds))

    data = ws / "data" / "rossmann"
    record_run(ws, run, data)  # warm: the fingerprint is cached by now
    costs = []
    for _ in range(20):
        costs.append(timed(lambda: record_run(ws, run, data))[0])
    rows.append(("record_run per training run (median of 20)", statistics.median(costs)))

    if args.fingerprint_dir:
        from harness.data.fingerprint import data_files, data_fingerprint

        size = sum(p.stat().st_size for p in data_files(args.fingerprint_dir))
        seconds, _ = timed(lambda: data_fingerprint(args.fingerprint_dir))
        rows.append((f"data_fingerprint uncached, {args.fingerprint_dir} ({size / 1e6:.1f} MB)", seconds))
        assert not list(Path(args.fingerprint_dir).glob(".harness*")), "wrote into the data folder"
    fake.stop()

    print("| step | seconds |\n|---|---|")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.3f} |")


if __name__ == "__main__":
    main()
