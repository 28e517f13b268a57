"""A classroom at the add-in server (issue 24's last test, issue 25's benchmark engine at a short length):
twenty simulated students with class codes of their own on a real ``--shared`` server under uvicorn on
loopback, each with the task pane's socket.io stream and status poll, cell calls whose answers are checked
against the engine in this process, and real small trainings pressed by some. The engine is
``bench/classroom_bench.py``'s (bench/ is on the tests' path), so the test and the benchmark cannot drift
apart.

And the class coming back at once after a server crash: every queued run says the server restarted (a run
book made twice by the first concurrent requests lost those notices).
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import threading
import time

import pytest
from classroom_bench import ClassConfig, run_classroom
from server_app import QUICK, LiveServer, wait_for
from test_progress_file import run_events

from excel_addin import status_line
from excel_addin.server import runs
from excel_addin.server.progress import PARTS
from excel_addin.server.runs import files
from excel_addin.testing.class_codes import enrol
from excel_addin.testing.student import Student
from ml.run_dir import RunDir
from ml.sinks import MetricsFileSink, ProgressFileSink

pytest.importorskip("socketio")
pytest.importorskip("websocket")  # python-socketio[client]: its websocket transport


@pytest.mark.slow
def test_a_class_of_twenty_gets_its_own_answers_and_only_its_own_messages(tmp_path):
    config = ClassConfig(students=20, trainers=2, seconds=15, epochs=1, faults=False, timings=False)
    record = run_classroom(config, tmp_path)
    assert record["students"] == 20 and record["requests"] > 100
    assert record["errors"] == 0, record["error_samples"]
    assert record["wrong_results"] == 0, record["wrong_samples"]  # cells, own models, untrained streams
    assert record["foreign_events"] == 0 and record["events_received"] >= 20  # only their own messages
    assert record["trainings_pressed"] == record["trainings_completed"] == 2
    assert record["rows_lost"] == record["rows_inconsistent"] == 0 and record["rows_checked"] == 2
    assert record["latency_ms"]["CLASSIFY_PIXELS own model"]["count"] == 2  # each trainer's own model


@pytest.mark.slow
def test_every_queued_run_says_the_server_restarted_to_a_class_that_comes_back_at_once(tmp_path):
    """One run trains and four wait when the server is killed; after its restart the five students'
    task panes reconnect at the same moment (streams and status): the waiting ones read that the server
    restarted, the training one goes on."""
    codes = enrol(tmp_path / "runs", *(f"Pupil {k}" for k in range(5)))
    options = ("--http", "--shared", "--host", "127.0.0.1", "--max-trainings", "1")
    server = LiveServer(tmp_path, *options).wait_ready()
    students = [Student(server.url, user, code) for user, code in sorted(codes.items())]
    trainer, waiting = students[0], students[1:]
    try:
        trainer.press("train", "book", **QUICK, epochs=30)
        for student in waiting:
            student.press("train", "book", **QUICK, epochs=1)
        wait_for(lambda: trainer.status("book")["status"].startswith("Training"), 240, what="the first run")
        assert all(s.status("book")["status"].startswith("Queued") for s in waiting)
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait()
        server.stop()
        shutil.move(tmp_path / "server.log", tmp_path / "server-killed.log")
        server = LiveServer(tmp_path, *options, port=server.port).wait_ready()
        shown = reconnect_at_once(students)
        assert all(table[0][1] == status_line.RESTARTED_TEXT for table in shown[1:]), [t[0][1] for t in shown]
        assert shown[0][0][1].startswith("Training on cpu"), shown[0]
        assert all(s.status("book")["status"] == status_line.RESTARTED_TEXT for s in waiting)
        assert trainer.status("book")["server"] == {"running": 1, "queued": 0, "slots": 1}
        trainer.press("stop", "book", **QUICK)
        wait_for(lambda: trainer.status("book")["status"].startswith("Stopped"), 120, what="the stop")
    finally:
        for student in students:
            student.close()
        server.stop()


def reconnect_at_once(students: list[Student]) -> list[list[list]]:
    """Each student's task pane connects again, all at the same moment, with a TRAIN_PROGRESS cell of each
    part of the table; the first value of each student's whole table."""
    ready = threading.Barrier(len(students))

    def reconnect(student: Student) -> None:
        student.connect()
        ready.wait()
        for part in PARTS:
            student.stream("TRAIN_PROGRESS", "book", part)

    threads = [threading.Thread(target=reconnect, args=(s,)) for s in students]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [s.wait_value("TRAIN_PROGRESS_book,all", lambda v: True, timeout=120) for s in students]


def test_the_run_book_is_made_once_when_many_requests_ask_for_it_at_once(monkeypatch):
    """The cause of the above, alone: threads that ask for the run book while it is being made wait for
    that one book."""
    made = []

    def make():
        made.append(threading.get_ident())
        time.sleep(0.3)  # a local book imports torch and reads the restart journal
        return object()

    monkeypatch.setattr(runs, "_made_run_book", functools.cache(make))
    got = []
    threads = [threading.Thread(target=lambda: got.append(runs.run_book())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(made) == 1 and len(got) == 8 and len({id(book) for book in got}) == 1


def test_a_run_killed_after_saving_an_epoch_shows_every_epoch_it_saved(tmp_path):
    """A training process writes an epoch's metrics.json and checkpoint, draws its charts, then writes
    progress.json: one killed in between (the classroom benchmark's kill -9 found it) left its owner's
    stream an epoch short of the run's own files."""
    run_dir = RunDir(tmp_path)
    events = run_events(str(tmp_path))[:-1]  # no RunEnded: the process was killed
    saved, shown = MetricsFileSink(run_dir), ProgressFileSink(run_dir, every=0.0)
    for event in events:
        saved.handle(event)
        if event is not events[-1]:  # epoch 2's EpochEnd: saved, then killed while drawing the charts
            shown.handle(event)
    view = files.from_files(run_dir, running=False)
    assert view.status.startswith(status_line.ENDED_EARLY_TEXT + ": Training on cpu: epoch 2 of 2")
    assert [row[0] for row in view.rows] == [1, 2] == [row["epoch"] for row in saved.rows]
    assert [row[0] for row in files.from_files(run_dir, running=True).rows] == [1]  # still going: as shown
