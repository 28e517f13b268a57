"""The add-in's custom functions: ``=GRADSHEET.<NAME>(...)`` in Excel on Windows, macOS and the web.

xlwings Server registers every attribute of this module that carries ``__xlfunc__`` (it imports it as
``custom_functions``, see ``excel_addin.server``). The cell functions are thin adapters over
``excel_addin.cells``, like the classic UDFs: same names, help, argument help and messages. They run in a
worker thread, so a model loading for CLASSIFY_* never holds up the server's event loop (and its streams).
On the server, relative paths start in the server's runs folder, which holds a folder per workbook id.

``TRAIN_PROGRESS`` is a streaming function (an async generator): xlwings Server runs it as one task per
distinct argument and pushes each value it yields to Excel over socket.io.

The decorators come from ``xlwings.server`` explicitly: ``xw.func`` is the Office.js decorator only when
xlwings was first imported on a server.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
from collections.abc import Callable

from xlwings.server import arg, func

from excel_addin import cells
from excel_addin.server import progress
from excel_addin.server.options import options
from excel_addin.server.workbook import check_id
from excel_addin.sheets import layout
from ml import values

PROGRESS_INTERVAL_S = 0.5  # how often TRAIN_PROGRESS looks at the run's files
PROGRESS_RESEND_S = 5.0  # an unchanged value is pushed again after this long (for cells that joined late)


def server_files() -> cells.Files:
    """Where the cell functions' relative paths start on this server (confined when it is shared)."""
    return cells.Files(options().runs, confined=options().shared)


def custom_function(fn: Callable) -> Callable:
    """The custom function of a shared cell function: its name, help and arguments, run in a thread."""
    signature = inspect.Signature(cells.excel_parameters(fn))
    reads_files = cells.reads_files(fn)

    @functools.wraps(fn)
    async def adapter(*args):
        given = signature.bind(*args).arguments
        if reads_files:
            given["files"] = server_files()
        return await asyncio.to_thread(fn, **given)

    adapter.__signature__ = signature
    return cells.register(adapter, fn, func, arg)


# one custom function per shared cell function, under its name (BACKPROP_LOSS, ...): xlwings Server
# registers the module's attributes that carry __xlfunc__
globals().update({fn.__name__: custom_function(fn) for fn in cells.CELL_FUNCTIONS})


@func
@arg(
    "workbook",
    doc=f"Optional. The workbook's id on the server: {layout.WORKBOOK_ID_NAME} (written by Set up or Train). "
    "Empty: the server's latest run.",
)
@arg("part", doc=f"Optional. What to show: {', '.join(progress.PARTS)} (default all: the whole table).")
async def TRAIN_PROGRESS(workbook=None, part=None):  # no annotations: xlwings would take them as converters
    """This workbook's training on the server, live: status, progress, queue position, one row per epoch."""
    try:
        wid = None if workbook in (None, "") else check_id(workbook)
        shown = "all" if part in (None, "") else values.as_choice(part, "part", progress.PARTS)
    except ValueError as error:
        yield [[cells.excel_error(error)]]
        return
    last, sent = None, -PROGRESS_RESEND_S
    while True:
        table = (await asyncio.to_thread(progress.progress_of, wid)).part(shown)
        if table != last or time.monotonic() - sent >= PROGRESS_RESEND_S:
            yield table
            last, sent = table, time.monotonic()
        await asyncio.sleep(PROGRESS_INTERVAL_S)
