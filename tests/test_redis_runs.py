"""The distributed mode's pieces on a real ``redis-server`` (started on a free port), without servers or
trainings: a run's events through Redis fold into exactly what progress.json holds (the independent
reference: ``ml.sinks.ProgressFileSink`` fed the same events), an event sent twice counts once, events wait
in order while Redis is away, the caps hold across two web processes' run books (also when both take the
same workbook at once), and a Redis that does not answer gets its words everywhere instead of an error."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import server_app  # noqa: F401 - xlwings Server configured before the run books import it
from quick_training import quick_config
from test_progress_file import run_events

from excel_addin import status_line
from excel_addin.jobs import keys
from excel_addin.jobs.publish import Publisher
from excel_addin.server.runs import QUEUED, Refused, RunKey, run_folder
from excel_addin.server.runs.redis import RedisRuns
from excel_addin.server.runs.stream import Streams
from excel_addin.testing.live_server import free_port
from excel_addin.testing.redis_server import RedisServer
from excel_addin.testing.waiting import wait_for
from ml import run_lock
from ml.config import TrainConfig
from ml.events import event_to_dict
from ml.run_dir import RunDir
from ml.sinks import ProgressFileSink


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def client(redis_server):
    connection = keys.connect(redis_server.url)
    connection.flushdb()
    return connection


def file_record(run_dir: RunDir, events) -> dict:
    """progress.json after ``events``, as the embedded mode writes it (without its write time)."""
    run_dir.prepare()
    sink = ProgressFileSink(run_dir, every=0.0)
    for event in events:
        sink.handle(event)
    return {k: v for k, v in run_dir.read_progress().items() if k != "updated"}


def test_a_runs_events_through_redis_fold_into_what_progress_json_holds(client, tmp_path):
    events = run_events(str(tmp_path))
    publisher = Publisher(client, "r1", RunDir(tmp_path), shown=str(tmp_path), every=0.0)
    streams = Streams()
    for count, event in enumerate(events, start=1):
        publisher.handle(event)
        record, _ = streams.read(client, "r1")  # read as it goes: only the new entries each time
        assert record == file_record(RunDir(tmp_path / "ref"), events[:count])
    assert record["ended"]["status"] == "completed" and [e["epoch"] for e in record["epochs"]] == [1, 2]
    fresh, _ = Streams().read(client, "r1")  # a web process that starts now rebuilds the same
    assert fresh == record


def test_paths_in_events_are_the_web_sides(client, tmp_path):
    shown = "/srv/gradsheet/runs/alice/wb1/runs/mnist"
    publisher = Publisher(client, "r2", RunDir(tmp_path / "scratch"), shown=shown, every=0.0)
    for event in run_events(str(tmp_path / "scratch")):
        publisher.handle(event)
    record, _ = Streams().read(client, "r2")
    assert record["started"]["out_dir"] == shown == record["ended"]["out_dir"]
    assert record["epochs"][0]["checkpoint"] == f"{shown}/model.pt"
    assert str(tmp_path) not in str(record)


def test_an_event_sent_twice_counts_once(client, tmp_path):
    """A write that reached Redis although its answer did not is sent again: the reader skips it."""
    start, *rest = run_events(str(tmp_path))
    publisher = Publisher(client, "r3", RunDir(tmp_path), shown=str(tmp_path), every=0.0)
    publisher.handle(start)
    epoch_one = next(e for e in rest if type(e).__name__ == "EpochEnd")
    publisher.handle(epoch_one)
    publisher._send_event(publisher.seq, json.dumps(publisher.relocated(event_to_dict(epoch_one))))
    assert client.xlen(keys.events("r3")) == 3  # start, the epoch, the epoch again
    record, _ = Streams().read(client, "r3")
    assert [e["epoch"] for e in record["epochs"]] == [1]


def test_events_wait_in_order_while_redis_is_away(tmp_path):
    server = RedisServer(tmp_path / "redis").start()
    try:
        client = keys.connect(server.url)
        events = run_events(str(tmp_path))
        publisher = Publisher(client, "r4", RunDir(tmp_path), shown=str(tmp_path), every=0.0)
        publisher.handle(events[0])
        server.stop()
        for event in events[1:]:
            publisher.handle(event)  # training goes on; nothing raises
        assert publisher.error is not None
        kinds = [kind for kind, _ in publisher.outbox if kind != "files"]
        assert kinds.count("step") <= 2 and kinds.count("event") == 3  # 2 epochs and the end wait
        server.start()
        assert publisher.finish(patience_s=30)
        record, _ = Streams().read(client, "r4")
        assert record == file_record(RunDir(tmp_path / "ref"), events)
    finally:
        server.stop()


# ---- the run book of two web processes ----------------------------------------------------------------


def config(tmp_path: Path, key: RunKey) -> TrainConfig:
    out = run_folder(tmp_path / "runs", key) / "runs" / "mnist"
    RunDir(out).prepare()
    return quick_config(out, epochs=1)


def submit(book: RedisRuns, tmp_path: Path, key: RunKey):
    settings = config(tmp_path, key)
    return book.submit(key, settings, run_lock.acquire(settings.out_dir))


def shared_books(url: str, tmp_path: Path) -> tuple[RedisRuns, RedisRuns]:
    caps = {"per_owner": 1, "queue": 2, "minutes": None}  # a shared server with a queue of two
    return RedisRuns(tmp_path / "runs", url, caps), RedisRuns(tmp_path / "runs", url, caps)


def test_caps_hold_across_web_processes(client, redis_server, tmp_path):
    """No worker takes the runs: they wait in RQ's queue, counted by both web processes' run books."""
    one, two = shared_books(redis_server.url, tmp_path)
    first = submit(one, tmp_path, RunKey("alice", "a1"))
    assert first.state == QUEUED and two.latest(RunKey("alice", "a1")).run_id == first.run_id
    assert two.refusal(RunKey("alice", "a1")) == status_line.busy_text(1)
    assert two.refusal(RunKey("alice", "a2")) == status_line.busy_text(1, "a1")
    with pytest.raises(Refused):
        submit(two, tmp_path, RunKey("alice", "a2"))
    submit(two, tmp_path, RunKey("bob", "b1"))
    assert one.refusal(RunKey("carol", "c1")) == status_line.queue_full(2)
    assert one.counts() == {"running": 0, "queued": 2, "slots": 0}
    rows = two.overview()  # the teacher's view, from either web process: the waiting runs first
    assert [(r["owner"], r["workbook"], r["queue"]) for r in rows[:2]] == [
        ("alice", "a1", 1),
        ("bob", "b1", 2),
    ]
    assert two.view(RunKey("bob", "b1")).status == status_line.waiting_text(2, 2, 0)
    assert two.cancel(RunKey("bob", "b1")) is not None and one.cancel(RunKey("bob", "b1")) is None
    assert one.view(RunKey("bob", "b1")).status == status_line.CANCELLED_TEXT
    assert one.refusal(RunKey("carol", "c1")) is None
    assert one.stop(RunKey("alice", "a1")) == status_line.CANCELLED_TEXT  # Stop through the other one
    assert two.refusal(RunKey("alice", "a2")) is None


def test_one_workbook_pressed_on_two_web_processes_at_once_queues_once(client, redis_server, tmp_path):
    """Ten workbooks, each pressed through both web processes at the same instant: one run each."""
    caps = {"per_owner": 1, "queue": 100, "minutes": None}
    one, two = (
        RedisRuns(tmp_path / "runs", redis_server.url, caps),
        RedisRuns(tmp_path / "runs", redis_server.url, caps),
    )
    for k in range(10):
        key = RunKey(f"dave{k}", "d1")
        outcomes: list = []
        barrier = threading.Barrier(2)

        def press(book, key=key, outcomes=outcomes, barrier=barrier):
            settings = config(tmp_path, key)
            barrier.wait()
            try:
                outcomes.append(book.submit(key, settings, run_lock.RunLock(**_lock_fields(settings))))
            except Refused as error:
                outcomes.append(error)

        threads = [threading.Thread(target=press, args=(book,)) for book in (one, two)]
        [thread.start() for thread in threads]
        [thread.join() for thread in threads]
        assert sorted(type(o).__name__ for o in outcomes) == ["Refused", "RemoteJob"], outcomes
    assert one.counts()["queued"] == 10 and len(client.hkeys(keys.ACTIVE)) == 10


def _lock_fields(settings: TrainConfig) -> dict:
    """A lock record that is nobody's (each press's own; the web side releases it at once)."""
    return {
        "token": "t",
        "pid": 0,
        "pid_started": 0.0,
        "out_dir": settings.out_dir,
        "book": None,
        "started": 0.0,
    }


def test_a_redis_that_does_not_answer_gets_its_words(tmp_path):
    book = RedisRuns(tmp_path / "runs", f"redis://127.0.0.1:{free_port()}/0")
    key = RunKey("erin", "e1")
    folder = run_folder(tmp_path / "runs", key) / "runs" / "mnist"
    RunDir(folder).prepare()
    file_record(RunDir(folder), run_events(str(folder)))  # a run delivered before Redis went away
    unreachable = status_line.QUEUE_UNREACHABLE_TEXT
    assert book.refusal(key).startswith(status_line.not_started(unreachable))
    view = book.view(key)
    assert view.status.startswith(unreachable) and [row[0] for row in view.rows] == [1, 2]
    with pytest.raises(Refused, match="not reachable"):
        submit(book, tmp_path, key)
    with pytest.raises(ValueError, match="not reachable"):
        book.request_stop(key, folder)
    assert book.stop(key).startswith(status_line.not_stopped(unreachable))
    assert book.counts() == {"running": 0, "queued": 0, "slots": 0}
    assert [row["workbook"] for row in book.overview()] == ["e1"]


# ---- the command lines --------------------------------------------------------------------------------


def test_several_web_processes_need_redis(capsys):
    from excel_addin.server.cli import main

    with pytest.raises(SystemExit, match="--workers needs --redis"):
        main(["--http", "--workers", "2"])


@pytest.mark.slow
def test_a_worker_asked_for_cuda_on_a_machine_without_says_so():
    import subprocess
    import sys

    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    url = f"redis://127.0.0.1:{free_port()}/0"
    done = subprocess.run([sys.executable, "-m", "excel_addin.worker", "--redis", url, "--device", "cuda"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2 and "no CUDA GPU" in done.stderr


def test_slots_spread_over_the_gpus():
    from excel_addin.jobs.supervisor import plan

    assert [(s.device, s.env) for s in plan("auto", None, 0)] == [("cpu", {})]
    eight = plan("auto", None, 2)  # four per GPU, slot k on GPU k mod 2
    assert len(eight) == 8 and [s.env["CUDA_VISIBLE_DEVICES"] for s in eight[:3]] == ["0", "1", "0"]
    assert [(s.device, s.env) for s in plan("cuda:1", 2, 4)] == [("cuda:1", {}), ("cuda:1", {})]
    assert len(plan("cpu", 3, 1)) == 3


@pytest.mark.slow
def test_a_running_job_stops_on_the_stop_key_or_at_the_time_limit(client):
    from excel_addin.jobs.task import StopWatch

    spec = {"owner": "fay", "workbook": "f1"}
    pressed = StopWatch(client, "r5", spec, minutes=None)
    try:
        client.set(keys.stop("r5"), b"1")  # what Stop sets, through any web process
        wait_for(pressed.should_stop, 5, what="the stop key to be seen")
    finally:
        pressed.close()
    timed = StopWatch(client, "r6", spec, minutes=0.01)  # 0.6 s
    try:
        wait_for(timed.should_stop, 5, what="the time limit")
        said = json.loads(client.hget(keys.NOTICES, keys.field("fay", "f1")))
        assert said["text"] == status_line.time_limit_text(0.01)
    finally:
        timed.close()
