"""One run per output folder, whoever starts it: the lock survives pid reuse and garbage, lives in a
private folder, and a stop request is a file of the run's own (never a path read from a lock file)."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from quick_training import quick_config

from ml import run_lock
from ml.events import Sink
from ml.train import main, stop_file_checker, train

pytestmark = pytest.mark.usefixtures("state_dir")  # run locks in a folder of the test's own (conftest.py)


def write_lock(out: Path, **fields) -> Path:
    """A lock file as another process would have left it."""
    lock = run_lock.RunLock("ab" * 8, os.getpid(), time.time(), str(out), None, time.time())
    data = {**dataclasses.asdict(lock), **fields}
    path = run_lock.lock_path(out)
    path.write_text(json.dumps(data) if not isinstance(data.get("raw"), str) else data["raw"])
    return path


def test_a_live_run_holds_its_folder_and_the_message_names_the_lock_file(tmp_path):
    out = tmp_path / "run"
    lock = run_lock.acquire(out, book="course.xlsm")
    with pytest.raises(run_lock.AlreadyRunningError) as error:
        run_lock.acquire(out)
    message = str(error.value)
    assert f"process {os.getpid()}" in message and str(run_lock.lock_path(out)) in message
    assert "course.xlsm" in message and "Press Stop first" in message
    other = run_lock.acquire(tmp_path / "other")  # another folder is free
    run_lock.release(other)
    run_lock.release(lock)
    assert run_lock.active_run(out) is None and not run_lock.lock_path(out).exists()


def test_a_reused_pid_does_not_keep_a_dead_runs_lock(tmp_path):
    """The pid is alive (this very process) but started at another time: the lock's process is gone."""
    out = tmp_path / "run"
    write_lock(out, pid_started=time.time() - 3600)
    assert run_lock.active_run(out) is None
    assert not run_lock.lock_path(out).exists()
    run_lock.release(run_lock.acquire(out))


@pytest.mark.parametrize(
    "content",
    [
        {"raw": "garbage \x00\xff not json"},
        {"raw": "[1, 2, 3]"},
        {"pid": "1234"},
        {"pid": True},
        {"pid_started": None},
        {"book": 7},
        {"stop_file": "/tmp/elsewhere"},  # an unknown field: not a lock this version wrote
    ],
)
def test_a_corrupt_lock_file_is_stale(tmp_path, content):
    out = tmp_path / "run"
    path = write_lock(out, **content)
    old = time.time() - 10
    os.utime(path, (old, old))  # not one being written right now
    assert run_lock.read_lock(out) is None
    assert run_lock.active_run(out) is None and not path.exists()
    run_lock.release(run_lock.acquire(out))


@pytest.mark.slow
def test_stop_writes_only_the_runs_own_stop_file(tmp_path):
    out = tmp_path / "run"
    elsewhere = tmp_path / "elsewhere"
    write_lock(out, stop_file=str(elsewhere))  # a lock file that points somewhere else
    assert run_lock.request_stop(out) is None  # not a valid lock: nothing runs, nothing written
    lock = run_lock.acquire(out)
    assert run_lock.request_stop(out) == lock
    assert run_lock.stop_path(out).exists() and run_lock.stop_path(out).parent == run_lock.state_dir()
    assert not elsewhere.exists()
    run_lock.release(lock)
    assert not run_lock.stop_path(out).exists()


def test_the_state_folder_is_private_and_not_a_symlink(tmp_path, monkeypatch):
    fresh = tmp_path / "fresh"
    monkeypatch.setenv(run_lock.STATE_ENV, str(fresh))
    assert run_lock.state_dir() == fresh and stat.S_IMODE(fresh.stat().st_mode) == 0o700
    fresh.chmod(0o777)
    run_lock.state_dir()
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o700  # ours but open to others: made private
    target = tmp_path / "target"
    target.mkdir()
    link = tmp_path / "link"
    link.symlink_to(target)
    monkeypatch.setenv(run_lock.STATE_ENV, str(link))
    with pytest.raises(run_lock.RunLockError, match=f"the state folder {link} is a symbolic link"):
        run_lock.acquire(tmp_path / "run")
    a_file = tmp_path / "file"
    a_file.write_text("x")
    monkeypatch.setenv(run_lock.STATE_ENV, str(a_file))
    with pytest.raises(run_lock.RunLockError, match=f"the state folder {a_file} is not a folder"):
        run_lock.state_dir()


@pytest.mark.slow
def test_a_symlinked_lock_file_is_not_followed(tmp_path):
    out = tmp_path / "run"
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    run_lock.state_dir()
    run_lock.lock_path(out).symlink_to(victim)
    lock = run_lock.acquire(out)  # the link is stale, removed, and the lock created in its place
    assert victim.read_text() == "precious"
    assert not run_lock.lock_path(out).is_symlink()
    run_lock.release(lock)


@pytest.mark.slow
def test_two_command_line_runs_never_share_a_folder(tmp_path, state_dir):
    """A real CLI run holds the folder; a second run into it (CLI or train()) is refused, not mixed in."""
    out = tmp_path / "run"
    env = {**os.environ, run_lock.STATE_ENV: str(state_dir), "PYTHONUNBUFFERED": "1"}
    first = subprocess.Popen(
        [sys.executable, "-m", "ml.train", "--epochs", "30", "--subset", "1000", "--batch-size", "100",
         "--model", "small", "--threads", "1", "--run-dir", str(out)],
        env=env, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while run_lock.active_run(out) is None:
            assert first.poll() is None and time.monotonic() < deadline, "the first run did not start"
            time.sleep(0.1)
        with pytest.raises(run_lock.AlreadyRunningError, match=f"process {first.pid}"):
            train(quick_config(out, epochs=1), [])
        second = subprocess.run(
            [sys.executable, "-m", "ml.train", "--epochs", "1", "--subset", "1000", "--run-dir", str(out)],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert second.returncode == 2
        assert "error: Not started: training started at" in second.stderr
        assert str(run_lock.lock_path(out)) in second.stderr
        assert run_lock.request_stop(out) is not None  # the Stop button's request reaches a CLI run too
        assert first.wait(timeout=120) == 0
    finally:
        if first.poll() is None:
            first.kill()
    record = json.loads((out / "metrics.json").read_text())
    assert record["run"]["status"] == "stopped" and record["run"]["config"]["epochs"] == 30
    assert run_lock.read_lock(out) is None


def test_stop_file_must_not_exist_and_is_never_deleted(tmp_path, capsys):
    stop = tmp_path / "STOP"
    stop.write_text("mine")
    code = main(["--dry-run", "--run-dir", str(tmp_path / "run"), "--stop-file", str(stop)])
    assert code == 2 and "the stop file" in capsys.readouterr().err and stop.read_text() == "mine"
    assert not (tmp_path / "run").exists()

    class UserStops(Sink):
        def on_batch(self, event):
            if event.step == 2:
                stop.write_text("made by the user")

    stop.unlink()
    ended = train(quick_config(tmp_path / "run", epochs=3), [UserStops()], stop_file_checker(stop))
    assert ended.status == "stopped" and stop.read_text() == "made by the user"
