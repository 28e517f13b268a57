"""Training progress as events, delivered to pluggable sinks.

The training loop never knows where its progress is shown: it emits events and every sink decides what to
do with them (a console progress bar, metrics files, an Excel sheet). A sink that raises does not stop
training: the loop reports the failure once and keeps going, so a closed workbook cannot lose a run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# The per-epoch metric columns, in the order written to metrics.csv and to the Train sheet.
METRIC_COLUMNS = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds")


@dataclass(frozen=True)
class RunStarted:
    """Training is about to begin: what runs, where, and for how long."""

    config: dict[str, Any]  # the TrainConfig as a plain dict (JSON-safe)
    device: str  # e.g. "cpu", "cuda", "cuda:0", "mps"
    n_params: int
    summary: list[tuple[str, str, int]]  # model summary rows: (layer, output shape, params)
    epochs: int  # total epochs of this run (including any already done when resuming)
    start_epoch: int  # first epoch this run trains (1-based; > 1 when resuming)
    steps_per_epoch: int
    out_dir: str


@dataclass(frozen=True)
class BatchEnd:
    """One optimisation step finished (emitted every step; sinks throttle as they like)."""

    epoch: int
    step: int  # 1-based within the epoch
    steps: int
    loss: float  # running mean loss over the epoch so far
    acc: float  # running train accuracy over the epoch so far, 0..1
    lr: float
    elapsed: float  # seconds since the epoch started


@dataclass(frozen=True)
class EpochEnd:
    """An epoch finished, was evaluated on the test set and checkpointed."""

    epoch: int
    train_loss: float
    train_acc: float  # 0..1
    test_loss: float
    test_acc: float  # 0..1
    lr: float  # learning rate at the end of the epoch
    seconds: float  # wall time of the epoch (training + evaluation)
    epochs: int  # total epochs of the run, for "epoch k of n" and ETAs
    checkpoint: str  # path of the checkpoint just written

    def row(self) -> list[float]:
        """The values in METRIC_COLUMNS order."""
        return [getattr(self, name) for name in METRIC_COLUMNS]


@dataclass(frozen=True)
class RunEnded:
    """Training ended: completed, stopped on request, or failed; files are complete either way."""

    status: str  # "completed" | "stopped" | "failed"
    epochs_done: int
    best_test_acc: float | None
    final_test_acc: float | None
    out_dir: str
    artifacts: dict[str, str] = field(default_factory=dict)  # chart name -> PNG path (see CHART_NAMES)
    error: str | None = None  # the message when status == "failed"


# Names of the PNG charts written at the end of a run (and after each epoch for the curves).
CHART_NAMES = ("loss_curves", "accuracy_curves", "confusion_matrix", "misclassified")

Event = RunStarted | BatchEnd | EpochEnd | RunEnded


def event_to_dict(event: Event) -> dict[str, Any]:
    """A JSON-safe dict of an event, tagged with its type name."""
    return {"type": type(event).__name__, **asdict(event)}


class Sink:
    """Receives training events. Subclasses override the hooks they care about; the rest do nothing."""

    def on_start(self, event: RunStarted) -> None:
        pass

    def on_batch(self, event: BatchEnd) -> None:
        pass

    def on_epoch(self, event: EpochEnd) -> None:
        pass

    def on_end(self, event: RunEnded) -> None:
        pass

    def handle(self, event: Event) -> None:
        """Dispatch an event to its hook."""
        if isinstance(event, RunStarted):
            self.on_start(event)
        elif isinstance(event, BatchEnd):
            self.on_batch(event)
        elif isinstance(event, EpochEnd):
            self.on_epoch(event)
        elif isinstance(event, RunEnded):
            self.on_end(event)
