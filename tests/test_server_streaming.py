"""TRAIN_PROGRESS live, as Excel gets it: the server runs as ``python -m excel_addin.server`` (uvicorn) in a
subprocess, a python-socketio client subscribes to the stream the way the task pane's custom-functions
code does, and the Train button starts a real (tiny) training. Updates arrive as the run goes, ending with
a "Completed" status and its metric rows; a second workbook's Train waits in the queue (its stream shows
the position) and starts only when the first run is done."""

from __future__ import annotations

import pytest
from server_app import QUICK, press

from excel_addin.sheets.layout import TRAIN_METRIC_COLUMNS
from excel_addin.testing.progress_stream import ProgressStream

socketio = pytest.importorskip("socketio")
pytest.importorskip("websocket")  # python-socketio[client]: its websocket transport


@pytest.fixture(scope="module")
def server(live_server):
    """The test run's default server (conftest.py: ``--http --max-trainings 1``)."""
    return live_server


@pytest.mark.slow
def test_train_progress_streams_a_real_run_and_a_second_train_waits(server):
    alice, bob = ProgressStream(server.url, "alice"), ProgressStream(server.url, "bob")
    try:
        alice.wait_for(lambda v: v[0][1] == "No training yet: press Train.", timeout=30)
        press(server.url, "train", "alice", **QUICK, epochs=3)
        press(server.url, "train", "bob", **QUICK, epochs=1)
        _, queued = bob.wait_for(lambda v: v[0][1].startswith("Queued: position 1 of 1"), timeout=30)
        assert queued[2][:2] == ["queue", 1]

        done_at, done = alice.wait_for(lambda v: v[0][1].startswith("Completed: 3 epochs"))
        training = [s for s in alice.statuses() if s.startswith("Training on cpu")]
        assert len(training) >= 2, alice.statuses()  # live updates while it ran
        assert any(" of 3 done, test accuracy" in s for s in training)
        assert [row[0] for row in done[:3]] == ["status", "progress", "queue"] and done[1][1] == 1.0
        assert done[3] == list(TRAIN_METRIC_COLUMNS)
        assert [row[0] for row in done[4:]] == [1, 2, 3] and all(isinstance(row[0], int) for row in done[4:])
        assert all(0 < row[TRAIN_METRIC_COLUMNS.index("test_acc")] <= 1 for row in done[4:])
        assert all(
            len(row) == len(TRAIN_METRIC_COLUMNS) for row in done
        )  # a rectangle: charts can bind to it

        started_at, _ = bob.wait_for(lambda v: v[0][1].startswith(("Starting", "Training on cpu")))
        assert started_at >= done_at - 1.0  # bob waited for alice's run (allowing for the poll interval)
        bob.wait_for(lambda v: v[0][1].startswith("Completed: 1 epoch"))
    finally:
        alice.close()
        bob.close()


def test_a_bad_workbook_id_streams_a_message(server):
    stream = ProgressStream(server.url, "not an id!")
    try:
        _, value = stream.wait_for(lambda v: True, timeout=30)
        assert value[0][0].startswith("#VALUE! the workbook id GRADSHEET_ID must be 1 to 64 letters")
    finally:
        stream.close()
