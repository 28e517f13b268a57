"""A training sink for the benchmarks: each epoch's training-only seconds and its row, and a stop after N
steps (``should_stop``), so a benchmark can time part of an epoch through ``ml.training.train`` itself."""

from __future__ import annotations

from ml.events import BatchEnd, EpochEnd, Sink


class EpochTimer(Sink):
    """Collects per-epoch training-only seconds (elapsed at an epoch's last step) and epoch rows."""

    def __init__(self, stop_after: int | None = None):
        self.stop_after = stop_after
        self.last: BatchEnd | None = None
        self.train_seconds: list[float] = []
        self.epochs: list[dict] = []

    def on_batch(self, event: BatchEnd) -> None:
        self.last = event
        if event.step == event.steps:
            self.train_seconds.append(event.elapsed)

    def on_epoch(self, event: EpochEnd) -> None:
        self.epochs.append({"epoch": event.epoch, "test_acc": event.test_acc, "seconds": event.seconds})

    def should_stop(self) -> bool:
        return self.stop_after is not None and self.last is not None and self.last.step >= self.stop_after
