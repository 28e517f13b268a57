"""Sinks for training events: a console progress bar and the metrics files.

``ConsoleSink`` shows a tqdm bar per epoch (loss, accuracy, learning rate) and one summary line per
epoch; ``MetricsFileSink`` rewrites ``metrics.csv`` and ``metrics.json`` after every epoch so a run
stopped at any point leaves complete files. ``dispatch`` delivers an event to sinks, reporting a failing
sink once and carrying on (a sink that fails once, e.g. Excel busy, keeps receiving later events).
"""

from __future__ import annotations

import csv
import json
import os
import sys
import traceback
from pathlib import Path
from typing import TextIO

from .events import (
    METRIC_COLUMNS,
    BatchEnd,
    EpochEnd,
    Event,
    RunEnded,
    RunStarted,
    Sink,
    event_to_dict,
)


def dispatch(sinks: list[Sink], event: Event, failed: set[int], stream: TextIO | None = None) -> None:
    """Send ``event`` to every sink; a sink's first exception is reported to ``stream``, then ignored."""
    for sink in sinks:
        try:
            sink.handle(event)
        except Exception:  # noqa: BLE001 - a sink must never stop training
            if id(sink) not in failed:
                failed.add(id(sink))
                print(
                    f"warning: training sink {type(sink).__name__} raised; training goes on "
                    "(its further errors are not reported):\n" + traceback.format_exc(),
                    file=stream or sys.stderr,
                )


class ConsoleSink(Sink):
    """tqdm progress bar per epoch plus a line per finished epoch."""

    def __init__(self, stream: TextIO | None = None, every: int = 1):
        self.stream = stream or sys.stderr
        self.every = max(1, every)
        self._bar = None

    def on_start(self, event: RunStarted) -> None:
        print(
            f"Training {event.config.get('model')} CNN ({event.n_params:,} parameters) on {event.device}, "
            f"epochs {event.start_epoch}..{event.epochs}, {event.steps_per_epoch} steps/epoch "
            f"-> {event.out_dir}",
            file=self.stream,
        )

    def on_batch(self, event: BatchEnd) -> None:
        from tqdm.auto import tqdm

        if self._bar is None:
            self._bar = tqdm(
                total=event.steps,
                desc=f"epoch {event.epoch}",
                file=self.stream,
                leave=False,
                dynamic_ncols=True,
            )
        if event.step % self.every == 0 or event.step == event.steps:
            self._bar.n = event.step
            self._bar.set_postfix(loss=f"{event.loss:.4f}", acc=f"{event.acc:.4f}", lr=f"{event.lr:.4g}")

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def on_epoch(self, event: EpochEnd) -> None:
        self._close_bar()
        print(
            f"epoch {event.epoch:>2}/{event.epochs}  "
            f"train loss {event.train_loss:.4f} acc {event.train_acc:.4%}  "
            f"test loss {event.test_loss:.4f} acc {event.test_acc:.4%}  "
            f"lr {event.lr:.4g}  {event.seconds:.1f}s",
            file=self.stream,
        )

    def on_end(self, event: RunEnded) -> None:
        self._close_bar()
        final = f"{event.final_test_acc:.4%}" if event.final_test_acc is not None else "n/a"
        msg = f"Run {event.status} after {event.epochs_done} epoch(s); final test accuracy {final}"
        if event.error:
            msg += f"; error: {event.error}"
        print(msg + f"\nOutputs in {event.out_dir}", file=self.stream)


def read_metrics(out_dir: str | os.PathLike) -> list[dict[str, float]]:
    """The per-epoch rows of ``out_dir/metrics.json`` ([] when absent or unreadable)."""
    path = Path(out_dir) / "metrics.json"
    try:
        rows = json.loads(path.read_text(encoding="utf-8")).get("epochs", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [r for r in rows if isinstance(r, dict) and all(c in r for c in METRIC_COLUMNS)]


class MetricsFileSink(Sink):
    """Writes DIR/metrics.csv and DIR/metrics.json (METRIC_COLUMNS; accuracies as fractions) every epoch.

    When a run resumes at epoch k, rows of epochs before k are kept from the existing files.
    """

    def __init__(self, out_dir: str | os.PathLike):
        self.out_dir = Path(out_dir)
        self.rows: list[dict[str, float]] = []
        self.run: dict = {}

    @property
    def csv_path(self) -> Path:
        return self.out_dir / "metrics.csv"

    @property
    def json_path(self) -> Path:
        return self.out_dir / "metrics.json"

    def on_start(self, event: RunStarted) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.rows = [r for r in read_metrics(self.out_dir) if r["epoch"] < event.start_epoch]
        self.run = {
            "config": event.config,
            "device": event.device,
            "n_params": event.n_params,
            "epochs": event.epochs,
            "status": "running",
        }
        self._write()

    def on_epoch(self, event: EpochEnd) -> None:
        self.rows = [r for r in self.rows if r["epoch"] < event.epoch]
        self.rows.append(dict(zip(METRIC_COLUMNS, event.row(), strict=True)))
        self._write()

    def on_end(self, event: RunEnded) -> None:
        self.run["status"] = event.status
        self.run["end"] = event_to_dict(event)
        self._write()

    def _write(self) -> None:
        tmp_csv = self.csv_path.with_suffix(".csv.tmp")
        with tmp_csv.open("w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f)
            writer.writerow(METRIC_COLUMNS)
            for row in self.rows:
                writer.writerow([row[c] for c in METRIC_COLUMNS])
        os.replace(tmp_csv, self.csv_path)
        tmp_json = self.json_path.with_suffix(".json.tmp")
        tmp_json.write_text(json.dumps({"run": self.run, "epochs": self.rows}, indent=2), encoding="utf-8")
        os.replace(tmp_json, self.json_path)
