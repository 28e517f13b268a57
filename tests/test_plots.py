"""The training charts' framing (what a run's accuracy chart shows) and their drawing in the background."""

from __future__ import annotations

import time

import pytest

from ml import plots
from ml.events import EpochEnd
from ml.plots import ZOOM_FLOOR, accuracy_limits
from ml.run_dir import RunDir
from ml.sinks import ChartSink


def test_a_weak_run_is_drawn_whole():
    # a one-epoch run on a few thousand images (12.6% test, 28.6% train) was drawn on an 80-100% frame: empty
    low, high = accuracy_limits([12.6], [28.63])
    assert low <= 12.6 and high == 100.0
    low, _ = accuracy_limits([40.0, 85.0, 88.0], [35.0, 80.0, 86.0])  # ends below 90%: every epoch in frame
    assert low <= 35.0


def test_a_run_that_ends_well_is_zoomed_on_its_last_epochs():
    test, train = [97.9, 99.1, 99.4, 99.6], [91.0, 98.2, 99.0, 99.4]
    assert accuracy_limits(test, train) == (90.5, 100.0)  # all of it, just below the lowest point
    test, train = [60.0, 99.1, 99.6], [45.0, 98.0, 99.4]  # a slow first epoch leaves the frame
    assert accuracy_limits(test, train) == (ZOOM_FLOOR, 100.0)


def _epoch_end(epoch: int) -> EpochEnd:
    return EpochEnd(epoch, 1.0 / epoch, 0.9, 0.5 / epoch, 0.95, 0.1, 0.01, 20, "model.pt")


def test_curves_drawn_in_the_background_are_complete_when_the_run_ends(tmp_path, monkeypatch):
    run_dir = RunDir(tmp_path).prepare()
    drawn = []
    monkeypatch.setattr(plots, "plot_accuracy_curves", lambda history, path: drawn.append(len(history)))
    sink = ChartSink(run_dir, background=True)
    for epoch in range(1, 21):
        sink.on_epoch(_epoch_end(epoch))  # faster than the worker draws: it skips to the latest history
    sink.on_end(None)
    assert drawn[-1] == 20 and drawn == sorted(drawn) and len(drawn) <= 20
    assert run_dir.chart("loss_curves").is_file()
    assert sink._worker is None


def test_background_curves_are_redrawn_at_most_every_so_often_and_at_the_end(tmp_path, monkeypatch):
    drawn = []
    monkeypatch.setattr(plots, "plot_loss_curves", lambda history, path: None)
    monkeypatch.setattr(plots, "plot_accuracy_curves", lambda history, path: drawn.append(len(history)))
    sink = ChartSink(RunDir(tmp_path).prepare(), background=True, every_s=600)
    t0 = time.monotonic()
    sink.on_epoch(_epoch_end(1))
    while not drawn and time.monotonic() - t0 < 60:  # the first epoch's curves are drawn at once
        time.sleep(0.01)
    for epoch in range(2, 11):
        sink.on_epoch(_epoch_end(epoch))
    sink.wait()  # the end does not wait out the interval
    assert time.monotonic() - t0 < 300
    assert drawn == [1, 10]  # epochs 2-9 ended within the interval: only the last epoch's curves follow


def test_a_background_drawing_error_reaches_the_caller(tmp_path, monkeypatch):
    def broken(history, path):
        raise OSError("disk full")

    monkeypatch.setattr(plots, "plot_loss_curves", broken)
    sink = ChartSink(RunDir(tmp_path).prepare(), background=True)
    sink.on_epoch(_epoch_end(1))
    with pytest.raises(OSError, match="disk full"):
        sink.wait()
    sink.wait()  # reported once
