"""The add-in's custom scripts: the task pane's buttons (``<button xw-click="train">``).

xlwings Server calls ``/xlwings/custom-scripts-call/<name>`` as ``getattr(this module, name)``, so every
public name here is a ``@script`` (a test checks it). Each runs the shared button of the same name
(``excel_addin.buttons``) on the Book that xlwings Server builds from the workbook (a remote-engine Book:
every write becomes an action the task pane applies in Excel), in a worker thread, so the server's event
loop (and every stream) goes on meanwhile. ``include`` limits the sheets Excel sends to those a script
reads (pictures are sent only for included sheets). ``document`` is the workbook file's location, which
the task pane passes so that a copy of a workbook gets its own id (``workbook``).

Train checks the Train sheet's settings and hands the run to the server's queue (``training``) instead of
starting it at once; its output folder lies in the workbook's server-side folder (``workbook.folder``).
Train's and Stop's messages are not written into the sheet (its status cell streams TRAIN_PROGRESS): they
are kept per workbook (``progress.say_to``) and shown by the stream and the task pane until the run moves
on; a workbook without a usable id gets the message in the task pane (an XlwingsError).
"""

from __future__ import annotations

import asyncio as _asyncio
from typing import Any as _Any

import xlwings as _xw
from xlwings.server import script as _script

from excel_addin import buttons as _buttons
from excel_addin import cells as _cells
from excel_addin import status_line as _status_line
from excel_addin.server import progress as _progress
from excel_addin.server import training as _training
from excel_addin.server import workbook as _workbook
from excel_addin.server.options import options as _options
from excel_addin.sheets import layout as _layout


@_script(name="Train", include=[_layout.TRAIN_SHEET])
async def train(book: _xw.Book, document: str = ""):
    """Check the Train sheet's settings and start (or queue) a training run on the server."""
    await _asyncio.to_thread(_train, book, document)


@_script(name="Stop", include=[_layout.TRAIN_SHEET])
async def stop(book: _xw.Book, document: str = ""):
    """Stop this workbook's training after its current batch, or take it out of the queue."""
    await _asyncio.to_thread(_stop, book, document)


@_script(name="Refresh backprop", include=[_layout.BACKPROP_SHEET, _layout.GRAPHS_SHEET])
async def refresh_backprop(book: _xw.Book):
    """Recompute the Python engine's loss curves from the Backprop sheet's cells."""
    _require_sheets(book, _layout.BACKPROP_SHEET, _layout.GRAPHS_SHEET)
    await _asyncio.to_thread(_buttons.refresh_backprop, book)


@_script(name="Set up gradsheet")
async def setup_gradsheet(book: _xw.Book, document: str = ""):
    """Write gradsheet's sheets into this workbook and give it its id on the server."""
    await _asyncio.to_thread(_set_up, book, document)


@_script(name="Random test digit", include=[_layout.CLASSIFY_SHEET])
async def random_test_digit(book: _xw.Book):
    """Write a random MNIST test digit into the Classify sheet's drawing grid."""
    _require_sheets(book, _layout.CLASSIFY_SHEET)
    await _asyncio.to_thread(_buttons.random_test_digit, book)


@_script(name="Clear", include=[_layout.CLASSIFY_SHEET])
async def clear_grid(book: _xw.Book):
    """Empty the Classify sheet's drawing grid."""
    _require_sheets(book, _layout.CLASSIFY_SHEET)
    await _asyncio.to_thread(_buttons.clear_grid, book)


@_script(name="What the network sees", include=[_layout.CLASSIFY_SHEET, _layout.TRAIN_SHEET])
async def what_the_network_sees(book: _xw.Book):
    """Draw the first layer's filters, feature maps and class evidence of the chosen Classify image."""
    _require_sheets(book, _layout.CLASSIFY_SHEET, _layout.TRAIN_SHEET)
    await _asyncio.to_thread(_what_the_network_sees, book)


# ---- what they do on this server -------------------------------------------------------------------------


def _require_sheets(book: _Any, *names: str) -> None:
    """Refuse a workbook that lacks a sheet a button needs (xlwings shows the message in the task pane)."""
    missing = [name for name in names if name not in [sheet.name for sheet in book.sheets]]
    if missing:
        sheets = f"{', '.join(missing)} sheet{'s' if len(missing) > 1 else ''}"
        raise _xw.XlwingsError(f"This workbook has no {sheets}: press Set up gradsheet first.")


def _workbook_files(wid: str) -> _cells.Files:
    """Where a workbook's runs and relative paths go on this server: its own folder, confined."""
    return _cells.Files(_workbook.folder(wid), confined=True)


def _train(book: _Any, document: str = "") -> _training.Job | None:
    """Train: check the settings, then start the run or queue it; None when nothing was queued."""
    _require_sheets(book, _layout.TRAIN_SHEET)
    try:
        wid = _workbook.workbook_id(book, document)
    except ValueError as error:
        raise _xw.XlwingsError(_status_line.not_started(error)) from None
    say = _progress.say_to(wid)
    queue = _training.queue()
    busy = queue.active(wid)
    if busy is not None:
        say(_status_line.busy_text(queue.position(busy)))
        return None

    def enqueue(config, _book, lock) -> _training.Job:
        return queue.submit(_training.Job(wid, config, lock))

    return _buttons.train(book, launcher=enqueue, files=_workbook_files(wid), say=say)


def _stop(book: _Any, document: str = "") -> None:
    """Stop: take the workbook's waiting run out of the queue, or ask its running one to stop."""
    _require_sheets(book, _layout.TRAIN_SHEET)
    try:
        wid = _workbook.workbook_id(book, document, create=False)
    except ValueError as error:
        raise _xw.XlwingsError(_status_line.not_stopped(error)) from None
    if wid is None:
        raise _xw.XlwingsError("No training is running for this workbook.")
    say = _progress.say_to(wid)
    if _training.queue().cancel(wid) is not None:
        say(_status_line.CANCELLED_TEXT)
    else:
        _buttons.stop(book, files=_cells.Files(_workbook.folder(wid)), say=say)


def _set_up(book: _Any, document: str = "") -> None:
    """Set up gradsheet: give the workbook its id, then write gradsheet's sheets into it."""
    _workbook.workbook_id(book, document)  # first: Set up's formulas may refer to the id's name
    from excel_addin.sheets.setup import setup_workbook

    setup_workbook(book)


def _what_the_network_sees(book: _Any) -> _Any | None:
    """What the network sees: image and model paths start in the workbook's own folder on the server, as
    its Set-up CLASSIFY_* cells' do (``addin_model_args``), so the picture explains what the cells show."""
    from excel_addin.server.functions import server_files

    wid = _workbook.workbook_id(book, create=False)
    files = _cells.Files(_workbook.folder(wid), confined=_options().shared) if wid else server_files()
    return _buttons.what_the_network_sees(book, files)
