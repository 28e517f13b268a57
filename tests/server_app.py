"""The add-in server for the tests, in this process and as a real server in a subprocess.

The in-process app (``client()``, FastAPI's TestClient) is configured before its first import: its runs
folder and run-lock state are temporary folders of this test session, trainings get one CPU thread, and
``testserver`` (the TestClient's host name) is one of the server's names.
``LiveServer`` and ``press`` (from ``excel_addin.testing.live_server``) run the real server in a subprocess.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import xlwings as xw
from quick_training import QUICK

from excel_addin.server import workbook
from excel_addin.server.options import PERIMETER_SETTINGS, RUNS_ENV, THREADS_ENV
from excel_addin.sheets import layout
from excel_addin.testing.live_server import LiveServer, press  # noqa: F401 - for the tests
from excel_addin.testing.remote_book import apply_actions, book_payload, only_sheets
from excel_addin.testing.waiting import wait_for  # noqa: F401 - for the tests
from ml.run_lock import STATE_ENV

ROOT = Path(__file__).resolve().parents[1]
SESSION = Path(tempfile.mkdtemp(prefix="gradsheet-server-tests-"))
atexit.register(shutil.rmtree, SESSION, ignore_errors=True)
os.environ[RUNS_ENV] = str(SESSION / "runs")
os.environ[THREADS_ENV] = "1"
os.environ[STATE_ENV] = str(SESSION / "state")
os.environ[PERIMETER_SETTINGS["allowed_hosts"].env] = TEST_HOST = "testserver"
import excel_addin.server.asgi  # noqa: E402, F401 - xlwings Server configured before any test imports it
from excel_addin.server.auth import LOCAL  # noqa: E402, F401 - the one user of a server without sign-in


def client():
    """A TestClient of the configured app (500s come back as responses, as Excel would get them)."""
    from fastapi.testclient import TestClient

    from excel_addin.server import app

    return TestClient(app, raise_server_exceptions=False)


def call_body(func_name: str, args: list, **extra: Any) -> dict[str, Any]:
    """What custom-functions-code.js posts for a cell: one 2-D array per argument (a scalar is [[x]])."""
    return {
        "client": "Office.js",
        "func_name": func_name,
        "args": args,
        "caller_address": "[Book1.xlsx]Sheet1!A1",
        "session_id": "test-session",
        "culture_info_name": "en-US",
        "date_format": "M/d/yyyy",
        "version": xw.__version__,
        "runtime": "1.4",
        **extra,
    }


DOCUMENT_SCRIPTS = ("train", "stop", "setup_gradsheet")  # the scripts that take the document's location


class Workbook:
    """A workbook in Excel as far as the server sees it: what the task pane sends, updated by the actions
    each button returns (as the task pane applies them)."""

    def __init__(self, client, document: str = "", **train_settings):
        self.client, self.document = client, document
        self.payload = book_payload({**QUICK, **train_settings}, client="Office.js")
        self.actions: list[dict] = []

    def press(self, script: str, expect: int = 200):
        meta = {m["function_name"]: m for m in self.client.get("/xlwings/custom-scripts-meta.json").json()}
        sent = only_sheets(self.payload, meta[script]["include"])
        if script in DOCUMENT_SCRIPTS:
            sent["args"] = [self.document]
        response = self.client.post(f"/xlwings/custom-scripts-call/{script}", json=sent)
        assert response.status_code == expect, response.text
        if expect == 200:
            self.actions = response.json()["actions"]
            self.payload = apply_actions(self.payload, self.actions)
        return response

    @property
    def book(self) -> xw.Book:
        """The workbook as it is now, as a remote-engine Book (what the next script would get)."""
        return xw.Book(json=self.payload)

    def cell(self, sheet: str, address: str):
        return self.book.sheets[sheet][address].value

    @property
    def status(self) -> str:
        """What the workbook's status shows: the server's word for it (its status cell streams it)."""
        return server_status(self.client, self.id)["status"]

    @property
    def id(self) -> str | None:
        return workbook.read_constant(self.book, layout.WORKBOOK_ID_NAME)


def server_status(client, wid: str) -> dict:
    return client.get("/gradsheet/status", params={"workbook": wid}).json()
