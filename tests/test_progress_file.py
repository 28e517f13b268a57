"""progress.json (ml.sinks.ProgressFileSink) and the status line read back from it in another process:
at every point of a run, the line replayed from the file is the line the Train sheet's status cell shows."""

from __future__ import annotations

import json

import pytest

from excel_addin.status_line import StatusLine, replay
from ml.events import BatchEnd, EpochEnd, RunEnded, RunStarted, event_from_dict, event_to_dict
from ml.run_dir import RunDir
from ml.sinks import ProgressFileSink


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def run_events(out_dir: str) -> list:
    """A two-epoch run of 4 steps per epoch, as ml.train emits it."""
    events = [
        RunStarted(
            {"model": "small"}, "cpu", 7850, [("Conv2d-1", "[-1, 8, 28, 28]", 80, 28, 1, 3)], 2, 1, 4, out_dir
        )
    ]
    for epoch in (1, 2):
        for step in range(1, 5):
            events.append(BatchEnd(epoch, step, 4, 1.0 / step, 0.2 * step, 0.1, 0.5 * step))
        events.append(EpochEnd(epoch, 0.5, 0.8, 0.4, 0.85 + epoch / 100, 0.1, 2.5, 2, f"{out_dir}/model.pt"))
    events.append(RunEnded("completed", 2, 0.87, 0.87, out_dir))
    return events


def test_the_file_replays_to_the_sheets_status_line_after_every_event(tmp_path):
    run_dir = RunDir(tmp_path)
    clock = Clock()
    sink = ProgressFileSink(run_dir, every=0.0, clock=clock)
    shown = StatusLine()  # what the Train sheet shows (SheetSink feeds its own StatusLine the same way)
    for event in run_events(str(tmp_path)):
        sink.handle(event)
        shown.handle(event)
        assert replay(run_dir.read_progress()).line == shown.line
    assert shown.line[0].startswith("Completed: 2 epochs, test accuracy 87.00%")
    record = run_dir.read_progress()
    assert [e["epoch"] for e in record["epochs"]] == [1, 2] and record["batch"] is None
    assert event_from_dict(record["ended"]) == run_events(str(tmp_path))[-1]


def test_steps_are_written_at_most_once_per_interval(tmp_path):
    run_dir = RunDir(tmp_path)
    clock = Clock()
    sink = ProgressFileSink(run_dir, every=0.5, clock=clock)
    start, *steps = run_events(str(tmp_path))[:5]
    sink.handle(start)
    for step in steps:  # all within the same instant: none is written
        sink.handle(step)
    assert run_dir.read_progress()["batch"] is None
    clock.now = 0.6
    sink.handle(steps[-1])
    assert run_dir.read_progress()["batch"] == event_to_dict(steps[-1])
    assert json.loads(run_dir.progress.read_text())["updated"] > 0


def test_unreadable_records():
    with pytest.raises(ValueError, match="not a recorded training event"):
        event_from_dict({"type": "Evaluated"})
    with pytest.raises(ValueError, match="unexpected fields"):
        event_from_dict({"type": "RunEnded", "status": "completed"})
    assert RunDir("/nonexistent/run").read_progress() is None
