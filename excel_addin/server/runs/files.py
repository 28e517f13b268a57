"""A run seen through its folder's files: progress.json, which the training process writes as it goes
(``ml.sinks.ProgressFileSink``), replayed into the status line the Train sheet shows
(``excel_addin.status_line``) and one metric row per finished epoch. That file alone tells where a run
stands, so a run started before a server restart still shows; for a run whose process died, its
metrics.json may hold one more epoch (``with_saved_epochs``).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from excel_addin import status_line
from excel_addin.server.progress import Progress
from excel_addin.sheets.train_sheet import metric_cells
from ml import run_lock
from ml.run_dir import PROGRESS_JSON, RunDir


def latest_run(folder: Path) -> RunDir | None:
    """The run folder with the newest progress.json under ``folder`` (None: there is none)."""
    found = []
    for path in folder.rglob(PROGRESS_JSON) if folder.is_dir() else ():
        try:
            if path.is_file():
                found.append((path.stat().st_mtime_ns, path.parent))
        except OSError:
            continue
    return RunDir(max(found)[1]) if found else None


def mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def metric_rows(record: dict[str, Any]) -> tuple[tuple[float, ...], ...]:
    """The run's metric rows from its progress record (the same file as its status, so the two always
    agree): the epochs a resumed run had done before, then each epoch this run finished."""
    started = record.get("started") or {}
    earlier = [row for row in started.get("history", []) if row["epoch"] < started.get("start_epoch", 1)]
    return tuple(tuple(metric_cells(row)) for row in [*earlier, *record["epochs"]])


def from_files(run_dir: RunDir, running: bool | None = None, starting: str | None = None) -> Progress:
    """Where the run stands by its files. ``running``: whether its training process is known to run
    (None: ask the run lock); ``starting``: the status while its process starts."""
    if running is None:
        running = run_lock.active_run(run_dir.path) is not None
    record = run_dir.read_progress()
    shown = from_record(record, running, starting, run_dir.worker_log.name)
    return shown if running or (record or {}).get("ended") else with_saved_epochs(shown, run_dir)


def with_saved_epochs(shown: Progress, run_dir: RunDir) -> Progress:
    """A run whose process ended without saying so, with every epoch its metrics.json saved: the process
    writes that file (and the epoch's checkpoint) before it draws the epoch's charts and then progress.json,
    so one killed in between left progress.json an epoch short of the run's own files."""
    saved = tuple(tuple(metric_cells(row)) for row in (run_dir.read_record() or {}).get("epochs") or ())
    if len(saved) > len(shown.rows) and saved[: len(shown.rows)] == shown.rows:
        return replace(shown, rows=saved)
    return shown


def from_record(record: dict[str, Any] | None, running: bool, starting: str | None, log: str) -> Progress:
    """Where a run stands by its progress record (progress.json's content, or the same rebuilt from the
    run's events): ``running``: whether its training is known to go on; ``log``: the training's log file,
    named when the run ended without saying so."""
    if record is None:
        if running:
            return Progress(starting or status_line.STARTING_TEXT, 0.0)
        return Progress(status_line.ended_early(None, log))
    try:
        text, progress = status_line.replay(record).line
        rows = metric_rows(record)
    except (ValueError, TypeError, KeyError) as error:
        return Progress(f"Cannot read the run's {PROGRESS_JSON}: {error}")
    if not record.get("ended") and not running:
        text = status_line.ended_early(text, log)
    started = record.get("started") or {}
    summary = tuple(tuple(row) for row in started.get("summary", []))
    return Progress(text, progress, None, rows, started.get("device", ""), summary, started.get("n_params"))
