"""Kaggle download, submission and error handling: the real kaggle client against a fake Kaggle API
served on 127.0.0.1 (tests/fake_kaggle_server.py). Nothing here touches the network."""
import base64
import io
import json
import logging
import socket
import zipfile

import numpy as np
import pandas as pd
import pytest

from harness.host import plugins
from harness.host.competition import Competition
from harness.data.files import read_table
from harness.errors import HarnessError
from harness.data.fingerprint import data_fingerprint
from harness.host.hookspecs import hookimpl
from harness.runs.leaderboard import Leaderboard
from harness.runs.folder import Run
from harness.workspace import write_csv, write_json
from fake_kaggle_server import FakeKaggle

SLUG = "toy-comp"
N_TEST = 20


class ToyKaggle(Competition):
    """A competition with a Kaggle counterpart: predict a probability for every test id."""

    name = "toy-kaggle"
    kaggle_slug = SLUG
    description = "toy Kaggle competition registered by a test"
    raw_files = ("train.csv", "test.csv", "sample_submission.csv")
    submission_range = (0.0, 1.0)

    def default_config(self):
        return {"seed": 0, "train": {"epochs": 1, "lr": 0.01, "batch_size": 8}}

    def load(self, data_dir, config):
        return {"test": read_table(data_dir / "test.csv", required=("id", "x"))}

    def check_submission(self, submission, raw):
        if list(submission.columns) != ["id", "target"]:
            raise HarnessError(f"columns {list(submission.columns)} should be id,target")


class ToyPlugin:
    @hookimpl
    def register_competitions(self, register):
        register(ToyKaggle())


def competition_files() -> dict[str, bytes]:
    ids = np.arange(1, N_TEST + 1)
    return {
        "train.csv": pd.DataFrame({"id": range(50), "x": np.linspace(0, 1, 50), "target": [0, 1] * 25}).to_csv(index=False).encode(),
        "test.csv": pd.DataFrame({"id": ids, "x": np.linspace(0, 1, N_TEST)}).to_csv(index=False).encode(),
        "sample_submission.csv": pd.DataFrame({"id": ids, "target": 0.5}).to_csv(index=False).encode(),
    }


def zipped(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


def competition_zip() -> bytes:
    """As Kaggle serves some competitions: the bundle zip holds a zip of one of its files."""
    files = competition_files()
    inner = zipped({"test.csv": files.pop("test.csv")})
    return zipped({**files, "test.csv.zip": inner})


@pytest.fixture
def kaggle(tmp_path, monkeypatch, workspace):
    """The fake Kaggle server, the client pointed at it, kaggle.json credentials and the toy competition."""
    from kagglesdk.kaggle_env import KaggleEnv, _env_to_endpoint

    home, config = tmp_path / "home", tmp_path / "kaggle-config"
    home.mkdir()
    config.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(config))
    monkeypatch.setenv("KAGGLE_API_ENVIRONMENT", "LOCALHOST")
    for var in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "VERBOSE", "VERBOSE_OUTPUT"):
        monkeypatch.delenv(var, raising=False)
    fake = FakeKaggle(token="fake-access-token-5a6b7c").start()
    fake.add_competition(SLUG, competition_zip())
    monkeypatch.setitem(_env_to_endpoint, KaggleEnv.LOCAL, fake.url)
    kaggle_json = config / "kaggle.json"
    kaggle_json.write_text(json.dumps({"username": fake.username, "key": fake.key}))
    kaggle_json.chmod(0o600)
    fake.kaggle_json = kaggle_json
    plugins.register_plugin(ToyPlugin(), name="toy-kaggle", source="test")
    yield fake
    plugins.unregister_plugin("toy-kaggle")
    fake.stop()


def secrets(fake) -> list[str]:
    return [fake.key, fake.token, base64.b64encode(f"{fake.username}:{fake.key}".encode()).decode()]


def assert_no_secrets(fake, *texts):
    for text in texts:
        for secret in secrets(fake):
            assert secret not in text


def put_data(workspace):
    data = workspace / "data" / "toy-kaggle"
    data.mkdir(parents=True)
    for name, content in competition_files().items():
        (data / name).write_bytes(content)
    return data


def make_run(workspace, target=None, score=0.8, ids=None):
    """A run folder as training (or a blend) leaves it: config, summary and submission.csv."""
    ids = np.arange(1, N_TEST + 1) if ids is None else ids
    target = np.linspace(0.1, 0.9, len(ids)) if target is None else target
    run = Run.create(workspace, "toy-kaggle")
    run.save_config(ToyKaggle().default_config())
    run.save_summary({"primary_metric": "auc", "primary_score": score, "direction": "maximize",
                      "config_hash": "cafe0123", "started": "2026-01-01 00:00:00"})
    write_csv(run.path("submission.csv"), pd.DataFrame({"id": ids, "target": target}))
    return run


# ---------------------------------------------------------------------- download
def test_download_unzips_checks_fingerprints_and_does_not_download_twice(kaggle, cli_run, workspace, capfd):
    out = cli_run("data", "toy-kaggle", "--download").output
    dest = workspace / "data" / "toy-kaggle"
    assert sorted(p.name for p in dest.iterdir() if not p.name.startswith(".")) == \
        ["sample_submission.csv", "test.csv", "train.csv"]
    assert (dest / "test.csv").read_bytes() == competition_files()["test.csv"]  # the nested zip unpacked
    info = json.loads((dest / ".harness-download.json").read_text())
    assert info["slug"] == SLUG and info["fingerprint"] == data_fingerprint(dest) and info["files"] == 3
    assert info["fingerprint"] in out
    assert kaggle.called("DownloadDataFiles") == 1 and ("GET", f"/files/{SLUG}.zip") in kaggle.calls

    again = cli_run("data", "toy-kaggle", "--download").output
    assert "already downloaded" in again and info["fingerprint"] in again
    assert kaggle.called("DownloadDataFiles") == 1
    cli_run("data", "toy-kaggle", "--download", "--force")
    assert kaggle.called("DownloadDataFiles") == 2
    assert_no_secrets(kaggle, out, again, *capfd.readouterr())


def test_download_is_exclusive_with_sample_and_from(kaggle, cli_run, workspace):
    result = cli_run("data", "toy-kaggle", "--download", "--sample", expect=2)
    assert "exactly one of --from DIR, --sample or --download" in result.output
    put_data(workspace)  # files put there another way are not replaced without --force
    result = cli_run("data", "toy-kaggle", "--download", expect=2)
    assert "not downloaded from Kaggle; pass --force" in result.output
    assert kaggle.calls == []


def test_download_without_accepted_rules_names_the_rules_page(kaggle, cli_run, workspace):
    kaggle.add_competition(SLUG, competition_zip(), rules_accepted=False)
    result = cli_run("data", "toy-kaggle", "--download", expect=2)
    assert f"https://www.kaggle.com/competitions/{SLUG}/rules" in result.output and "403" in result.output
    assert "Traceback" not in result.output
    assert not (workspace / "data" / "toy-kaggle").exists()  # nothing half-written
    assert not [p for p in (workspace / "data").iterdir()]  # nor a temporary folder left behind


def test_download_of_files_the_plugin_does_not_expect_fails_cleanly(kaggle, cli_run, workspace):
    kaggle.add_competition(SLUG, zipped({"train.csv": b"id,x\n1,2\n"}))
    result = cli_run("data", "toy-kaggle", "--download", expect=2)
    assert "not what the toy-kaggle plugin expects" in result.output and "test.csv" in result.output
    assert not (workspace / "data" / "toy-kaggle").exists()


# ---------------------------------------------------------------------- credentials and errors
def test_no_credentials_says_how_to_set_them_up_and_calls_nothing(kaggle, cli_run):
    kaggle.kaggle_json.unlink()
    result = cli_run("data", "toy-kaggle", "--download", expect=2)
    for hint in ("kaggle.json", "KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "https://www.kaggle.com/settings/api"):
        assert hint in result.output
    assert kaggle.calls == []


def test_half_set_environment_credentials_are_named(kaggle, cli_run, monkeypatch):
    monkeypatch.setenv("KAGGLE_USERNAME", kaggle.username)
    result = cli_run("data", "toy-kaggle", "--download", expect=2)
    assert "KAGGLE_USERNAME is set but KAGGLE_KEY is not" in result.output


def submit_error(kaggle, cli_run, workspace) -> str:
    """`harness submit` of a ready run: exit 2, one error line, nothing sent."""
    put_data(workspace)
    run = make_run(workspace)
    result = cli_run("submit", "toy-kaggle", "--run", run.id, expect=2)
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    assert kaggle.calls == [] and kaggle.uploads == []
    return lines[0]


@pytest.mark.parametrize("token", ["folder", "binary"])
def test_a_token_variable_naming_a_folder_or_binary_file_is_named(kaggle, cli_run, workspace, monkeypatch, tmp_path,
                                                                   token):
    path = tmp_path / "token"
    path.mkdir() if token == "folder" else path.write_bytes(bytes(range(128, 256)))
    monkeypatch.setenv("KAGGLE_API_TOKEN", str(path))
    line = submit_error(kaggle, cli_run, workspace)
    said = "is a directory, not a file" if token == "folder" else "is not a text file"
    assert f"KAGGLE_API_TOKEN={path} {said}; set KAGGLE_API_TOKEN to a token" in line, line


@pytest.mark.parametrize("kaggle_json", ["folder", "binary"])
def test_a_kaggle_json_that_is_a_folder_or_binary_is_named(kaggle, cli_run, workspace, kaggle_json):
    kaggle.kaggle_json.unlink()
    if kaggle_json == "folder":
        kaggle.kaggle_json.mkdir()
    else:
        kaggle.kaggle_json.write_bytes(bytes(range(128, 256)))
    line = submit_error(kaggle, cli_run, workspace)
    assert str(kaggle.kaggle_json) in line, line
    said = "is a directory, not a file" if kaggle_json == "folder" else "is not a text file"
    assert f"{said}; remove it and save the kaggle.json from https://www.kaggle.com/settings/api" in line


def test_the_setup_advice_names_the_kaggle_json_that_was_looked_for(kaggle, cli_run, workspace, monkeypatch, tmp_path):
    monkeypatch.delenv("KAGGLE_CONFIG_DIR")  # and no ~/.kaggle: the client looks in the XDG folder
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    line = submit_error(kaggle, cli_run, workspace)
    wanted = tmp_path / "xdg" / "kaggle" / "kaggle.json"
    assert f"looked at KAGGLE_API_TOKEN, KAGGLE_USERNAME/KAGGLE_KEY and {wanted})" in line, line
    assert f"save the downloaded kaggle.json as {wanted} (chmod 600)" in line, line
    assert "~/.kaggle" not in line


def test_rejected_key_is_a_401_message_without_the_key(kaggle, cli_run, workspace, capfd, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "wr0ng-key-that-must-stay-secret"
    kaggle.kaggle_json.write_text(json.dumps({"username": kaggle.username, "key": wrong}))
    put_data(workspace)
    run = make_run(workspace)
    result = cli_run("submit", "toy-kaggle", "--run", run.id, expect=2)
    assert "401" in result.output and "rejected the credentials" in result.output
    assert str(kaggle.kaggle_json) in result.output
    texts = (result.output, caplog.text, *capfd.readouterr())
    for text in texts:
        assert wrong not in text
        assert base64.b64encode(f"{kaggle.username}:{wrong}".encode()).decode() not in text
    assert kaggle.uploads == []


def test_unreachable_network_is_one_clear_line(kaggle, cli_run, monkeypatch):
    from kagglesdk.kaggle_env import KaggleEnv, _env_to_endpoint

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setitem(_env_to_endpoint, KaggleEnv.LOCAL, f"http://127.0.0.1:{port}")
    result = cli_run("data", "toy-kaggle", "--download", expect=2)
    assert "cannot reach Kaggle" in result.output and "network unreachable" in result.output
    assert "Traceback" not in result.output


# ---------------------------------------------------------------------- submission
@pytest.mark.parametrize("credentials", ["kaggle.json", "environment", "token"])
def test_submit_uploads_waits_for_the_score_and_records_it(kaggle, cli_run, workspace, monkeypatch, capfd, caplog,
                                                         credentials):
    caplog.set_level(logging.DEBUG)
    if credentials != "kaggle.json":
        kaggle.kaggle_json.unlink()
    if credentials == "environment":
        monkeypatch.setenv("KAGGLE_USERNAME", kaggle.username)
        monkeypatch.setenv("KAGGLE_KEY", kaggle.key)
    if credentials == "token":
        monkeypatch.setenv("KAGGLE_API_TOKEN", kaggle.token)
    kaggle.polls_until_scored = 0
    data = put_data(workspace)
    run = make_run(workspace, score=0.81)
    result = cli_run("submit", "toy-kaggle", "--run", run.id, "-m", "first try")
    assert "public score 0.12345" in result.output
    assert kaggle.uploads == [run.path("submission.csv").read_bytes()]
    assert kaggle.submissions[0]["description"] == "first try"
    (sub,) = Leaderboard(workspace).submissions("toy-kaggle")
    assert (sub["run_id"], sub["status"], sub["kaggle_ref"], sub["public_score"]) == (run.id, "scored", 1001, 0.12345)
    (row,) = Leaderboard(workspace).runs("toy-kaggle")
    assert row["validation_score"] == 0.81 and row["data_fingerprint"] == data_fingerprint(data)
    assert row["config_hash"] == "cafe0123"

    board = cli_run("leaderboard", "toy-kaggle", "--kaggle", "2").output
    assert run.id in board and "0.12345" in board and "0.81000" in board and "first team" in board
    assert (workspace / "leaderboard" / "toy-kaggle.png").stat().st_size > 0
    assert_no_secrets(kaggle, result.output, board, caplog.text, *capfd.readouterr())


def test_rate_limited_calls_are_retried_then_succeed(kaggle, cli_run, workspace, capfd):
    kaggle.polls_until_scored = 0
    kaggle.fail("StartSubmissionUpload", 429, "Too many requests", times=2, headers={"Retry-After": "0"})
    put_data(workspace)
    run = make_run(workspace)
    result = cli_run("submit", "toy-kaggle", "--run", run.id)
    assert result.output.count("429 (rate limited)") == 2 and "public score 0.12345" in result.output
    assert kaggle.called("StartSubmissionUpload") == 3 and len(kaggle.uploads) == 1
    assert_no_secrets(kaggle, result.output, *capfd.readouterr())


def test_persistent_rate_limit_gives_up_with_a_message(kaggle, workspace, monkeypatch):
    from harness.kaggle.client import KaggleClient
    from harness.kaggle.submit import submit

    kaggle.fail("StartSubmissionUpload", 429, "Too many requests", times=3)
    put_data(workspace)
    run = make_run(workspace)
    delays = []
    client = KaggleClient(retries=3, backoff=0.5, sleep=delays.append)
    with pytest.raises(HarnessError, match="rate-limiting .* after 3 attempts"):
        submit(ToyKaggle(), workspace, run.id, client=client)
    assert delays == [0.5, 1.0]  # exponential backoff without a Retry-After header
    assert Leaderboard(workspace).submissions("toy-kaggle")[0]["status"] == "failed"


def test_failed_upload_is_reported_and_nothing_is_submitted(kaggle, cli_run, workspace, capfd):
    kaggle.upload_status = 400
    put_data(workspace)
    run = make_run(workspace)
    result = cli_run("submit", "toy-kaggle", "--run", run.id, expect=2)
    assert "uploading" in result.output and "failed" in result.output and "nothing was submitted" in result.output
    assert kaggle.called("CreateSubmission") == 0 and kaggle.uploads == []
    (sub,) = Leaderboard(workspace).submissions("toy-kaggle")
    assert sub["status"] == "failed" and sub["kaggle_ref"] is None
    assert_no_secrets(kaggle, result.output, *capfd.readouterr())


DAILY = "Submission not allowed: Your team has used its daily Submission allowance (5) today, please try again tomorrow UTC"


@pytest.mark.parametrize("how", ["answer message", "http error", "scoring error", "limits check"])
def test_daily_submission_limit_is_named(kaggle, cli_run, workspace, how):
    kaggle.polls_until_scored = 0
    if how == "answer message":
        kaggle.create_message = DAILY  # the client returns this as a message, not an exception
    elif how == "http error":
        kaggle.fail("CreateSubmission", 400, DAILY)
    elif how == "scoring error":
        kaggle.score_error = DAILY
    else:
        kaggle.limits = {"numToday": 5, "numTotal": 12, "numAllowedNow": 0}
    put_data(workspace)
    run = make_run(workspace)
    result = cli_run("submit", "toy-kaggle", "--run", run.id, expect=2)
    assert "daily submission limit" in result.output and "midnight UTC" in result.output
    assert "Traceback" not in result.output
    if how == "limits check":  # known before uploading: nothing sent
        assert kaggle.called("StartSubmissionUpload") == 0 and kaggle.uploads == []
    else:
        assert Leaderboard(workspace).submissions("toy-kaggle")[-1]["status"] == "failed"


@pytest.mark.parametrize("bad, expected", [
    ("nan", "NaN or infinity"),
    ("range", "must lie in [0.0, 1.0]"),
    ("duplicate", "duplicated"),
    ("missing id", "missing"),
    ("columns", "should be id,target"),
])
def test_an_invalid_file_never_reaches_the_server(kaggle, cli_run, workspace, bad, expected):
    put_data(workspace)
    target, ids = np.linspace(0.1, 0.9, N_TEST), np.arange(1, N_TEST + 1)
    if bad == "nan":
        target[3] = np.nan
    if bad == "range":
        target[0] = 1.5
    if bad == "duplicate":
        ids[1] = ids[0]
    if bad == "missing id":
        ids, target = ids[:-1], target[:-1]
    run = make_run(workspace, target=target, ids=ids)
    if bad == "columns":
        write_csv(run.path("submission.csv"), pd.DataFrame({"id": ids, "prediction": target}))
    line = error_line(cli_run("submit", "toy-kaggle", "--run", run.id, expect=2))
    # The run's own file is named ("submission.csv" alone would also match the sample_submission.csv).
    assert line.startswith(f"error: {run.path('submission.csv')}: ") and expected in line, line
    assert kaggle.calls == [] and kaggle.uploads == []
    assert Leaderboard(workspace).submissions("toy-kaggle") == []


def test_dry_run_checks_everything_but_uploads_nothing(kaggle, cli_run, workspace):
    put_data(workspace)
    run = make_run(workspace)
    result = cli_run("submit", "toy-kaggle", "--run", run.id, "--dry-run")
    assert "valid (20 rows" in result.output and "not uploaded" in result.output
    assert kaggle.calls == []


def test_pending_score_is_polled_then_refreshed_later(kaggle, workspace, cli_run):
    from harness.kaggle.client import KaggleClient
    from harness.kaggle.submit import submit

    put_data(workspace)
    run = make_run(workspace)
    kaggle.polls_until_scored = 2
    result = submit(ToyKaggle(), workspace, run.id, poll=0.01, client=KaggleClient())
    assert (result.status, result.public_score, result.kaggle_ref) == ("scored", 0.12345, 1001)
    assert kaggle.called("ListSubmissions") == 3

    kaggle.polls_until_scored = 10
    later = submit(ToyKaggle(), workspace, run.id, wait=0, client=KaggleClient())
    assert later.status == "pending" and later.public_score is None
    kaggle.polls_until_scored = 0
    kaggle.private_score = "0.13000"
    out = cli_run("leaderboard", "toy-kaggle", "--refresh").output
    assert "updated 2 submission(s)" in out
    scores = [(s["status"], s["public_score"], s["private_score"]) for s in Leaderboard(workspace).submissions("toy-kaggle")]
    assert scores == [("scored", 0.12345, 0.13), ("scored", 0.12345, 0.13)]


def test_a_run_without_submission_csv_is_named(kaggle, cli_run, workspace):
    put_data(workspace)
    run = make_run(workspace)
    run.path("submission.csv").unlink()
    result = cli_run("submit", "toy-kaggle", "--run", run.id, expect=2)
    assert "submission.csv is missing" in result.output
    assert kaggle.calls == []


# ---------------------------------------------------------------------- locally scored competitions
def test_movielens_is_scored_locally_through_the_same_command(cli_run, workspace):
    cli_run("data", "movielens", "--sample")
    data = workspace / "data" / "movielens"
    solution = pd.read_csv(data / "solution.csv")
    rng = np.random.default_rng(0)
    preds = solution["rating"].to_numpy(dtype=float) + rng.normal(0, 0.5, len(solution))
    from harness_plugins.movielens import MovieLens

    run = Run.create(workspace, "movielens")
    run.save_config(MovieLens().default_config())
    write_json(run.path("summary.json"), {"primary_metric": "rmse", "primary_score": 0.9, "direction": "minimize"})
    shuffled = pd.DataFrame({"id": solution["id"], "rating": preds}).sample(frac=1, random_state=0)
    write_csv(run.path("submission.csv"), shuffled)  # order must not matter: aligned by id

    assert "not scored" in cli_run("submit", "movielens", "--run", run.id, "--dry-run").output
    out = cli_run("submit", "movielens", "--run", run.id).output
    expected = float(np.sqrt(np.mean((preds - solution["rating"].to_numpy()) ** 2)))
    assert f"rmse = {expected:.5f}" in out
    (sub,) = Leaderboard(workspace).submissions("movielens")
    assert sub["status"] == "local" and sub["public_score"] == pytest.approx(expected)

    (data / "solution.csv").unlink()
    missing = cli_run("submit", "movielens", "--run", run.id, expect=2).output
    assert "solution.csv" in missing and "held-out answers" in missing


def test_help_works_without_credentials_and_does_not_import_kaggle(tmp_path):
    import os
    import subprocess
    import sys

    code = ("import sys; from harness.cli import cli; cli(['--help'], standalone_mode=False); "
            "sys.exit(int('kaggle' in sys.modules or 'kagglesdk' in sys.modules))")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KAGGLE_")}
    env["HOME"] = str(tmp_path)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0 and "submit" in done.stdout and "leaderboard" in done.stdout
    assert "Authentication required" not in done.stdout + done.stderr
    assert list(tmp_path.iterdir()) == []  # no ~/.kaggle or ~/.config/kaggle created


# ---------------------------------------------------------------------- zips: bombs and odd member names
def deflated(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buf.getvalue()


def test_zip_bomb_over_the_limit_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    from harness.kaggle.download import extract_archives

    bomb = deflated({"zeros.bin": bytes(50 * 2**20)})  # 50 MB of zeros in a zip of about 50 kB
    assert len(bomb) < 2**20
    (tmp_path / "bomb.zip").write_bytes(bomb)
    monkeypatch.setenv("HARNESS_UNZIP_LIMIT", "10M")
    with pytest.raises(HarnessError) as caught:
        extract_archives(tmp_path)
    message = str(caught.value)
    assert "bomb.zip" in message and "50.0 MiB" in message and "10.0 MiB limit" in message
    assert "HARNESS_UNZIP_LIMIT" in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bomb.zip"]  # zeros.bin never started


def test_nested_zips_count_together_against_the_limit(tmp_path):
    from harness.kaggle.download import extract_archives

    inner = {f"part{i}.zip": deflated({f"part{i}.bin": bytes(6 * 2**20)}) for i in range(2)}
    (tmp_path / "bundle.zip").write_bytes(zipped(inner))
    with pytest.raises(HarnessError, match=r"part1\.zip would unpack .* 10\.0 MiB limit"):
        extract_archives(tmp_path, limit=10 * 2**20)  # each part fits alone; the two together do not
    assert (tmp_path / "part0.bin").stat().st_size == 6 * 2**20 and not (tmp_path / "part1.bin").exists()


def test_a_member_that_lies_about_its_size_is_stopped_and_removed(tmp_path):
    import struct

    from harness.kaggle.download import extract_archives

    data = bytearray(deflated({"big.bin": bytes(5 * 2**20)}))
    # Declare 1000 bytes instead of 5 MiB in the local header (offset 22) and the central directory (offset 24).
    local, central = data.find(b"PK\x03\x04"), data.find(b"PK\x01\x02")
    struct.pack_into("<I", data, local + 22, 1000)
    struct.pack_into("<I", data, central + 24, 1000)
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as z:
        assert z.getinfo("big.bin").file_size == 1000
    (tmp_path / "liar.zip").write_bytes(bytes(data))
    with pytest.raises(HarnessError, match="liar.zip") as caught:
        extract_archives(tmp_path, limit=2**20)  # the declared size passes the limit; the content would not
    assert "big.bin" in str(caught.value)
    assert not (tmp_path / "big.bin").exists()  # nothing half-written left behind


def test_odd_member_names_are_renamed_or_skipped_with_a_note(tmp_path, capsys):
    import warnings

    from harness.kaggle.download import extract_archives

    folder = tmp_path / "data"
    folder.mkdir()
    buf = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buf, "w") as z:
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name we write on purpose
        z.writestr("/abs.csv", b"absolute\n")
        z.writestr("../x.csv", b"escaped\n")
        z.writestr("sub/../../y.csv", b"escaped too\n")
        z.writestr("images/", b"")
        z.writestr("images/a.jpg", b"jpeg")
        z.writestr("train.csv", b"first\n")
        z.writestr("train.csv", b"second\n")
    (folder / "odd.zip").write_bytes(buf.getvalue())
    assert extract_archives(folder) == 1
    err = capsys.readouterr().err
    assert "odd.zip: member '/abs.csv' is an absolute path, written inside the folder as abs.csv" in err
    assert "skipped member '../x.csv'" in err and "skipped member 'sub/../../y.csv'" in err
    assert "skipped member 'train.csv': a second file of that name" in err
    assert "images" not in err  # an ordinary folder entry needs no note
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) == ["abs.csv", "images", "images/a.jpg",
                                                                             "train.csv"]
    assert (folder / "train.csv").read_bytes() == b"first\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # nothing escaped the folder


@pytest.mark.parametrize("value", ["lots", "-5G", "0"])
def test_a_bad_unzip_limit_is_named(monkeypatch, value):
    from harness.kaggle.download import unzip_limit

    monkeypatch.setenv("HARNESS_UNZIP_LIMIT", value)
    with pytest.raises(HarnessError, match=f"HARNESS_UNZIP_LIMIT={value!r}: give a size above 0"):
        unzip_limit()


def test_unzip_limit_reads_units(monkeypatch):
    from harness.kaggle.download import DEFAULT_UNZIP_LIMIT, unzip_limit

    monkeypatch.delenv("HARNESS_UNZIP_LIMIT", raising=False)
    assert unzip_limit() == DEFAULT_UNZIP_LIMIT == 50 * 2**30
    for text, expected in [("200G", 200 * 2**30), ("1.5k", 1536), ("512", 512), ("3 MiB", 3 * 2**20)]:
        monkeypatch.setenv("HARNESS_UNZIP_LIMIT", text)
        assert unzip_limit() == expected, text


def test_download_over_the_unzip_limit_fails_cleanly(kaggle, cli_run, workspace, monkeypatch):
    monkeypatch.setenv("HARNESS_UNZIP_LIMIT", "1K")  # the toy competition's files are a few kB
    result = cli_run("data", "toy-kaggle", "--download", expect=2)
    (line,) = [l for l in result.output.splitlines() if l.startswith("error:")]
    assert f"{SLUG}.zip" in line and "1.0 KiB limit" in line and "Traceback" not in result.output
    assert not (workspace / "data" / "toy-kaggle").exists()
    assert not [p for p in (workspace / "data").iterdir()]  # the temporary folder is gone too


# ---------------------------------------------------------------------- bad input to submit and leaderboard
def error_line(result) -> str:
    """The one `error:` line of a failed command (and no traceback)."""
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.output
    return lines[0]


class ToyLocal(Competition):
    """A competition scored locally, whose loader leaves solution.csv alone: the generic checks answer."""

    name = "toy-local"
    kaggle_slug = None
    description = "toy locally scored competition registered by a test"
    raw_files = ("test.csv",)

    def default_config(self):
        return {"seed": 0, "train": {"epochs": 1, "lr": 0.01, "batch_size": 8}}

    def metrics(self, config):
        from harness.scoring.metrics import rmse

        return [rmse]

    def load(self, data_dir, config):
        return {"test": read_table(data_dir / "test.csv", required=("id", "x"))}

    def check_submission(self, submission, raw):
        if len(submission) != len(raw["test"]):
            raise HarnessError(f"submission has {len(submission)} rows; test.csv has {len(raw['test'])}")


class ToyLocalPlugin:
    @hookimpl
    def register_competitions(self, register):
        register(ToyLocal())


@pytest.fixture
def local_run(workspace, cli_run):
    """Toy data scored locally against solution.csv, and a run whose submission is right."""
    plugins.register_plugin(ToyLocalPlugin(), name="toy-local", source="test")
    data = workspace / "data" / "toy-local"
    data.mkdir(parents=True)
    ids = np.arange(1, N_TEST + 1)
    pd.DataFrame({"id": ids, "x": np.linspace(0, 1, N_TEST)}).to_csv(data / "test.csv", index=False)
    solution = pd.DataFrame({"id": ids, "target": np.linspace(1, 5, N_TEST)})
    solution.to_csv(data / "solution.csv", index=False)
    run = Run.create(workspace, "toy-local")
    run.save_config(ToyLocal().default_config())
    write_json(run.path("summary.json"), {"primary_metric": "rmse", "primary_score": 0.9, "direction": "minimize"})
    write_csv(run.path("submission.csv"), solution.assign(target=solution["target"] + 0.5))
    assert "rmse = 0.50000" in cli_run("submit", "toy-local", "--run", run.id).output  # as it stands, it scores
    yield run, data / "solution.csv", solution
    plugins.unregister_plugin("toy-local")


@pytest.mark.parametrize("fault, expected", [
    ("short", "does not answer the test set: 5 test id(s) have no answer (e.g. 16)"),
    ("extra ids", "2 answer(s) for ids not in the test set (e.g. 1000000)"),
    ("duplicate id", "1 duplicated id(s), first 1;"),
    ("blank id", "1 row(s) without an id, first at data row 4"),
    ("text answer", "column target has 1 value(s) that are not finite numbers, first 'four' at data row 3"),
    ("truncated", "column target has 1 value(s) that are not finite numbers, first nan at data row 20"),
    ("columns", "columns ['id', 'score'] should be the submission's ['id', 'target']"),
])
def test_a_faulty_solution_csv_is_named_not_the_submission(local_run, cli_run, workspace, fault, expected):
    run, path, solution = local_run
    bad = solution.astype({"id": object, "target": object})
    if fault == "short":
        bad = bad.iloc[:-5]
    if fault == "extra ids":
        bad = pd.concat([bad, pd.DataFrame({"id": [10**6, 10**6 + 1], "target": [3.0, 4.0]})])
    if fault == "duplicate id":
        bad.loc[1, "id"] = bad.loc[0, "id"]
    if fault == "blank id":
        bad.loc[3, "id"] = None
    if fault == "text answer":
        bad.loc[2, "target"] = "four"
    if fault == "columns":
        bad = bad.rename(columns={"target": "score"})
    bad.to_csv(path, index=False)
    if fault == "truncated":  # cut in the last row, after its id: a download or copy that stopped short
        text = path.read_text()
        path.write_text(text[:text.rstrip("\n").rindex(",") + 1])
    line = error_line(cli_run("submit", "toy-local", "--run", run.id, expect=2))
    assert line.startswith(f"error: {path}") and expected in line, line
    assert str(run.path("submission.csv")) not in line
    assert len(Leaderboard(workspace).submissions("toy-local")) == 1  # the faulty solution scored nothing


@pytest.mark.parametrize("fault, expected", [
    ("short", "submission has 15 rows; test.csv has 20"),
    ("other id", "the id set differs from solution.csv's: 1 missing (e.g. 1); 1 not in solution.csv (e.g. 1000000)"),
    ("duplicate id", "1 duplicated id(s), first 1"),
    ("text answer", "non-numeric prediction values in ['target']"),
])
def test_a_faulty_submission_is_named_not_the_solution(local_run, cli_run, fault, expected):
    run, path, solution = local_run
    sub = pd.read_csv(run.path("submission.csv")).astype({"target": object})
    if fault == "short":
        sub = sub.iloc[:-5]
    if fault == "other id":
        sub.loc[0, "id"] = 10**6
    if fault == "duplicate id":
        sub.loc[1, "id"] = sub.loc[0, "id"]
    if fault == "text answer":
        sub.loc[2, "target"] = "four"
    write_csv(run.path("submission.csv"), sub)
    line = error_line(cli_run("submit", "toy-local", "--run", run.id, expect=2))
    assert line.startswith(f"error: {run.path('submission.csv')}: ") and expected in line, line


@pytest.mark.parametrize("which", ["submission", "solution"])
def test_a_directory_in_place_of_a_local_file_is_named(local_run, cli_run, which):
    run, solution_path, _ = local_run
    path = run.path("submission.csv") if which == "submission" else solution_path
    path.unlink()
    path.mkdir()
    line = error_line(cli_run("submit", "toy-local", "--run", run.id, expect=2))
    assert f"{path} is a directory" in line


def test_a_short_movielens_solution_csv_is_named_not_the_submission(cli_run, workspace):
    from harness_plugins.movielens import MovieLens

    cli_run("data", "movielens", "--sample")
    path = workspace / "data" / "movielens" / "solution.csv"
    solution = pd.read_csv(path)
    run = Run.create(workspace, "movielens")
    run.save_config(MovieLens().default_config())
    write_json(run.path("summary.json"), {"primary_metric": "rmse", "primary_score": 0.9, "direction": "minimize"})
    write_csv(run.path("submission.csv"), solution)
    solution.iloc[:-5].to_csv(path, index=False)
    line = error_line(cli_run("submit", "movielens", "--run", run.id, expect=2))
    assert line.startswith(f"error: {path}: ") and str(run.path("submission.csv")) not in line


@pytest.mark.parametrize("which", ["submission.csv", "sample_submission.csv"])
def test_a_directory_in_place_of_a_kaggle_file_is_named(kaggle, cli_run, workspace, which):
    data = put_data(workspace)
    run = make_run(workspace)
    path = run.path(which) if which == "submission.csv" else data / which
    path.unlink()
    path.mkdir()
    line = error_line(cli_run("submit", "toy-kaggle", "--run", run.id, "--dry-run", expect=2))
    assert f"{path} is a directory" in line
    assert kaggle.calls == []


def test_a_truncated_submission_names_the_submission(kaggle, cli_run, workspace):
    put_data(workspace)
    run = make_run(workspace)
    text = run.path("submission.csv").read_text()
    run.path("submission.csv").write_text(text[:len(text) * 2 // 3])  # a copy that stopped two thirds in
    line = error_line(cli_run("submit", "toy-kaggle", "--run", run.id, expect=2))
    assert line.startswith(f"error: {run.path('submission.csv')}: ")
    assert kaggle.calls == [] and kaggle.uploads == []


@pytest.mark.parametrize("args, expected", [
    (["submit", "toy-kaggle", "--wait", "-1"], "--wait -1: give the seconds"),
    (["leaderboard", "toy-kaggle", "--kaggle", "-3"], "--kaggle -3: give how many"),
])
def test_negative_counts_to_submit_and_leaderboard_are_named(kaggle, cli_run, workspace, args, expected):
    put_data(workspace)
    make_run(workspace)
    assert expected in error_line(cli_run(*args, expect=2))
    assert kaggle.calls == []


@pytest.mark.parametrize("name, column, value, expected", [
    ("movielens", "rating", "abc", "non-numeric prediction values in ['rating']: 1 row(s), first 'abc' at data row 1"),
    ("rossmann", "Sales", -5.0, "values must lie in [0.0, inf]; found -5"),
])
def test_a_faulty_submission_names_its_file_once(cli_run, workspace, name, column, value, expected):
    """The competition's check calls the table it checks "submission" (or "rossmann submission"); submit
    names the file in that label's place, not before it ("submission.csv: submission: ...")."""
    from harness.host.plugins import get_competition

    cli_run("data", name, "--sample")
    data = workspace / "data" / name
    answers = pd.read_csv(data / ("solution.csv" if name == "movielens" else "sample_submission.csv"))
    run = Run.create(workspace, name)
    run.save_config(get_competition(name).default_config())
    write_json(run.path("summary.json"), {"primary_metric": "rmse", "primary_score": 0.9, "direction": "minimize"})
    bad = answers.astype({column: object})
    bad.loc[0, column] = value
    write_csv(run.path("submission.csv"), bad)
    line = error_line(cli_run("submit", name, "--run", run.id, "--dry-run", expect=2))
    assert line.startswith(f"error: {run.path('submission.csv')}: {expected}"), line
