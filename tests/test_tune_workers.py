"""Several worker processes on one study: PostgreSQL sharing, and a worker killed mid-trial."""
import os
import signal
import subprocess
import sys
import time
import uuid

import optuna
import pytest

from harness.tune.study import default_storage, load_study, make_storage
from test_tune import invoke, small_sample

PG_URL = os.environ.get("HARNESS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
HARNESS = [sys.executable, "-c", "from harness.cli import main; main()"]
TrialState = optuna.trial.TrialState


def worker(ws, *args) -> subprocess.Popen:
    return subprocess.Popen([*HARNESS, "--workspace", str(ws), "tune", "movielens", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def postgres_or_skip():
    psycopg2 = pytest.importorskip("psycopg2", reason="psycopg2 is not installed (pip install 'harness[postgres]')")
    try:
        psycopg2.connect(PG_URL, connect_timeout=2).close()
    except psycopg2.OperationalError as exc:
        pytest.skip(f"no PostgreSQL server answers at {PG_URL} ({str(exc).strip().splitlines()[0]}); "
                    "set HARNESS_TEST_POSTGRES to a server's URL to run this test")


def wait_for_trials(url, ws, study, proc, n=1, running=False, timeout=90):
    """Poll the storage until the study has ``n`` trials (the first one RUNNING and reporting, if asked)."""
    deadline = time.time() + timeout
    storage = make_storage(url, ws, heartbeat=1)
    while time.time() < deadline:
        try:
            trials = load_study(storage, study).get_trials()
        except Exception:  # the study is not created yet
            trials = []
        if len(trials) >= n and (not running or (trials[0].state == TrialState.RUNNING
                                                 and trials[0].intermediate_values)):
            return trials
        assert proc.poll() is None, proc.communicate()[0]
        time.sleep(0.3)
    pytest.fail(f"the worker started no trial within {timeout} s")


def test_two_workers_share_one_postgres_study(tmp_path):
    postgres_or_skip()
    # Two workspaces stand for two machines; the study lives only on the server.
    ws_a, ws_b = tmp_path / "a", tmp_path / "b"
    small_sample(ws_a)
    small_sample(ws_b)
    name = f"harness-test-{uuid.uuid4().hex[:12]}"
    args = ["--storage", PG_URL, "--study", name, "--sampler", "random", "--pruner", "none", "--set", "train.epochs=1"]
    proc = worker(ws_a, "--trials", 2, *args)
    try:
        wait_for_trials(PG_URL, ws_a, name, proc)  # worker A is in the study; B joins while it works
        invoke(ws_b, "tune", "movielens", "--trials", 2, *args)
        assert proc.wait(timeout=120) == 0, proc.communicate()[0]
        trials = load_study(make_storage(PG_URL, ws_a), name).get_trials()
        assert sorted(t.number for t in trials) == list(range(4))  # nothing lost, nothing duplicated
        assert all(t.state == TrialState.COMPLETE for t in trials)
        by_worker = [sum(t.user_attrs["workspace"] == str(ws.resolve()) for t in trials) for ws in (ws_a, ws_b)]
        assert by_worker == [2, 2]
        for ws in (ws_a, ws_b):  # each trial's run folder is on its own worker
            for t in trials:
                if t.user_attrs["workspace"] == str(ws.resolve()):
                    assert (ws / "runs" / "movielens" / t.user_attrs["run"] / "valid_preds.npy").exists()
    finally:
        if proc.poll() is None:
            proc.kill()
        try:
            optuna.delete_study(study_name=name, storage=make_storage(PG_URL, ws_a))
        except KeyError:
            pass


def test_a_killed_worker_leaves_a_failed_trial_and_the_study_goes_on(tmp_path):
    ws = tmp_path / "ws"
    small_sample(ws)
    url = default_storage(ws)
    # A long trial (many epochs) with a heartbeat every second; kill it once it is training.
    proc = worker(ws, "--trials", 1, "--heartbeat", 1, "--pruner", "none", "--set", "train.epochs=2000")
    try:
        wait_for_trials(url, ws, "movielens", proc, running=True)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    # Past the grace period (two heartbeats) since the last heartbeat, with a second to spare: SQLite's
    # clock, which stamps the heartbeat and tells staleness, counts whole seconds (2.5 s failed at random).
    time.sleep(3.5)

    result = invoke(ws, "tune", "movielens", "--trials", 1, "--heartbeat", 1, "--set", "train.epochs=1")
    trials = load_study(make_storage(url, ws, heartbeat=1), "movielens").get_trials()
    assert [t.number for t in trials] == [0, 1]
    assert trials[0].state == TrialState.FAIL and trials[0].user_attrs.get("run")
    assert trials[1].state == TrialState.COMPLETE
    assert "trial 0: its worker stopped sending heartbeats" in result.output
