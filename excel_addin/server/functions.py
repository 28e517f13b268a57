"""The add-in's custom functions: ``=GRADSHEET.<NAME>(...)`` in Excel on Windows, macOS and the web.

xlwings Server registers every attribute of this module that carries ``__xlfunc__`` (it imports it as
``custom_functions``, see ``excel_addin.server``). The cell functions are thin adapters over
``excel_addin.cells``, like the classic UDFs: same names, help, argument help and messages. They run in a
worker thread, so a model loading for CLASSIFY_* never holds up the server's event loop (and its streams).
Each gets the signed-in user from xlwings Server (a ``CurrentUser`` argument that Excel never sees): on the
server relative paths start in the user's own folder (``<runs>/<user>``, which holds a folder per workbook
id), a shared server refuses paths outside it, and no message shows a path of the server.

``TRAIN_PROGRESS`` is a streaming function (an async generator): xlwings Server runs it as one task per
user and distinct argument (``streams``) and pushes each value it yields to that user's Excel over
socket.io.

The decorators come from ``xlwings.server`` explicitly: ``xw.func`` is the Office.js decorator only when
xlwings was first imported on a server.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import inspect
import time
from collections.abc import Callable

from xlwings.server import arg, func
from xlwings_server.models import CurrentUser

from excel_addin import cells
from excel_addin.server import messages, progress
from excel_addin.server.auth import Identity, identity
from excel_addin.server.options import options
from excel_addin.server.runs import owner_folder, run_book
from excel_addin.server.workbook import check_id, folder, run_key
from excel_addin.sheets import layout
from ml import values

PROGRESS_INTERVAL_S = 0.5  # how often TRAIN_PROGRESS looks at the run's state
PROGRESS_RESEND_S = 5.0  # an unchanged value is pushed again after this long (for cells that joined late)


def user_files(owner: Identity) -> cells.Files:
    """Where a user's relative paths start on this server (confined to them when it is shared)."""
    return cells.Files(owner_folder(options().runs, owner), confined=options().shared)


def _user_parameter() -> inspect.Parameter:
    return inspect.Parameter("user", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=CurrentUser)


def custom_function(fn: Callable) -> Callable:
    """The custom function of a shared cell function: its name, help and arguments, run in a thread, with
    the caller's files and messages fit for the caller."""
    signature = inspect.Signature([*cells.excel_parameters(fn), _user_parameter()])
    reads_files = cells.reads_files(fn)

    @functools.wraps(fn)
    async def adapter(*args, user=None):
        given = signature.bind(*args).arguments
        owner = identity(user)
        if reads_files:
            given["files"] = user_files(owner)
        result = await asyncio.to_thread(fn, **given)
        home = owner_folder(options().runs, owner)
        return (
            messages.table_for_user(result, home)
            if isinstance(result, list)
            else messages.for_user(result, home)
        )

    adapter.__signature__ = signature
    adapter.__annotations__ = {"user": CurrentUser}
    return cells.register(adapter, fn, func, arg)


# one custom function per shared cell function, under its name (BACKPROP_LOSS, ...): xlwings Server
# registers the module's attributes that carry __xlfunc__
globals().update({fn.__name__: custom_function(fn) for fn in cells.CELL_FUNCTIONS})


def progress_view(owner: Identity, wid: str) -> progress.Progress:
    """Where a user's workbook's run stands, worded for the user (no path of the server)."""
    view = run_book().view(run_key(owner, wid))
    text = messages.for_user(view.status, folder(owner, wid), owner_folder(options().runs, owner))
    return dataclasses.replace(view, status=text)


@func
@arg(
    "workbook",
    doc=f"The workbook's id on the server: {layout.WORKBOOK_ID_NAME} (written by Set up or Train).",
)
@arg("part", doc=f"Optional. What to show: {', '.join(progress.PARTS)} (default all: the whole table).")
async def TRAIN_PROGRESS(workbook=None, part=None, *, user: CurrentUser = None):  # noqa: N803
    """This workbook's training on the server, live: status, progress, queue position, one row per epoch."""
    try:
        if workbook in (None, ""):
            raise ValueError(
                f"give the workbook's id: {layout.WORKBOOK_ID_NAME} (press Set up gradsheet first)"
            )
        wid = check_id(workbook)
        shown = "all" if part in (None, "") else values.as_choice(part, "part", progress.PARTS)
    except ValueError as error:
        yield [[cells.excel_error(error)]]
        return
    owner = identity(user)
    last, sent = None, -PROGRESS_RESEND_S
    while True:
        table = (await asyncio.to_thread(progress_view, owner, wid)).part(shown)
        if table != last or time.monotonic() - sent >= PROGRESS_RESEND_S:
            yield table
            last, sent = table, time.monotonic()
        await asyncio.sleep(PROGRESS_INTERVAL_S)
