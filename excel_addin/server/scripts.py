"""The add-in's custom scripts: the task pane's buttons (``<button xw-click="train">``).

xlwings Server calls ``/xlwings/custom-scripts-call/<name>`` as ``getattr(this module, name)``, so every
public name here is a ``@script`` (a test checks it); the work is in ``buttons``, run in a worker thread
so the server's event loop (and every stream) goes on meanwhile. ``include`` limits the sheets Excel sends
to those a script reads (pictures are sent only for included sheets). ``document`` is the workbook file's
location, which the task pane passes so that a copy of a workbook gets its own id (``workbook``).
"""

from __future__ import annotations

import asyncio as _asyncio

import xlwings as _xw
from xlwings.server import script as _script

from excel_addin.server import buttons as _buttons
from excel_addin.sheets import layout as _layout


@_script(name="Train", include=[_layout.TRAIN_SHEET])
async def train(book: _xw.Book, document: str = ""):
    """Check the Train sheet's settings and start (or queue) a training run on the server."""
    await _asyncio.to_thread(_buttons.train, book, document)


@_script(name="Stop", include=[_layout.TRAIN_SHEET])
async def stop(book: _xw.Book, document: str = ""):
    """Stop this workbook's training after its current batch, or take it out of the queue."""
    await _asyncio.to_thread(_buttons.stop, book, document)


@_script(name="Refresh backprop", include=[_layout.BACKPROP_SHEET, _layout.GRAPHS_SHEET])
async def refresh_backprop(book: _xw.Book):
    """Recompute the Python engine's loss curves from the Backprop sheet's cells."""
    await _asyncio.to_thread(_buttons.refresh_backprop, book)


@_script(name="Set up gradsheet")
async def setup_gradsheet(book: _xw.Book, document: str = ""):
    """Write gradsheet's sheets into this workbook and give it its id on the server."""
    await _asyncio.to_thread(_buttons.set_up, book, document)


@_script(name="Random test digit", include=[_layout.CLASSIFY_SHEET])
async def random_test_digit(book: _xw.Book):
    """Write a random MNIST test digit into the Classify sheet's drawing grid."""
    await _asyncio.to_thread(_buttons.random_test_digit, book)


@_script(name="Clear", include=[_layout.CLASSIFY_SHEET])
async def clear_grid(book: _xw.Book):
    """Empty the Classify sheet's drawing grid."""
    await _asyncio.to_thread(_buttons.clear_grid, book)


@_script(name="What the network sees", include=[_layout.CLASSIFY_SHEET, _layout.TRAIN_SHEET])
async def what_the_network_sees(book: _xw.Book):
    """Draw the first layer's filters, feature maps and class evidence of the chosen Classify image."""
    await _asyncio.to_thread(_buttons.what_the_network_sees, book)
