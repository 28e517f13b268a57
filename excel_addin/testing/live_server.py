"""The add-in server (``python -m excel_addin.server``) in a subprocess on loopback, and its task-pane
buttons pressed over HTTP the way the pane presses them: for the tests and the README's picture of the pane.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from excel_addin.sheets import layout
from excel_addin.testing.remote_book import book_payload, defined_name, only_sheets
from excel_addin.testing.waiting import wait_for
from ml.run_lock import STATE_ENV

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LiveServer:
    """``python -m excel_addin.server`` in a subprocess; ``url`` once it answers. ``env``: more environment
    variables (e.g. PYTHONPATH to serve a copy of the package); ``port``: the port (default a free one;
    given, a server restarted after a crash is reached where its clients were)."""

    def __init__(
        self,
        folder: Path,
        *options: str,
        scheme: str = "http",
        env: dict[str, str] | None = None,
        port: int | None = None,
    ):
        self.folder = folder
        self.port = port or free_port()
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        args = ["--port", str(self.port), "--runs", str(folder / "runs"), "--threads", "1", *options]
        env = {**os.environ, "PYTHONPATH": str(ROOT), "XLWINGS_LICENSE_KEY": "noncommercial", **(env or {})}
        env[STATE_ENV] = str(folder / "state")
        self.log = open(folder / "server.log", "w+")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "excel_addin.server", *args],
            cwd=folder,
            env=env,
            stdout=self.log,
            stderr=self.log,
        )

    def wait_ready(self, timeout: float = 60.0) -> LiveServer:
        """Self, once the server answers; RuntimeError with its output when it exits first."""

        def answers() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited early:\n{self.output()}")
            try:
                return httpx.get(self.url + "/", timeout=1, verify=False).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(answers, timeout, what=lambda: f"the server to answer:\n{self.output()}", interval=0.2)
        return self

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return (self.folder / "server.log").read_text()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def press(
    url: str, script: str, workbook: str, headers: dict[str, str] | None = None, **settings: Any
) -> dict[str, Any]:
    """Press a task-pane button of a live server for a workbook with the Train ``settings`` whose id is
    ``workbook`` (set by hand, as a teacher may), signed in with ``headers`` (``class_codes.signed_in``);
    the script's response."""
    payload = book_payload({"out_dir": "", **settings}, client="Office.js")
    payload["names"] = [defined_name(layout.WORKBOOK_ID_NAME, f'="{workbook}"')]
    sent = {**only_sheets(payload, layout.TRAIN_SHEET), "args": [f"https://school.example/{workbook}.xlsx"]}
    address = f"{url}/xlwings/custom-scripts-call/{script}"
    response = httpx.post(address, json=sent, headers=headers, timeout=60, verify=False)
    response.raise_for_status()
    return response.json()
