"""Where a workbook's training stands on this server: what TRAIN_PROGRESS streams and the task pane shows.

A run is read from two places: the queue (a job that waits, its position) and the run folder's
progress.json, the events the worker writes: replayed into the same status line the Train sheet shows
(``excel_addin.status_line``), and one metric row per finished epoch. Only that file is read, so a run
started before a server restart still shows.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from excel_addin import macros
from excel_addin.server import training, workbook
from excel_addin.server.options import options
from excel_addin.sheets import layout
from excel_addin.sheets.train_sheet import metric_cells, summary_table
from excel_addin.status_line import replay
from ml import run_lock
from ml.run_dir import PROGRESS_JSON, RunDir

NO_RUN_TEXT = "No training yet: press Train."
ENDED_EARLY_TEXT = "Interrupted: the training process ended unexpectedly"
LABELS = ("status", "progress", "queue")  # the first column of the rows above the metrics table
# TRAIN_PROGRESS(workbook, part): the whole table, or one part of it (what the Train sheet of a set-up
# workbook shows in its status, progress and device cells and its metrics table)
PARTS = ("all", "status", "progress", "queue", "device", "metrics", "summary")


@dataclass(frozen=True)
class Progress:
    """A run's status line, fraction done (None: unknown), queue position (None: not waiting), device
    and its metric rows (as the Train sheet orders them: layout.TRAIN_METRIC_COLUMNS)."""

    status: str
    progress: float | None = None
    queue: int | None = None
    rows: tuple[tuple[float, ...], ...] = ()
    device: str = ""
    layers: tuple[tuple, ...] = ()  # the run's model summary rows (ml.summary_table.LayerRow)
    n_params: int | None = None

    def table(self) -> list[list[Any]]:
        """The spill of TRAIN_PROGRESS: a status, a progress and a queue row, then the metrics table
        (header and one row per epoch; native charts can be bound to its columns)."""
        width = len(layout.TRAIN_METRIC_COLUMNS)
        values = (self.status, self.progress, self.queue)
        top = [
            [label, "" if value is None else value] + [""] * (width - 2)
            for label, value in zip(LABELS, values, strict=True)
        ]
        return [*top, *self.metrics()]

    def metrics(self) -> list[list[Any]]:
        """The metrics table alone: its header and one row per epoch."""
        return [list(layout.TRAIN_METRIC_COLUMNS), *(list(row) for row in self.rows)]

    def part(self, name: str) -> list[list[Any]]:
        """What TRAIN_PROGRESS(workbook, part) shows: one of PARTS (a single value, or a table)."""
        single = {"status": self.status, "progress": self.progress, "queue": self.queue}
        single["device"] = self.device
        if name in single:
            value = single[name]
            return [["" if value is None else value]]
        if name == "summary":
            return summary_table(self.layers, self.n_params, empty="")
        return self.metrics() if name == "metrics" else self.table()

    def summary(self) -> dict[str, Any]:
        """The task pane's short status."""
        return {
            "status": self.status,
            "progress": self.progress,
            "queue": self.queue,
            "epochs": len(self.rows),
        }


@dataclass(frozen=True)
class Notice:
    """What a button said to a workbook (a refusal, a stop request), shown until something newer."""

    text: str
    progress: float | None
    time: float


_notices: dict[str, Notice] = {}
_notices_lock = threading.Lock()


def say_to(wid: str) -> Callable[..., None]:
    """How the buttons speak to a workbook of this server: the Train sheet's status cell holds a live
    TRAIN_PROGRESS formula, so a message is kept here and the stream (and the task pane) shows it until
    the workbook's run moves on (a new job, or its progress file changes)."""

    def say(text: str, progress: float | None = None) -> None:
        with _notices_lock:
            _notices[wid] = Notice(text, progress, time.time())

    return say


def _with_notice(state: Progress, wid: str | None, since: float) -> Progress:
    """``state``, or the workbook's notice if it is newer than ``since`` (what the state reflects)."""
    with _notices_lock:
        notice = _notices.get(wid) if wid is not None else None
    if notice is None or notice.time < since:
        return state
    progress = state.progress if notice.progress is None else notice.progress
    return replace(state, status=notice.text, progress=progress)


def progress_of(wid: str | None) -> Progress:
    """Where the workbook's current or last run stands (``wid`` None: the server's latest run), or what a
    button said to it since."""
    queue = training.queue()
    job = queue.latest(wid)
    run_dir = job.run_dir if job is not None else latest_run(wid)
    since = max(job.created if job is not None else 0.0, _mtime(run_dir.progress) if run_dir else 0.0)
    return _with_notice(_progress(queue, job, run_dir), wid, since)


def _mtime(path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _progress(queue: training.TrainingQueue, job: training.Job | None, run_dir: RunDir | None) -> Progress:
    """Where the run stands by the queue and the run's files (``run_dir``: the job's, else the latest)."""
    if job is not None and job.state == "queued":
        position = queue.position(job)
        if position is not None:
            return Progress(training.waiting_text(position, queue), 0.0, position)
    if job is not None and job.state == "cancelled":
        return Progress(training.CANCELLED_TEXT)
    if job is not None and job.state == "failed":
        return Progress(job.error or "Not started")
    if run_dir is None:
        return Progress(NO_RUN_TEXT)
    return _from_files(run_dir, job)


def latest_run(wid: str | None) -> RunDir | None:
    """The run folder with the newest progress.json in the workbook's folder (None: in the whole server)."""
    root = options().runs if wid is None else workbook.folder(wid)
    found = [(path.stat().st_mtime_ns, path.parent) for path in root.rglob(PROGRESS_JSON) if path.is_file()]
    return RunDir(max(found)[1]) if found else None


def metric_rows(record: dict[str, Any]) -> tuple[tuple[float, ...], ...]:
    """The run's metric rows from its progress record (the same file as its status, so the two always
    agree): the epochs a resumed run had done before, then each epoch this run finished."""
    started = record.get("started") or {}
    earlier = [row for row in started.get("history", []) if row["epoch"] < started.get("start_epoch", 1)]
    return tuple(tuple(metric_cells(row)) for row in [*earlier, *record["epochs"]])


def _from_files(run_dir: RunDir, job: training.Job | None) -> Progress:
    record = run_dir.read_progress()
    running = job.state == "running" if job is not None else run_lock.active_run(run_dir.path) is not None
    if record is None:
        if running:
            return Progress(macros.starting_text(job.config) if job else "Starting...", 0.0)
        return Progress(f"{ENDED_EARLY_TEXT} before training started. See {run_dir.worker_log}", None)
    try:
        text, progress = replay(record).line
        rows = metric_rows(record)
    except (ValueError, TypeError, KeyError) as error:
        return Progress(f"Cannot read {run_dir.progress}: {error}")
    if not record.get("ended") and not running:
        text = f"{ENDED_EARLY_TEXT}: {text}. See {run_dir.worker_log}"
    started = record.get("started") or {}
    summary = tuple(tuple(row) for row in started.get("summary", []))
    return Progress(text, progress, None, rows, started.get("device", ""), summary, started.get("n_params"))
