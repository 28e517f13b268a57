"""Cell arguments converted without trying to import Pyodide once per cell.

xlwings 0.37.8 converts every cell of a custom function's range arguments with
``_xlofficejs._clean_value_data_element``, which asks ``xlwings.utils.is_jsnull`` whether the value is
Pyodide's ``JsNull``; that function runs ``from pyodide.ffi import JsNull`` each time. Outside Pyodide the
import fails, and Python does not remember failed imports: every cell searches the whole ``sys.path`` again
(~110 microseconds a cell on a 2-core EPYC). That, on the event loop, is why a 1000 x 1000 range froze the
server for minutes (issue 24, finding 5). Where Pyodide is not installed, nothing can be a ``JsNull``, so
``skip_pyodide_probe`` gives xlwings an ``is_jsnull`` that answers False without importing; the conversion
of a 1000 x 1000 range then takes well under a second.
"""

from __future__ import annotations

import importlib.util


def never_jsnull(value) -> bool:
    """``xlwings.utils.is_jsnull`` where Pyodide is not installed: no value is Pyodide's JsNull."""
    return False


def skip_pyodide_probe() -> bool:
    """Replace xlwings' per-cell Pyodide probe when Pyodide is absent; whether it was replaced."""
    import xlwings.utils  # here: importing xlwings is the server's configuration's business (asgi)

    if importlib.util.find_spec("pyodide") is not None or not hasattr(xlwings.utils, "is_jsnull"):
        return False
    xlwings.utils.is_jsnull = never_jsnull
    return True
