"""What the task pane's buttons do on the server, given the Book that xlwings Server builds from the
workbook (a remote-engine Book: every write becomes an action the task pane applies in Excel).

Train, Stop and Refresh backprop are the workbook's own macros (``excel_addin.macros``), run on the
server's copy of the workbook: Train checks the Train sheet's settings and hands the run to the server's
queue (``training``) instead of starting it at once; its output folder lies in the workbook's server-side
folder (``workbook.folder``).
Their messages are not written into the sheet (its status cell streams TRAIN_PROGRESS): they are kept per
workbook (``progress.say_to``) and shown by the stream and the task pane until the run moves on; a
workbook without a usable id gets the message in the task pane (an XlwingsError). These run in a worker
thread, never in the server's event loop.
"""

from __future__ import annotations

from typing import Any

import xlwings as xw

from excel_addin import macros
from excel_addin.server import progress, training, workbook
from excel_addin.sheets import layout
from ml.config import TrainConfig
from ml.run_lock import RunLock


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
        raise xw.XlwingsError(f"Not started: {error}") from None
    say = progress.say_to(wid)
    queue = training.queue()
    busy = queue.active(wid)
    if busy is not None:
        say(_busy_text(busy, queue))
        return None

    def enqueue(config: TrainConfig, _book: Any, lock: RunLock) -> training.Job:
        return queue.submit(training.Job(wid, config, lock))

    return macros.train(book, launcher=enqueue, folder=workbook.folder(wid), confined=True, say=say)


def _busy_text(job: training.Job, queue: training.TrainingQueue) -> str:
    position = queue.position(job)
    if position is not None:
        return f"Not started: this workbook's training is queued (position {position}). Press Stop first."
    return "Not started: this workbook's training is still running. Press Stop first."


def stop(book: Any, document: str = "") -> None:
    """Stop: take the workbook's waiting run out of the queue, or ask its running one to stop."""
    require_sheets(book, layout.TRAIN_SHEET)
    try:
        wid = workbook.workbook_id(book, document, create=False)
    except ValueError as error:
        raise xw.XlwingsError(f"Not stopped: {error}") from None
    if wid is None:
        raise xw.XlwingsError("No training is running for this workbook.")
    say = progress.say_to(wid)
    if training.queue().cancel(wid) is not None:
        say(training.CANCELLED_TEXT)
    else:
        macros.stop(book, folder=workbook.folder(wid), say=say)


def refresh_backprop(book: Any) -> None:
    """Refresh backprop: the Python engine's loss curves into the LR sheets and a picture on Graphs."""
    require_sheets(book, layout.BACKPROP_SHEET, layout.GRAPHS_SHEET)
    macros.refresh_backprop(book)


def set_up(book: Any, document: str = "") -> None:
    """Set up gradsheet: give the workbook its id, then write gradsheet's sheets into it."""
    workbook.workbook_id(book, document)  # first: Set up's formulas may refer to the id's name
    from excel_addin.sheets.setup import setup_workbook

    setup_workbook(book)


# ---- the Classify sheet: the drawing grid and what the network sees ------------------------------------
# (written into the Classify sheet, like the workbook's macros: nothing there streams)


def random_test_digit(book: Any) -> int | None:
    """Random test digit: a random MNIST test digit into the Classify sheet's drawing grid."""
    require_sheets(book, layout.CLASSIFY_SHEET)
    return macros.random_test_digit(book)


def clear_grid(book: Any) -> None:
    """Clear: an empty drawing grid."""
    require_sheets(book, layout.CLASSIFY_SHEET)
    macros.clear_grid(book)


def what_the_network_sees(book: Any) -> Any | None:
    """What the network sees: the chosen image's picture on the Classify sheet. Image and model paths start
    in the workbook's own folder on the server, as its Set-up CLASSIFY_* cells' do (``addin_model_args``),
    so the picture explains what the cells show."""
    from excel_addin import drawing
    from excel_addin.cells import Files
    from excel_addin.server.functions import server_files
    from excel_addin.server.options import options

    require_sheets(book, layout.CLASSIFY_SHEET, layout.TRAIN_SHEET)
    wid = workbook.workbook_id(book, create=False)
    files = Files(workbook.folder(wid), confined=options().shared) if wid else server_files()
    return drawing.explain(book, files)
