"""The add-in's ASGI app: xlwings Server, configured in code by importing this module.

``app`` (also ``from excel_addin.server import app``) serves the custom functions of ``functions``
(``=GRADSHEET.BACKPROP_LOSS(0.5, 10)``), the custom scripts of ``scripts`` (the task pane's buttons),
gradsheet's own task pane, manifest and static files from ``project/``, socket.io for the streaming
``TRAIN_PROGRESS``, the perimeter in front of it all (``perimeter``: hosts, body sizes, same-origin guard,
rate limits, safe static files) and ``/gradsheet/status`` for the task pane.
Only the licence key comes from the environment (``XLWINGS_LICENSE_KEY``; ``noncommercial`` for
educational use under PolyForm Noncommercial).

xlwings Server reads its settings once, when ``xlwings_server.config`` is first imported (init kwargs >
``XLWINGS_*`` environment > ``PROJECT_DIR/.env`` > ``PROJECT_DIR/pyproject.toml`` > defaults), and finds
the functions and scripts by ``import custom_functions`` / ``import custom_scripts``. So this module runs
before anything imports ``xlwings_server``: it sets the environment (forcing what defines the add-in,
defaulting what a deployment may tune), points ``PROJECT_DIR`` at the package's data-only ``project/``
folder (so the current folder's ``.env`` or ``templates/`` cannot change the app) and puts our two
modules into ``sys.modules`` under the names xlwings Server imports.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import socketio

from excel_addin.cells import FUNCTION_NAMESPACE
from excel_addin.server.auth import providers
from excel_addin.server.options import LICENSE_ENV, LICENSE_HINT, options

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR / "project"  # templates/ and static/ only: it goes on sys.path[0]
MANIFEST_ID = "0b3c64a2-58f3-4f8e-9d43-6a0e2b7c4d15"  # gradsheet's own add-in id (a uuid4)

# Settings that define the add-in: forced, so a stray variable or .env cannot change them.
FORCED_SETTINGS = {
    "XLWINGS_ON_SERVER": "true",  # xw.func & co. are the Office.js decorators
    "XLWINGS_PROJECT_DIR": str(PROJECT_DIR),
    "XLWINGS_FUNCTIONS_NAMESPACE": FUNCTION_NAMESPACE,
    "XLWINGS_ENVIRONMENT": "prod",  # any other environment renames the namespace GRADSHEET_<ENV>
    "XLWINGS_ENABLE_EXAMPLES": "false",
    "XLWINGS_ENABLE_WASM": "false",
    "XLWINGS_ENABLE_SOCKETIO": "true",  # TRAIN_PROGRESS streams over socket.io
    "XLWINGS_CDN_OFFICEJS": "false",  # office.js from this server: nothing from a CDN at run time
    "XLWINGS_ENABLE_HOTRELOAD": "false",
    "XLWINGS_MANIFEST_ID_PROD": MANIFEST_ID,
    "XLWINGS_PROJECT_NAME": "gradsheet",
}
# Settings a deployment may set itself (e.g. XLWINGS_HOSTNAME, XLWINGS_CORS_ALLOW_ORIGINS, auth).
DEFAULT_SETTINGS = {
    "XLWINGS_ENABLE_HTMX": "false",
    "XLWINGS_ENABLE_ALPINEJS_CSP": "false",
    "XLWINGS_ENABLE_BOOTSTRAP": "true",
    "XLWINGS_LOG_LEVEL": "WARNING",
    "XLWINGS_CUSTOM_FUNCTIONS_MAX_RETRIES": "1",  # a Python bug is not retried three times
}


def socketio_settings(redis_url: str | None) -> dict[str, str | None]:
    """xlwings Server's socket.io settings for a mode: with Redis (several web processes), its Redis
    manager, listening (not write-only), so that each web process serves its own sockets and gets the
    others' messages (rooms span the processes); without, none (None: unset a stray variable)."""
    return {
        "XLWINGS_SOCKETIO_MESSAGE_QUEUE_URL": redis_url,
        "XLWINGS_SOCKETIO_SERVER_APP": "true" if redis_url else None,
    }


def _configure() -> None:
    """Set xlwings Server's environment, refusing an order of imports that would leave it unset."""
    if "xlwings_server.config" in sys.modules:
        raise RuntimeError(
            "xlwings_server was imported before excel_addin.server, so its settings are already fixed: "
            "import excel_addin.server first (or use a fresh process)"
        )
    if not os.environ.get(LICENSE_ENV):
        raise RuntimeError(f"xlwings Server needs a licence key: {LICENSE_HINT}")
    xlwings = sys.modules.get("xlwings")
    if xlwings is not None and not getattr(xlwings, "__pro__", False):
        raise RuntimeError(
            f"xlwings was imported before {LICENSE_ENV} was set: set it before starting Python"
        )
    os.environ.update(FORCED_SETTINGS)
    for key, value in socketio_settings(options().redis).items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    for key, value in DEFAULT_SETTINGS.items():
        os.environ.setdefault(key, value)
    providers.configure(options())  # XLWINGS_AUTH_PROVIDERS, and auth.classtoken for xlwings to import
    sys.modules["custom_functions"] = importlib.import_module("excel_addin.server.functions")
    sys.modules["custom_scripts"] = importlib.import_module("excel_addin.server.scripts")


_configure()

from xlwings_server import main as _xlwings_server  # noqa: E402  (configured above)
from xlwings_server.config import settings  # noqa: E402
from xlwings_server.routers.socketio import sio as _sio  # noqa: E402
from xlwings_server.templates import env as _templates  # noqa: E402

from excel_addin.server import functions, perimeter, scripts, streams  # noqa: E402
from excel_addin.server.auth import routes as auth_routes  # noqa: E402
from excel_addin.server.options import perimeter_options  # noqa: E402
from excel_addin.server.routers import calls  # noqa: E402
from excel_addin.server.routers.classroom import router  # noqa: E402
from excel_addin.sheets import layout  # noqa: E402
from excel_addin.sheets.classify_sheet import grid_range  # noqa: E402

#: The FastAPI app inside (no socket.io, no CORS layer): where gradsheet's own routes go.
fastapi_app = _xlwings_server.app
fastapi_app.include_router(router, prefix=settings.app_path)
_signin = auth_routes.install(fastapi_app, settings.app_path)  # /gradsheet/me for the pane's sign-in
# cell calls measured and converted off the event loop; two cells with one streaming formula both update
calls.serve_calls(fastapi_app, settings.app_path)
streams.serve_per_cell_streams(fastapi_app, settings.app_path)
streams.install(_sio, functions)  # each stream's values to its user only

#: What the task pane's template and script need to know, named once (see project/templates/taskpane.html).
_templates.globals["gradsheet"] = {
    "id_name": layout.WORKBOOK_ID_NAME,
    "progress_formula": f"={settings.functions_namespace.upper()}.TRAIN_PROGRESS({layout.WORKBOOK_ID_NAME})",
    "status_url": f"{settings.app_path}{router.prefix}/status",
    "class_url": f"{settings.app_path}{router.prefix}/class",  # a teacher's view of the class
    "grid": grid_range(),  # the Classify sheet's drawing grid
    "explain_cell": layout.CLASSIFY_EXPLAIN_TARGET_CELL,  # which image What the network sees draws
    "signin": _signin,
    "buttons": {
        button.__name__: button.__xlscript__["name"]
        for button in (
            scripts.train,
            scripts.stop,
            scripts.setup_gradsheet,
            scripts.refresh_backprop,
            scripts.random_test_digit,
            scripts.clear_grid,
            scripts.what_the_network_sees,
        )
    },
}

#: What to serve: the perimeter (forwarded headers -> trusted hosts -> body limit -> same-origin guard ->
#: rate limit; safe static files inside) -> socket.io -> CORS -> FastAPI. With a message queue (--redis)
#: xlwings Server leaves socket.io to a process of its own; gradsheet serves it in every web process.
_served = _xlwings_server.main_app
if settings.socketio_message_queue_url:
    _served = socketio.ASGIApp(_sio, _served, socketio_path=f"{settings.app_path}/socket.io")
app = perimeter.install(
    _served,
    fastapi_app,
    settings,
    perimeter_options(),
    own_prefixes=[f"{settings.app_path}{router.prefix}/"],
)

__all__ = ["app", "fastapi_app", "settings", "PROJECT_DIR"]
