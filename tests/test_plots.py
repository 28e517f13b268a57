"""The training charts' framing (what a run's accuracy chart shows) and their drawing in the background."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from ml import plots
from ml.events import EpochEnd
from ml.plots import ZOOM_FLOOR, accuracy_limits
from ml.run_dir import METRIC_COLUMNS, RunDir
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


def _history(epochs: int) -> list[dict[str, float]]:
    return [dict(zip(METRIC_COLUMNS, _epoch_end(epoch).row(), strict=True)) for epoch in range(1, epochs + 1)]


def _pixels(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


@pytest.mark.slow
def test_curves_drawn_in_the_background_are_complete_when_the_run_ends(tmp_path):
    run_dir = RunDir(tmp_path / "run").prepare()
    sink = ChartSink(run_dir, background=True)
    for epoch in range(1, 21):
        sink.on_epoch(_epoch_end(epoch))  # faster than the child draws: it skips to the latest history
    sink.on_end(None)
    plots.plot_accuracy_curves(_history(20), tmp_path / "expected.png")
    assert np.array_equal(_pixels(run_dir.chart("accuracy_curves")), _pixels(tmp_path / "expected.png"))
    assert run_dir.chart("loss_curves").is_file()


@pytest.mark.slow
def test_background_curves_are_drawn_by_another_process(tmp_path, monkeypatch):
    def not_here(history, path):
        raise AssertionError("drawn in the training process")

    monkeypatch.setattr(plots, "plot_loss_curves", not_here)
    monkeypatch.setattr(plots, "plot_accuracy_curves", not_here)
    sink = ChartSink(RunDir(tmp_path).prepare(), background=True)
    sink.on_epoch(_epoch_end(1))
    sink.wait()
    assert sink.run_dir.chart("loss_curves").is_file() and sink.run_dir.chart("accuracy_curves").is_file()


@pytest.mark.slow
def test_the_chart_process_does_not_import_torch():
    code = "import sys, ml.chart_process, ml.plots; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_leaves_the_chart_process_drawing_to_the_end(tmp_path):
    run_dir = RunDir(tmp_path).prepare()
    sink = ChartSink(run_dir, background=True)
    sink.on_epoch(_epoch_end(1))
    t0 = time.monotonic()
    while not run_dir.chart("accuracy_curves").is_file() and time.monotonic() - t0 < 120:
        time.sleep(0.01)  # the child has drawn once: its Ctrl-C handler is in place
    os.kill(sink._process._process.pid, signal.SIGINT)  # what a terminal's Ctrl-C sends the whole group
    for epoch in range(2, 6):
        sink.on_epoch(_epoch_end(epoch))
    sink.wait()
    plots.plot_accuracy_curves(_history(5), tmp_path / "expected.png")
    assert np.array_equal(_pixels(run_dir.chart("accuracy_curves")), _pixels(tmp_path / "expected.png"))


@pytest.mark.slow
def test_a_background_drawing_error_reaches_the_caller(tmp_path):
    run_dir = RunDir(tmp_path).prepare()
    run_dir.chart("loss_curves").mkdir()  # a folder where the picture goes: it cannot be written
    sink = ChartSink(run_dir, background=True)
    sink.on_epoch(_epoch_end(1))
    sink.on_epoch(_epoch_end(2))  # the child may have ended already: no error here
    with pytest.raises(RuntimeError, match="chart process could not draw the curves: .*loss_curves"):
        sink.wait()
    sink.wait()  # reported once


@pytest.mark.slow
def test_curves_are_drawn_in_line_when_the_chart_process_cannot_start(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "executable", str(tmp_path / "no-python"))
    sink = ChartSink(RunDir(tmp_path).prepare(), background=True)
    sink.on_epoch(_epoch_end(1))
    sink.on_epoch(_epoch_end(2))
    sink.on_end(None)
    assert "chart process did not start" in capsys.readouterr().err
    plots.plot_accuracy_curves(_history(2), tmp_path / "expected.png")
    assert np.array_equal(_pixels(sink.run_dir.chart("accuracy_curves")), _pixels(tmp_path / "expected.png"))


def _bands(mask_1d: np.ndarray) -> list[int]:
    """The lengths of the runs of True in a 1-D mask."""
    edges = np.diff(np.concatenate([[0], mask_1d.astype(np.int8), [0]]))
    return list(np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1))


def _solid(mask: np.ndarray, reach: int = 3) -> np.ndarray:
    """The pixels of a mask whose whole (2 reach + 1)-square neighbourhood is in it (a digit's inside; the
    anti-aliased edges of text are thinner)."""
    height, width = mask.shape
    padded = np.pad(mask, reach)
    solid = np.ones_like(mask)
    for dy in range(2 * reach + 1):
        for dx in range(2 * reach + 1):
            solid &= padded[dy : dy + height, dx : dx + width]
    return solid


@pytest.mark.slow
def test_the_misclassified_grid_shows_every_digit_ten_to_a_row_and_at_most_forty(tmp_path):
    """23 digits (solid grey squares, told apart from the titles' text by their size): three rows of 10, 10
    and 3 square digits of one size; 45 digits: four rows of ten."""
    grey = 128  # 0-255 ink: drawn as a mid grey in gray_r
    for count, rows, last_row in ((23, 3, 3), (45, 4, 10)):
        images = np.full((count, 28, 28), grey, dtype=np.uint8)
        labels, predicted = np.arange(count) % 10, (np.arange(count) + 1) % 10
        path = plots.plot_misclassified(images, labels, predicted, np.full(count, 0.5), tmp_path / "m.png")
        pixels = _pixels(path).astype(int)
        digit = _solid(np.abs(pixels - (255 - grey)).max(axis=2) <= 2)  # inside a digit: that grey
        row_heights = _bands(digit.any(axis=1))
        assert len(row_heights) == rows and max(row_heights) - min(row_heights) <= 1, row_heights
        top = digit[: np.flatnonzero(digit.any(axis=1))[0] + 2]
        assert len(_bands(top.any(axis=0))) == 10
        bottom = digit[np.flatnonzero(digit.any(axis=1))[-1] - 2 :]
        widths = _bands(bottom.any(axis=0))
        assert len(widths) == last_row and max(widths) - min(widths) <= 1, widths
        assert abs(widths[0] - row_heights[0]) <= 1  # square digits
