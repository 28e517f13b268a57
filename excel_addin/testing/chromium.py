"""Headless Chromium (Debian's ``chromium`` package) for pictures of web pages: the add-in's task pane."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def browser() -> str | None:
    """The first headless-capable browser on PATH, or None."""
    return next((path for path in map(shutil.which, BROWSERS) if path), None)


def screenshot(url: str, out: Path, width: int = 350, height: int = 700, wait_ms: int = 6000) -> Path:
    """A PNG of the page at ``url`` in a ``width`` x ``height`` window, after ``wait_ms`` of page time
    (its scripts run and fetch meanwhile)."""
    command = [
        browser() or "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
        "--no-first-run", f"--window-size={width},{height}", f"--virtual-time-budget={wait_ms}",
        f"--screenshot={out}", url,
    ]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    return out
