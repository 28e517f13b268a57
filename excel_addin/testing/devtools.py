"""A page in headless Chromium driven over the DevTools protocol: for tests that type into a page, click,
read what it shows and what it stored, and see the requests it makes (``Page``).

Chromium (``chromium.browser()``) starts with its own temporary profile and a DevTools port it chooses
itself; ``websocket-client`` (which python-socketio's client uses too) carries the protocol's JSON.
"""

from __future__ import annotations

import itertools
import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import httpx
import websocket

from excel_addin.testing.chromium import browser
from excel_addin.testing.waiting import wait_for


class Page:
    """One tab of a fresh headless Chromium. ``requests`` collects every request the page sends (url,
    method, headers), in order."""

    def __init__(self, width: int = 350, height: int = 800):
        self.profile = Path(tempfile.mkdtemp(prefix="gradsheet-chromium-"))
        command = [
            browser() or "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--remote-debugging-port=0", f"--user-data-dir={self.profile}", f"--window-size={width},{height}",
            "about:blank",
        ]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.requests: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        try:
            self.socket = websocket.create_connection(self._page_socket_url(), timeout=30)
            self.send("Network.enable")
            self.send("Page.enable")
            self.send("Runtime.enable")
        except BaseException:
            self.close()
            raise

    def _page_socket_url(self) -> str:
        port_file = self.profile / "DevToolsActivePort"
        written = lambda: port_file.is_file() and port_file.read_text().strip()  # noqa: E731
        wait_for(written, 30, what="Chromium's DevTools port")
        port = port_file.read_text().split()[0]
        targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        return next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """A DevTools command's result (events that arrive meanwhile are recorded)."""
        message_id = next(self._ids)
        self.socket.send(json.dumps({"id": message_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == message_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self._event(message)

    def _event(self, message: dict[str, Any]) -> None:
        if message.get("method") == "Network.requestWillBeSent":
            request = message["params"]["request"]
            self.requests.append({key: request[key] for key in ("url", "method", "headers")})

    def before_each_page(self, source: str) -> None:
        """Run the JavaScript ``source`` in every page this tab opens from now on, before its own scripts."""
        self.send("Page.addScriptToEvaluateOnNewDocument", source=source)

    def open(self, url: str) -> None:
        self.send("Page.navigate", url=url)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (a promise is awaited)."""
        result = self.send("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait(self, expression: str, timeout: float = 30.0) -> Any:
        """The first truthy value of ``expression``, polled (a page still loading counts as falsy)."""

        def value() -> Any:
            try:
                return self.evaluate(expression)
            except RuntimeError:
                return None

        return wait_for(value, timeout, what=lambda: f"the page to make {expression} true", interval=0.2)

    def request_to(self, url_part: str, after: int = 0, timeout: float = 30.0) -> dict[str, Any]:
        """The first request the page sends to a URL containing ``url_part``, from ``requests[after]`` on."""

        def sent() -> dict[str, Any] | None:
            self.evaluate("1")  # reads the events that arrived meanwhile
            return next((r for r in self.requests[after:] if url_part in r["url"]), None)

        return wait_for(sent, timeout, what=f"the page to request {url_part}", interval=0.2)

    def close(self) -> None:
        if getattr(self, "socket", None) is not None:
            self.socket.close()
        self.process.kill()  # a throwaway browser: nothing of it is kept
        self.process.wait()
        shutil.rmtree(self.profile, ignore_errors=True)
