"""What the task pane's buttons do on the server, given the Book that xlwings Server builds from the
workbook (a remote-engine Book: every write becomes an action the task pane applies in Excel).

Train, Stop and Refresh backprop are the workbook's own macros (``excel_addin.macros``), run on the
server's copy of the workbook: Train checks the Train sheet's settings and hands the run to the server's
queue (``training``) instead of starting it at once; its output folder lies in the workbook's server-side
folder (``workbook.folder``). Messages go into the Train sheet's status cell, as in the workbook route.
These run in a worker thread, never in the server's event loop.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import xlwings as xw

from excel_addin import layout, macros
from excel_addin.server import training, workbook
from ml.config import TrainConfig
from ml.run_lock import RunLock

SETUP_MODULE = "excel_addin.build"


def require_sheets(book: Any, *names: str) -> None:
    """Refuse a workbook that lacks a sheet a button needs (xlwings shows the message in the task pane)."""
    missing = [name for name in names if name not in [sheet.name for sheet in book.sheets]]
    if missing:
        sheets = f"{', '.join(missing)} sheet{'s' if len(missing) > 1 else ''}"
        raise xw.XlwingsError(f"This workbook has no {sheets}: press Set up gradsheet first.")


def train(book: Any, document: str = "") -> training.Job | None:
    """Train: check the settings, then start the run or queue it; None when nothing was queued."""
    require_sheets(book, layout.TRAIN_SHEET)
    try:
        wid = workbook.workbook_id(book, document)
    except ValueError as error:
        macros.set_status(book, f"Not started: {error}")
        return None
    queue = training.queue()
    busy = queue.active(wid)
    if busy is not None:
        macros.set_status(book, _busy_text(busy, queue))
        return None

    def enqueue(config: TrainConfig, _book: Any, lock: RunLock) -> training.Job:
        return queue.submit(training.Job(wid, config, lock))

    job = macros.train(book, launcher=enqueue, folder=workbook.folder(wid), confined=True)
    if job is not None and job.state == "queued":
        macros.set_status(book, training.waiting_text(queue.position(job) or 1, queue), 0.0)
    elif job is not None and job.state == "failed":
        macros.set_status(book, job.error)
    return job


def _busy_text(job: training.Job, queue: training.TrainingQueue) -> str:
    position = queue.position(job)
    if position is not None:
        return f"Not started: this workbook's training is queued (position {position}). Press Stop first."
    return "Not started: this workbook's training is still running (see TRAIN_PROGRESS). Press Stop first."


def stop(book: Any, document: str = "") -> None:
    """Stop: take the workbook's waiting run out of the queue, or ask its running one to stop."""
    require_sheets(book, layout.TRAIN_SHEET)
    try:
        wid = workbook.workbook_id(book, document, create=False)
    except ValueError as error:
        macros.set_status(book, f"Not stopped: {error}")
        return
    if wid is None:
        macros.set_status(book, "No training is running for this workbook.")
    elif training.queue().cancel(wid) is not None:
        macros.set_status(book, training.CANCELLED_TEXT)
    else:
        macros.stop(book, folder=workbook.folder(wid))


def refresh_backprop(book: Any) -> None:
    """Refresh backprop: the Python engine's loss curves into the LR sheets and a picture on Graphs."""
    require_sheets(book, layout.BACKPROP_SHEET, layout.GRAPHS_SHEET)
    macros.refresh_backprop(book)


def set_up(book: Any, document: str = "") -> None:
    """Set up gradsheet: give the workbook its id, then write gradsheet's sheets into it."""
    if importlib.util.find_spec(SETUP_MODULE) is None:
        raise xw.XlwingsError(f"Set up is not available: this gradsheet has no {SETUP_MODULE}.")
    workbook.workbook_id(book, document)  # first: Set up's formulas may refer to the id's name
    from excel_addin.build import setup_workbook

    setup_workbook(book)
