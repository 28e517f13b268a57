"""Sinks for training events: a console progress bar, the metrics files and the charts.

``ConsoleSink`` shows a tqdm bar per epoch (loss, accuracy, learning rate) and one summary line per
epoch; ``MetricsFileSink`` rewrites ``metrics.csv`` and ``metrics.json`` after every epoch so a run
stopped at any point leaves complete files; ``ChartSink`` draws the PNG charts; ``ProgressFileSink`` keeps
``progress.json`` up to date for another process that shows the run live. ``dispatch`` delivers an
event to sinks, reporting a failing sink once and carrying on (a sink that fails once, e.g. Excel busy,
keeps receiving later events).
"""

from __future__ import annotations

import csv
import io
import json
import math
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import numpy as np

from . import chart_process, plots
from .events import BatchEnd, EpochEnd, Evaluated, Event, RunEnded, RunStarted, Sink, event_to_dict
from .run_dir import CHART_NAMES, CURVE_CHARTS, METRIC_COLUMNS, RunDir, atomic_write_text
from .summary_table import format_rows


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
        self._dry_run = False

    def on_start(self, event: RunStarted) -> None:
        self._dry_run = bool(event.config.get("dry_run"))
        print(format_rows(event.summary, event.n_params), file=self.stream)
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
        test = (
            f"test loss {event.test_loss:.4f} acc {event.test_acc:.4%}"
            if math.isfinite(event.test_acc)
            else "test: not evaluated after this epoch"
        )
        print(
            f"epoch {event.epoch:>2}/{event.epochs}  "
            f"train loss {event.train_loss:.4f} acc {event.train_acc:.4%}  {test}  "
            f"lr {event.lr:.4g}  {event.seconds:.1f}s",
            file=self.stream,
        )

    def on_end(self, event: RunEnded) -> None:
        self._close_bar()
        if self._dry_run and event.status == "completed":
            print(
                f"Dry run completed: data, model, training steps, evaluation and the run's files in "
                f"{event.out_dir} all work (its accuracy after a few batches means nothing)\n"
                "Set-up OK: train for real without --dry-run",
                file=self.stream,
            )
            return
        final = f"{event.final_test_acc:.4%}" if event.final_test_acc is not None else "n/a"
        msg = f"Run {event.status} after {event.epochs_done} epoch(s); final test accuracy {final}"
        if event.error:
            msg += f"; error: {event.error}"
        print(msg + f"\nOutputs in {event.out_dir}", file=self.stream)


class MetricsFileSink(Sink):
    """Writes the run folder's metrics.csv and metrics.json (METRIC_COLUMNS; accuracies as fractions)
    when a run starts, after every epoch and when it ends, so a run stopped at any point leaves complete
    files. A resumed run starts from the checkpoint's history: rows the files missed (a process killed
    between saving the checkpoint and the metrics) come back."""

    def __init__(self, run_dir: RunDir):
        self.run_dir = run_dir
        self.rows: list[dict[str, float]] = []
        self.run: dict = {}

    def on_start(self, event: RunStarted) -> None:
        self.rows = [dict(r) for r in event.history if r["epoch"] < event.start_epoch]
        self.run = {
            "config": event.config,
            "device": event.device,
            "n_params": event.n_params,
            "epochs": event.epochs,
            "status": "running",
            "started_at": time.time(),  # when training began (after set-up): for time-to-accuracy figures
            "epoch_ended_at": {},  # epoch -> when its row (and checkpoint) was written, the same clock
        }
        self._write()

    def on_epoch(self, event: EpochEnd) -> None:
        self.rows = [r for r in self.rows if r["epoch"] < event.epoch]
        self.rows.append(dict(zip(METRIC_COLUMNS, event.row(), strict=True)))
        self.run["epoch_ended_at"][str(event.epoch)] = time.time()
        self._write()

    def on_end(self, event: RunEnded) -> None:
        self.run["status"] = event.status
        self.run["end"] = event_to_dict(event)
        self._write()

    def _write(self) -> None:
        text = io.StringIO(newline="")
        writer = csv.writer(text)
        writer.writerow(METRIC_COLUMNS)
        writer.writerows([_csv_value(row[c]) for c in METRIC_COLUMNS] for row in self.rows)
        atomic_write_text(self.run_dir.metrics_csv, text.getvalue())
        record = {"run": self.run, "epochs": [_finite_or_none(row) for row in self.rows]}
        atomic_write_text(self.run_dir.metrics_json, json.dumps(record, indent=2, allow_nan=False))


def _csv_value(value: float) -> float | str:
    """A metrics value as metrics.csv holds it: a missing one (not evaluated) is an empty field."""
    return value if math.isfinite(value) else ""


def _finite_or_none(row: dict[str, float]) -> dict[str, float | None]:
    """JSON has no NaN: a non-finite value is written as null (and read back as a missing value)."""
    return {k: (v if math.isfinite(v) else None) for k, v in row.items()}


class ChartSink(Sink):
    """Draws the run's PNG charts into its folder: the loss and accuracy curves after every epoch, the
    confusion matrix and the misclassified test digits from the final evaluation.

    When a run starts, charts of an earlier run in the folder are removed (a resumed run's curves are
    redrawn from its history), so the folder never shows charts of another run.

    With ``background`` the curves are drawn by a child process (``ml.chart_process``), the latest history
    whenever it is free, so that training never waits for matplotlib: on a GPU an epoch can take less time
    than drawing its charts, and drawing in a thread would hold Python's interpreter lock that the training
    loop needs. The final charts and the end of the run wait for the curves of the last epoch. A CPU run
    draws after every epoch, in line: there another process would take a core from the training.
    """

    def __init__(self, run_dir: RunDir, background: bool = False):
        self.run_dir = run_dir
        self.history: list[dict[str, float]] = []
        self._process = chart_process.CurveProcess() if background else None

    def on_start(self, event: RunStarted) -> None:
        self.history = [dict(r) for r in event.history if r["epoch"] < event.start_epoch]
        for name in CHART_NAMES:
            self.run_dir.chart(name).unlink(missing_ok=True)
        if self.history:
            self._draw_curves()

    def on_epoch(self, event: EpochEnd) -> None:
        self.history = [r for r in self.history if r["epoch"] < event.epoch]
        self.history.append(dict(zip(METRIC_COLUMNS, event.row(), strict=True)))
        if self._process is not None:
            try:
                self._process.draw(self.history, *self._curve_paths())
                return
            except OSError as error:  # no interpreter to start (an embedded Python): draw here from now on
                print(f"warning: the chart process did not start ({error}); drawing in line", file=sys.stderr)
                self._process = None
        self._draw_curves()

    def wait(self) -> None:
        """Until the curves of every epoch so far are drawn; raises what the child process failed at, once."""
        if self._process is not None:
            self._process.finish()

    def _curve_paths(self) -> tuple[Path, Path]:
        loss, accuracy = CURVE_CHARTS
        return self.run_dir.chart(loss), self.run_dir.chart(accuracy)

    def _draw_curves(self) -> None:
        loss_png, accuracy_png = self._curve_paths()
        plots.plot_loss_curves(self.history, loss_png)
        plots.plot_accuracy_curves(self.history, accuracy_png)

    def on_end(self, event: RunEnded) -> None:
        self.wait()

    def on_evaluated(self, event: Evaluated) -> None:
        self.wait()
        matrix = plots.confusion_matrix(event.labels, event.predictions)
        plots.plot_confusion_matrix(matrix, self.run_dir.chart("confusion_matrix"))
        wrong = np.flatnonzero(event.predictions != event.labels)
        plots.plot_misclassified(
            event.images[wrong],
            event.labels[wrong],
            event.predictions[wrong],
            event.confidence[wrong],
            self.run_dir.chart("misclassified"),
        )


class ProgressFileSink(Sink):
    """Keeps the run folder's progress.json up to date, for another process that shows the run live
    (the add-in server's TRAIN_PROGRESS, a monitoring script).

    The file holds the events needed to say where a run stands, as ``event_to_dict`` writes them: the
    start, every finished epoch, the latest step since then, and the end:
    ``{"started": {...}, "epochs": [{...}, ...], "batch": {...} | null, "ended": {...} | null,
    "updated": <time.time()>}`` (a loss that turned NaN is written as Python's json writes it, ``NaN``).
    It is rewritten atomically at the start, after every epoch, at the end, and after a step at most once
    per ``every`` seconds.
    """

    def __init__(self, run_dir: RunDir, every: float = 0.5, clock: Callable[[], float] = time.monotonic):
        self.run_dir = run_dir
        self.every = every
        self.clock = clock
        self.record: dict = {"started": None, "epochs": [], "batch": None, "ended": None}
        self._last_write = -math.inf

    def on_start(self, event: RunStarted) -> None:
        self.record = {"started": event_to_dict(event), "epochs": [], "batch": None, "ended": None}
        self._write()

    def on_batch(self, event: BatchEnd) -> None:
        self.record["batch"] = event_to_dict(event)
        if self.clock() - self._last_write >= self.every:
            self._write()

    def on_epoch(self, event: EpochEnd) -> None:
        self.record["epochs"].append(event_to_dict(event))
        self.record["batch"] = None
        self._write()

    def on_end(self, event: RunEnded) -> None:
        self.record["ended"] = event_to_dict(event)
        self._write()

    def _write(self) -> None:
        self._last_write = self.clock()
        record = {**self.record, "updated": time.time()}
        atomic_write_text(self.run_dir.progress, json.dumps(record))
