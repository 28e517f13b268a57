"""gradsheet as an Office add-in for Excel on Windows, macOS and the web, on xlwings Server.

``from excel_addin.server import app`` gives the ASGI app, configured by the package itself (``asgi``);
``python -m excel_addin.server`` serves it over https (``__main__``). Only the licence key comes from the
environment: ``XLWINGS_LICENSE_KEY=noncommercial`` for educational use (xlwings Server is PolyForm
Noncommercial). Importing this package does nothing else: the app is built on first access to ``app``, so
``python -m excel_addin.server`` can set its options before xlwings Server reads its settings.

Modules: ``asgi`` (configuration, the app), ``functions`` (custom functions), ``scripts`` (the task pane's
buttons) and ``buttons`` (what they do), ``training`` (the queue of trainings), ``progress`` (where a run
stands), ``workbook`` (a workbook's id), ``options``, ``perimeter`` (hosts, origins, limits, static files),
``routes`` (``/gradsheet/status``), ``project/`` (templates and static files: task pane, manifest, icons).
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
