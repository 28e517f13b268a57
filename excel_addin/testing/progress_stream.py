"""``=GRADSHEET.TRAIN_PROGRESS(workbook)`` subscribed the way the task pane's custom-functions code does it:
a python-socketio client (``python-socketio[client]``) on a live server, keeping every value pushed with
its arrival time; for the tests and benchmarks.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import xlwings as xw

RESULT_EVENT = "xlwings:set-result-"


class ProgressStream:
    """One subscription to TRAIN_PROGRESS(workbook) on the server at ``url``: ``values`` (time, table)."""

    def __init__(self, url: str, workbook: str, auth: dict[str, str] | None = None):
        import socketio

        self.values: list[tuple[float, list[list]]] = []
        self.changed = threading.Condition()
        self.task_key = f"TRAIN_PROGRESS_{workbook}"  # the JS shim's key: `${funcName}_${args}`
        self.sio = socketio.Client(reconnection=False)
        self.sio.on(RESULT_EVENT + self.task_key, self._receive)
        auth = auth or {"token": "", "provider": ""}
        self.sio.connect(url, transports=["websocket"], auth=auth, wait_timeout=10)
        body = {
            "client": "Office.js",
            "version": xw.__version__,
            "runtime": "1.4",
            "func_name": "TRAIN_PROGRESS",
            "args": [[[workbook]]],
            "task_key": self.task_key,
            "caller_address": None,
        }
        self.sio.emit("xlwings:function-call", body)

    def _receive(self, data: dict[str, Any]) -> None:
        with self.changed:
            self.values.append((time.monotonic(), data["result"]))
            self.changed.notify_all()

    def statuses(self) -> list[str]:
        return [table[0][1] if len(table[0]) > 1 else table[0][0] for _, table in self.values]

    def wait_for(self, predicate: Callable[[list[list]], bool], timeout: float = 180.0) -> tuple[float, list]:
        """The first value (time, table) that satisfies ``predicate``; AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                found = next(((t, v) for t, v in self.values if predicate(v)), None)
                if found or time.monotonic() > deadline:
                    assert found, f"no such value within {timeout} s; statuses: {self.statuses()[-20:]}"
                    return found
                self.changed.wait(1.0)

    def close(self) -> None:
        try:
            self.sio.emit("xlwings:cancel-task", {"task_key": self.task_key})
        finally:
            self.sio.disconnect()


def status_of(table: list[list]) -> str:
    """The status text of a TRAIN_PROGRESS table (its first row's value)."""
    return table[0][1]


def metric_rows(table: list[list]) -> list[list]:
    """The epoch rows of a TRAIN_PROGRESS table (below the status rows and the metrics header)."""
    return [list(row) for row in table[4:]]
