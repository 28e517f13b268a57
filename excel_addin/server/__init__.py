"""gradsheet as an Office add-in for Excel on Windows, macOS and the web, on xlwings Server.

``from excel_addin.server import app`` gives the ASGI app, configured by the package itself (``asgi``);
``python -m excel_addin.server`` serves it over https (``cli``). Only the licence key comes from the
environment: ``XLWINGS_LICENSE_KEY=noncommercial`` for educational use (xlwings Server is PolyForm
Noncommercial). Importing this package does nothing else: the app is built on first access to ``app``, so
``python -m excel_addin.server`` can set its options before xlwings Server reads its settings.

A folder per role, as in xlwings Server's own projects:

* ``functions`` (custom functions: the cells), ``scripts`` (custom scripts: the task pane's buttons, over
  ``excel_addin.buttons``), ``streams`` (TRAIN_PROGRESS to its user only), ``routers/`` (the pane's
  status, a teacher's view of the class, cell calls measured off the event loop);
* ``auth/`` (who is calling: class codes, Entra ID, ``identity``), ``perimeter/`` (hosts, origins,
  forwarded headers, body sizes, rate limits, static files);
* ``runs/`` (the run book: where each user's runs stand; ``local`` for one machine, ``redis`` for several),
  ``caps`` (the teacher's limits on a run), ``workbook`` (a workbook's id), ``progress`` (the view a
  stream shows), ``messages`` (no server path in anything a user sees);
* ``options`` (every setting, named once), ``asgi`` (the assembly), ``cli`` (the command line, run by
  ``__main__``), ``project/`` (templates and static files: task pane, manifest, icons).
"""

from __future__ import annotations

from typing import Any

_APP_NAMES = ("app", "fastapi_app", "settings")


def __getattr__(name: str) -> Any:
    """``app``, ``fastapi_app``, ``settings``: from ``asgi``, imported (and configured) on first use."""
    if name in _APP_NAMES:
        from excel_addin.server import asgi

        return getattr(asgi, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
