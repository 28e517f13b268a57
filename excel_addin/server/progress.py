"""Where a workbook's training stands on this server: what TRAIN_PROGRESS streams and the task pane shows.

A run is read from two places: the queue (a job that waits, its position) and the run folder's
progress.json, the events the worker writes: replayed into the same status line the Train sheet shows
(``excel_addin.status_line``), and one metric row per finished epoch. Only that file is read, so a run
started before a server restart still shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from excel_addin import macros
from excel_addin.server import training, workbook
from excel_addin.server.options import options
from excel_addin.status_line import replay
from ml import run_lock
from ml.run_dir import METRIC_COLUMNS, PROGRESS_JSON, RunDir

NO_RUN_TEXT = "No training yet: press Train."
ENDED_EARLY_TEXT = "Interrupted: the training process ended unexpectedly"
LABELS = ("status", "progress", "queue")  # the first column of the rows above the metrics table


@dataclass(frozen=True)
class Progress:
    """A run's status line, fraction done (None: unknown), queue position (None: not waiting) and its
    metric rows (METRIC_COLUMNS, the epoch a whole number, as on the Train sheet)."""

    status: str
    progress: float | None = None
    queue: int | None = None
    rows: tuple[tuple[float, ...], ...] = ()

    def table(self) -> list[list[Any]]:
        """The spill of TRAIN_PROGRESS: a status, a progress and a queue row, then the metrics table
        (header and one row per epoch; native charts can be bound to its columns)."""
        width = len(METRIC_COLUMNS)
        values = (self.status, self.progress, self.queue)
        top = [
            [label, "" if value is None else value] + [""] * (width - 2)
            for label, value in zip(LABELS, values, strict=True)
        ]
        return [*top, list(METRIC_COLUMNS), *(list(row) for row in self.rows)]

    def summary(self) -> dict[str, Any]:
        """The task pane's short status."""
        return {
            "status": self.status,
            "progress": self.progress,
            "queue": self.queue,
            "epochs": len(self.rows),
        }


def progress_of(wid: str | None) -> Progress:
    """Where the workbook's current or last run stands (``wid`` None: the server's latest run)."""
    queue = training.queue()
    job = queue.latest(wid)
    if job is not None and job.state == "queued":
        position = queue.position(job)
        if position is not None:
            return Progress(training.waiting_text(position, queue), 0.0, position)
    if job is not None and job.state == "cancelled":
        return Progress(training.CANCELLED_TEXT)
    if job is not None and job.state == "failed":
        return Progress(job.error or "Not started")
    run_dir = job.run_dir if job is not None else latest_run(wid)
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
    return tuple(
        (int(row["epoch"]), *(float(row[c]) for c in METRIC_COLUMNS[1:]))
        for row in [*earlier, *record["epochs"]]
    )


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
    return Progress(text, progress, None, rows)
