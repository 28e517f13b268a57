"""Headless Chromium (Debian's ``chromium`` package) for pictures of web pages (the add-in's task pane) and
for running a page's scripts (``page_text``: the custom-functions code the server sends to Excel)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
HEADLESS = ("--headless", "--no-sandbox", "--disable-gpu")


def browser() -> str | None:
    """The first headless-capable browser on PATH, or None."""
    return next((path for path in map(shutil.which, BROWSERS) if path), None)


def screenshot(url: str, out: Path, width: int = 350, height: int = 700, wait_ms: int = 6000) -> Path:
    """A PNG of the page at ``url`` in a ``width`` x ``height`` window, after ``wait_ms`` of page time
    (its scripts run and fetch meanwhile)."""
    command = [
        browser() or "chromium", *HEADLESS, "--hide-scrollbars",
        "--no-first-run", f"--window-size={width},{height}", f"--virtual-time-budget={wait_ms}",
        f"--screenshot={out}", url,
    ]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    return out


def page_text(url: str) -> str:
    """The text of the page at ``url``'s body once its scripts have run (Chromium's ``--dump-dom``)."""
    command = [browser() or "chromium", *HEADLESS, "--dump-dom", url]
    dom = subprocess.run(command, check=True, capture_output=True, text=True, timeout=120).stdout
    body = re.search(r"<body>(.*)</body>", dom, re.S)
    return body[1] if body else ""
