"""Training progress as events, delivered to pluggable sinks.

The training loop never knows where its progress is shown: it emits events and every sink decides what to
do with them (a console progress bar, metrics files, an Excel sheet). A sink that raises does not stop
training: the loop reports the failure once and keeps going, so a closed workbook cannot lose a run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .run_dir import CHART_NAMES, METRIC_COLUMNS

__all__ = [
    "CHART_NAMES",
    "METRIC_COLUMNS",
    "BatchEnd",
    "EpochEnd",
    "Evaluated",
    "RunEnded",
    "RunStarted",
    "Sink",
    "event_from_dict",
    "event_to_dict",
]


@dataclass(frozen=True)
class RunStarted:
    """Training is about to begin: what runs, where, and for how long."""

    config: dict[str, Any]  # the TrainConfig as a plain dict (JSON-safe)
    device: str  # e.g. "cpu", "cuda", "cuda:0", "mps"
    n_params: int
    summary: list[tuple]  # ml.summary_table.LayerRow: layer, output shape, params, size, jump, RF
    epochs: int  # total epochs of this run (including any already done when resuming)
    start_epoch: int  # first epoch this run trains (1-based; > 1 when resuming)
    steps_per_epoch: int
    out_dir: str
    history: list[dict[str, float]] = field(default_factory=list)  # rows of the epochs already done


@dataclass(frozen=True)
class BatchEnd:
    """One optimisation step finished (emitted every step; sinks throttle as they like)."""

    epoch: int
    step: int  # 1-based within the epoch
    steps: int
    loss: float  # running mean loss over the epoch so far
    acc: float  # running train accuracy over the epoch so far, 0..1
    lr: float
    elapsed: float  # seconds since the epoch started, to the moment the device finished these steps


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


@dataclass(frozen=True, eq=False)
class Evaluated:
    """The final evaluation's per-image results on the test set (for charts; not written to JSON)."""

    labels: np.ndarray  # true digit per test image
    predictions: np.ndarray  # predicted digit
    confidence: np.ndarray  # probability of the predicted digit
    images: np.ndarray  # the test images, uint8 (N, 28, 28)


@dataclass(frozen=True)
class RunEnded:
    """Training ended: completed, stopped on request, or failed; files are complete either way."""

    status: str  # "completed" | "stopped" | "failed"
    epochs_done: int
    best_test_acc: float | None
    final_test_acc: float | None
    out_dir: str
    error: str | None = None  # the message when status == "failed"


Event = RunStarted | BatchEnd | EpochEnd | Evaluated | RunEnded


def event_to_dict(event: Event) -> dict[str, Any]:
    """A JSON-safe dict of an event, tagged with its type name."""
    return {"type": type(event).__name__, **asdict(event)}


_RECORDED = {cls.__name__: cls for cls in (RunStarted, BatchEnd, EpochEnd, RunEnded)}


def event_from_dict(data: dict[str, Any]) -> RunStarted | BatchEnd | EpochEnd | RunEnded:
    """The event that ``event_to_dict`` wrote (not ``Evaluated``, whose arrays are not JSON); ValueError
    for anything else."""
    fields = dict(data)
    cls = _RECORDED.get(fields.pop("type", None))
    if cls is None:
        raise ValueError(f"not a recorded training event: {data.get('type')!r}")
    try:
        return cls(**fields)
    except TypeError as error:
        raise ValueError(f"a {cls.__name__} with unexpected fields: {error}") from None


class Sink:
    """Receives training events. Subclasses override the hooks they care about; the rest do nothing."""

    def on_start(self, event: RunStarted) -> None:
        pass

    def on_batch(self, event: BatchEnd) -> None:
        pass

    def on_epoch(self, event: EpochEnd) -> None:
        pass

    def on_evaluated(self, event: Evaluated) -> None:
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
        elif isinstance(event, Evaluated):
            self.on_evaluated(event)
        elif isinstance(event, RunEnded):
            self.on_end(event)
