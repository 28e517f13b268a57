"""A student at the add-in server, as Excel and the task pane would be one: cell calls, button presses and
streaming cells over socket.io, all signed in with the student's class code (or none, on a one-person
server). Every socket.io event the student's client receives is recorded, asked for or not, so a test or a
benchmark can count the ones meant for someone else."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import xlwings as xw

from excel_addin.testing.live_server import press

RESULT_EVENT = "xlwings:set-result-"


def call_body(func_name: str, args: list) -> dict[str, Any]:
    """What custom-functions-code.js posts for a cell: one 2-D array per argument (a scalar is [[x]])."""
    return {
        "client": "Office.js",
        "func_name": func_name,
        "args": [a if isinstance(a, list) else [[a]] for a in args],
        "caller_address": "[Book1.xlsx]Sheet1!A1",
        "session_id": "student",
        "culture_info_name": "en-US",
        "date_format": "M/d/yyyy",
        "version": xw.__version__,
        "runtime": "1.4",
    }


class Student:
    """One signed-in student (``code``: their class code; None: no sign-in) of the server at ``url``."""

    def __init__(self, url: str, name: str, code: str | None = None, provider: str = "classtoken"):
        self.url, self.name = url, name
        self.headers = {"Authorization": code, "Auth-Provider": provider} if code else {}
        self.auth = {"token": code or "", "provider": provider if code else ""}
        self.http = httpx.Client(base_url=url, headers=self.headers, timeout=120, verify=False)
        self.events: list[tuple[float, str, Any]] = []  # (arrival, event name, data): everything received
        self.asked: set[str] = set()  # the task keys of the streams this student opened
        self.changed = threading.Condition()
        self.sio = None

    # ---- cells and buttons ------------------------------------------------------------------------------

    def cell(self, func_name: str, *args: Any) -> list[list]:
        """A cell function's result as Excel gets it (HTTPStatusError for a refused call)."""
        response = self.http.post("/xlwings/custom-functions-call", json=call_body(func_name, list(args)))
        response.raise_for_status()
        return response.json()["result"]

    def press(self, script: str, workbook: str, **settings: Any) -> dict[str, Any]:
        """Press a task-pane button for the student's workbook ``workbook`` with these Train settings."""
        return press(self.url, script, workbook, self.headers, **settings)

    def status(self, workbook: str) -> dict[str, Any]:
        """What the task pane reads of the workbook's training."""
        response = self.http.get("/gradsheet/status", params={"workbook": workbook})
        response.raise_for_status()
        return response.json()

    # ---- streaming cells ----------------------------------------------------------------------------------

    def connect(self) -> Student:
        """Open the task pane's socket.io connection, recording every event that arrives."""
        import socketio

        self.sio = socketio.Client(reconnection=False)
        self.sio.on("*", self._receive)
        self.sio.connect(self.url, transports=["websocket"], auth=self.auth, wait_timeout=10)
        return self

    def _receive(self, event: str, data: Any = None) -> None:
        with self.changed:
            self.events.append((time.monotonic(), event, data))
            self.changed.notify_all()

    def stream(self, func_name: str, *args: Any) -> str:
        """Open a streaming cell (what Excel does for =GRADSHEET.TRAIN_PROGRESS(...)); its task key."""
        key = (
            f"{func_name}_{','.join(str(a) for a in args)}"  # custom-functions-code.js: `${funcName}_${args}`
        )
        body = {**call_body(func_name, list(args)), "task_key": key, "caller_address": None}
        self.asked.add(key)
        self.sio.emit("xlwings:function-call", body)
        return key

    def values(self, key: str) -> list[list[list]]:
        """Every value the stream ``key`` received, in order."""
        with self.changed:
            return self.values_locked(key)

    def foreign(self) -> list[str]:
        """The names of the events received for streams this student did not open."""
        with self.changed:
            return [
                e
                for _, e, _ in self.events
                if e.startswith(RESULT_EVENT) and e[len(RESULT_EVENT) :] not in self.asked
            ]

    def wait_value(self, key: str, predicate, timeout: float = 120.0) -> list[list]:
        """The first value of stream ``key`` that satisfies ``predicate``; at most ``timeout`` s."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                found = next((v for v in self.values_locked(key) if predicate(v)), None)
                if found is not None:
                    return found
                assert time.monotonic() < deadline, (
                    f"{self.name}: no such value of {key}: {self.values_locked(key)[-3:]}"
                )
                self.changed.wait(0.5)

    def values_locked(self, key: str) -> list[list[list]]:
        return [data["result"] for _, event, data in self.events if event == RESULT_EVENT + key]

    def close(self) -> None:
        if self.sio is not None:
            for key in self.asked:
                self.sio.emit("xlwings:cancel-task", {"task_key": key})
            self.sio.disconnect()
        self.http.close()
