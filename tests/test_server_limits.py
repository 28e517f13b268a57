"""What one user may ask of the add-in server, tried as a student who wants everyone's attention: a huge
range, a huge table, too many trainings, too long a training, and a server killed mid-run. Each gets a
clear message and leaves the server serving the others (issue 24, findings 5, 6 and 9)."""

from __future__ import annotations

import os
import signal
import threading
import time

import httpx
import pytest
from quick_training import quick_config
from server_app import LOCAL, QUICK, LiveServer, call_body, press, wait_for

from excel_addin import status_line
from excel_addin.server.options import CAPS, MAX_RANGE_CELLS
from excel_addin.server.runs import RunKey
from excel_addin.server.runs.local import Limits, LocalRuns, Slot
from excel_addin.server.workbook import run_key
from excel_addin.testing.class_codes import enrol, signed_in
from ml import run_lock
from ml.run_dir import RunDir


def cell_call(url: str, name: str, *args, timeout: float = 120) -> list[list]:
    body = call_body(name, [a if isinstance(a, list) else [[a]] for a in args])
    response = httpx.post(f"{url}/xlwings/custom-functions-call", json=body, timeout=timeout)
    assert response.status_code == 200, response.text
    return response.json()["result"]


@pytest.fixture(scope="module")
def server(live_server):
    """The test run's default server (conftest.py: ``--http --max-trainings 1``)."""
    return live_server


@pytest.mark.slow
def test_a_huge_range_is_refused_and_stalls_nobody(server):
    """A range too large for a cell function: over the body limit, refused before it is read (413, the
    perimeter); within it but over MAX_RANGE_CELLS, measured before conversion and answered with a
    message, while a small call sent meanwhile is answered too (nothing converts on the event loop)."""
    body = call_body("CLASSIFY_PIXELS", [[[1] * 1000] * 1000])
    refused = httpx.post(f"{server.url}/xlwings/custom-functions-call", json=body, timeout=120)
    assert refused.status_code == 413 and "request too large" in refused.json()["detail"]
    finished: list[str] = []

    def large():
        result = cell_call(server.url, "CLASSIFY_PIXELS", [[1] * 120] * 120)
        finished.append("large")
        limit = f"{MAX_RANGE_CELLS:,} cells"
        assert result == [[f"#VALUE! pixels: a range of at most {limit}, please (this one is larger)"]]

    thread = threading.Thread(target=large)
    thread.start()
    assert cell_call(server.url, "BACKPROP_LOSS", 0.5, 10)[0][0] == pytest.approx(0.2, abs=0.2)
    finished.append("small")
    thread.join(60)
    assert sorted(finished) == ["large", "small"]
    # and a range that fits still works
    assert isinstance(cell_call(server.url, "CLASSIFY_PIXELS", [[0] * 14 + [1] * 14] * 28)[0][0], int)


@pytest.mark.slow
def test_huge_tables_and_epochs_are_refused(server):
    assert cell_call(server.url, "BACKPROP_TABLE", 0.5, 100_000) == [
        ["#VALUE! epochs must be at most 1,000 in a cell, got 100,000"]
    ]
    assert cell_call(server.url, "BACKPROP_CURVE", 0.5, 1001) == [
        ["#VALUE! epochs must be at most 1,000 in a cell, got 1,001"]
    ]
    assert cell_call(server.url, "BACKPROP_LOSS", 0.5, 100_000) == [
        ["#VALUE! epoch must be at most 10,000 in a cell, got 100,000"]
    ]
    assert len(cell_call(server.url, "BACKPROP_TABLE", 0.5, 1000)) == 1002


@pytest.mark.slow
def test_the_shared_servers_caps_refuse_greedy_runs(tmp_path):
    alice = signed_in(enrol(tmp_path / "runs", "Alice")["alice"])
    options = ("--http", "--shared", "--host", "127.0.0.1", "--max-epochs", "5")
    server = LiveServer(tmp_path, *options).wait_ready()
    try:
        press(server.url, "train", "greedy", alice, **QUICK, epochs=6)
        status = httpx.get(f"{server.url}/gradsheet/status", params={"workbook": "greedy"}, headers=alice)
        said = status.json()["status"]
        assert said == "Not started: this server trains at most 5 epochs per run: set epochs to 5 or fewer"
        assert not run_lock.active_run(server.folder / "runs" / "alice" / "greedy" / "runs" / "mnist")
    finally:
        server.stop()
    assert CAPS["max_epochs"][1] >= 15  # the shared default leaves room for the default 15-epoch run


def submit(runs: LocalRuns, root, owner: str, workbook: str, **changes):
    key = RunKey(owner, workbook)
    config = quick_config(root / owner / workbook / "runs" / "mnist", **{"epochs": 50, **changes}).validate()
    RunDir(config.out_dir).prepare()
    return runs.submit(key, config, run_lock.acquire(config.out_dir))


@pytest.mark.slow
def test_one_training_per_user_and_a_queue_cap(tmp_path):
    runs = LocalRuns(tmp_path, [Slot(0)], threads=1, limits=Limits(per_owner=1, queue=1), journal=False)
    first = submit(runs, tmp_path, "alice", "a1")
    try:
        assert runs.refusal(RunKey("alice", "a2")) == status_line.busy_text(None, "a1")
        assert runs.refusal(RunKey("alice", "a1")) == status_line.busy_text(None)
        submit(runs, tmp_path, "bob", "b1")  # waits: one slot
        assert runs.refusal(RunKey("carol", "c1")) == status_line.queue_full(1)
    finally:
        assert runs.cancel(RunKey("bob", "b1")) is not None
        runs.stop(first.key)
        wait_for(lambda: runs.counts()["running"] == 0, what="the run to stop")
    assert runs.refusal(RunKey("carol", "c1")) is None


@pytest.mark.slow
def test_a_run_past_the_time_limit_is_stopped_and_keeps_its_checkpoint(tmp_path):
    runs = LocalRuns(tmp_path, [Slot(0)], threads=1, limits=Limits(minutes=0.4), journal=False)
    job = submit(runs, tmp_path, "alice", "long")  # 50 epochs: minutes on this machine
    wait_for(lambda: runs.counts()["running"] == 0, timeout=180, what="the time limit to stop the run")
    assert 24 <= time.time() - job.started < 120
    assert runs.view(job.key).status.startswith("Stopped after")  # an epoch or more, checkpoint kept
    assert RunDir(job.config.out_dir).read_progress()["ended"]["status"] == "stopped"


@pytest.mark.slow
def test_a_restarted_server_adopts_running_trainings_and_tells_waiting_ones(tmp_path, monkeypatch):
    """kill -9 of the server mid-run: the training goes on in its own process; the restarted server
    counts it against its one slot (a new Train waits) and Stop reaches it; the run that waited is told to
    press Train again."""
    server = LiveServer(tmp_path, "--http", "--max-trainings", "1").wait_ready()
    press(server.url, "train", "running", **QUICK, epochs=200)
    press(server.url, "train", "waiting", **QUICK, epochs=1)
    running_dir = tmp_path / "runs" / LOCAL.id / "running" / "runs" / "mnist"
    wait_for(lambda: RunDir(running_dir).read_progress() is not None, timeout=120, what="training")
    os.kill(server.process.pid, signal.SIGKILL)
    server.process.wait()
    server.log.close()
    monkeypatch.setenv(run_lock.STATE_ENV, str(tmp_path / "state"))  # the servers' lock files
    assert run_lock.active_run(running_dir) is not None  # the training outlived the server

    again = LiveServer(tmp_path, "--http", "--max-trainings", "1").wait_ready()
    try:
        status = lambda wid: httpx.get(  # noqa: E731  (the first ask makes the run book: torch loads)
            f"{again.url}/gradsheet/status", params={"workbook": wid}, timeout=120
        ).json()
        assert status("waiting")["status"] == status_line.RESTARTED_TEXT
        assert status("running")["server"] == {"running": 1, "queued": 0, "slots": 1}
        press(again.url, "train", "newcomer", **QUICK, epochs=1)
        assert status("newcomer")["queue"] == 1  # the adopted run holds the slot
        press(again.url, "stop", "running", **QUICK)
        wait_for(
            lambda: status("newcomer")["status"].startswith("Completed"), timeout=180, what="the newcomer"
        )
        assert status("running")["status"].startswith("Stopped after")
    finally:
        again.stop()
    assert run_key(LOCAL, "running") == RunKey(LOCAL.id, "running")
