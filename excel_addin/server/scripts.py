"""The add-in's custom scripts: the task pane's buttons (``<button xw-click="train">``).

xlwings Server calls ``/xlwings/custom-scripts-call/<name>`` as ``getattr(this module, name)``, so every
public name here is a ``@script`` (a test checks it). Each runs the shared button of the same name
(``excel_addin.buttons``) on the Book that xlwings Server builds from the workbook (a remote-engine Book:
every write becomes an action the task pane applies in Excel), in a worker thread, so the server's event
loop (and every stream) goes on meanwhile. ``include`` limits the sheets Excel sends to those a script
reads (pictures are sent only for included sheets). ``document`` is the workbook file's location, which
the task pane passes so that a copy of a workbook gets its own id (``workbook``); ``user`` is the
signed-in user, whom xlwings Server passes and Excel never sees.

A workbook's runs live in its owner's folder (``<runs>/<user>/<id>``), decided here from the sign-in, never
from the workbook: Train and Stop act only there. Train checks the Train sheet's settings and the server's
caps and hands the run to the run book (``runs``) instead of starting it at once. Train's and Stop's
messages are not written into the sheet (its status cell streams TRAIN_PROGRESS): the run book keeps them
per workbook and the stream and the task pane show them until the run moves on; a workbook without a usable
id gets the message in the task pane (an XlwingsError). No message shows a path of the server.
"""

from __future__ import annotations

import asyncio as _asyncio
from typing import Any as _Any

import xlwings as _xw
from xlwings.server import script as _script
from xlwings_server.models import CurrentUser as _CurrentUser

from excel_addin import buttons as _buttons
from excel_addin import cells as _cells
from excel_addin import status_line as _status_line
from excel_addin.server import caps as _caps
from excel_addin.server import messages as _messages
from excel_addin.server import workbook as _workbook
from excel_addin.server.auth import identity as _identity
from excel_addin.server.functions import user_files as _user_files
from excel_addin.server.runs import run_book as _run_book
from excel_addin.sheets import layout as _layout


@_script(name="Train", include=[_layout.TRAIN_SHEET])
async def train(book: _xw.Book, document: str = "", *, user: _CurrentUser = None):
    """Check the Train sheet's settings and start (or queue) a training run on the server."""
    await _asyncio.to_thread(_train, book, document, user)


@_script(name="Stop", include=[_layout.TRAIN_SHEET])
async def stop(book: _xw.Book, document: str = "", *, user: _CurrentUser = None):
    """Stop this workbook's training after its current batch, or take it out of the queue."""
    await _asyncio.to_thread(_stop, book, document, user)


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
async def what_the_network_sees(book: _xw.Book, *, user: _CurrentUser = None):
    """Draw the first layer's filters, feature maps and class evidence of the chosen Classify image."""
    _require_sheets(book, _layout.CLASSIFY_SHEET, _layout.TRAIN_SHEET)
    await _asyncio.to_thread(_what_the_network_sees, book, user)


# ---- what they do on this server -------------------------------------------------------------------------


def _require_sheets(book: _Any, *names: str) -> None:
    """Refuse a workbook that lacks a sheet a button needs (xlwings shows the message in the task pane)."""
    missing = [name for name in names if name not in [sheet.name for sheet in book.sheets]]
    if missing:
        sheets = f"{', '.join(missing)} sheet{'s' if len(missing) > 1 else ''}"
        raise _xw.XlwingsError(f"This workbook has no {sheets}: press Set up gradsheet first.")


def _workbook_key(book: _Any, document: str, user: _Any, create: bool, refused: _Any):
    """The owner and the run key of the workbook a button came from (None without an id, when not
    ``create``); an unusable id is refused in the task pane with ``refused(error)``."""
    owner = _identity(user)
    try:
        wid = _workbook.workbook_id(book, document, create=create)
    except ValueError as error:
        raise _xw.XlwingsError(refused(error)) from None
    return owner, (None if wid is None else _workbook.run_key(owner, wid))


def _train(book: _Any, document: str = "", user: _Any = None) -> _Any:
    """Train: check the settings and the caps, then start the run or queue it; None when nothing was
    queued (the workbook's stream says why)."""
    _require_sheets(book, _layout.TRAIN_SHEET)
    owner, key = _workbook_key(book, document, user, True, _status_line.not_started)
    runs, folder = _run_book(), _workbook.folder(owner, key.workbook)
    say = _messages_to(key, folder, owner)
    busy = runs.refusal(key)
    if busy is not None:
        say(busy)
        return None

    def enqueue(config, _book, lock):
        _caps.check(config)
        return runs.submit(key, config, lock)

    return _buttons.train(book, launcher=enqueue, files=_cells.Files(folder, confined=True), say=say)


def _messages_to(key, folder, owner):
    """How Train and Stop speak to a workbook: kept by the run book, worded for its owner."""
    home = _user_files(owner).folder

    def say(text: str, progress: float | None = None) -> None:
        _run_book().say(key, _messages.for_user(text, folder, home), progress)

    return say


def _stop(book: _Any, document: str = "", user: _Any = None) -> None:
    """Stop: take the workbook's waiting run out of the queue, or ask its running one to stop (only inside
    the workbook's own folder on the server)."""
    _require_sheets(book, _layout.TRAIN_SHEET)
    owner, key = _workbook_key(book, document, user, False, _status_line.not_stopped)
    if key is None:
        raise _xw.XlwingsError(_status_line.NOTHING_RUNNING_TEXT)
    folder = _workbook.folder(owner, key.workbook)
    say = _messages_to(key, folder, owner)
    runs = _run_book()
    if runs.cancel(key) is not None:
        say(_status_line.CANCELLED_TEXT)
    else:
        files = _cells.Files(folder, confined=True)
        _buttons.stop(
            book, files=files, say=say, request_stop=lambda out_dir: runs.request_stop(key, out_dir)
        )


def _set_up(book: _Any, document: str = "") -> None:
    """Set up gradsheet: give the workbook its id, then write gradsheet's sheets into it."""
    _workbook.workbook_id(book, document)  # first: Set up's formulas may refer to the id's name
    from excel_addin.sheets.setup import setup_workbook

    setup_workbook(book)


def _what_the_network_sees(book: _Any, user: _Any = None) -> _Any | None:
    """What the network sees: image and model paths start in the user's own folder on the server, as the
    Set-up CLASSIFY_* cells' do (``addin_model_args``: the workbook's id, then the Train sheet's output
    folder), so the picture explains what the cells show."""
    files = _user_files(_identity(user))
    return _buttons.what_the_network_sees(
        book, files, word=lambda text: _messages.for_user(text, files.folder)
    )
