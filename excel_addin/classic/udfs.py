"""The classic xlwings UDFs (Excel on Windows, through the workbook's VBA wrappers).

Each is a thin adapter over the shared cell function of the same name in ``excel_addin.cells``, which holds
its help text, argument help and messages (the add-in server's custom functions adapt the same functions).
A function that reads files also gets xlwings' ``caller`` argument, the calling cell: its workbook's folder
is where relative paths start (``cells.book_folder``). ``python -m excel_addin.xlsm`` writes the VBA
wrappers from here.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any

import xlwings as xw

from excel_addin import cells


def caller_files(caller: Any) -> cells.Files:
    """Where the calling cell's relative paths start: its workbook's folder (xlwings passes the calling
    cell as ``caller`` on Windows; without one, the current folder)."""
    return cells.Files(cells.book_folder(getattr(getattr(caller, "sheet", None), "book", None)))


def udf(fn: Callable) -> Callable:
    """The classic UDF of a shared cell function: its name, help and arguments (plus ``caller`` for a
    function that reads files), calling it with the calling workbook's folder."""
    parameters = cells.excel_parameters(fn)
    if cells.reads_files(fn):
        parameters.append(inspect.Parameter("caller", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None))
    signature = inspect.Signature(parameters)
    reads_files = cells.reads_files(fn)

    @functools.wraps(fn)
    def adapter(*args, **kwargs):
        given = signature.bind(*args, **kwargs).arguments
        if reads_files:
            given["files"] = caller_files(given.pop("caller", None))
        return fn(**given)

    adapter.__signature__ = signature
    # xw.func / xw.arg are looked up now: the template builder swaps in xlwings' Windows decorators
    return cells.register(adapter, fn, xw.func, xw.arg)


# one UDF per shared cell function, under its name (BACKPROP_LOSS, ...): xlwings finds them among the
# module's attributes
globals().update({fn.__name__: udf(fn) for fn in cells.CELL_FUNCTIONS})
