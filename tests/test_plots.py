"""The training charts' framing: what a run's accuracy chart shows."""

from __future__ import annotations

from ml.plots import ZOOM_FLOOR, accuracy_limits


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
