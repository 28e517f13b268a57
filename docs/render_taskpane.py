"""Draw the README's picture of the add-in's task pane: ``python docs/render_taskpane.py``.

Starts the add-in server on loopback (``python -m excel_addin.server --http``), presses Train for two
workbooks (one trains, the other waits in the queue), and once the first is in its second epoch, takes
headless Chromium's picture of the task pane at 350 px wide, as the first workbook's pane shows it (the
empty page below it cut off). Then stops both and the server. Writes docs/img/taskpane.png.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import httpx
from PIL import Image, ImageChops

from excel_addin.testing.chromium import screenshot
from excel_addin.testing.live_server import LiveServer, press
from excel_addin.testing.remote_book import DEFAULT_TRAIN_SETTINGS
from excel_addin.testing.waiting import wait_for

OUT = Path(__file__).resolve().parent / "img" / "taskpane.png"
# the Train sheet's settings left empty, so the defaults apply (all 60,000 images, 15 epochs): long enough
# that the picture is taken while the run trains
RUN = {name: "" for name in DEFAULT_TRAIN_SETTINGS} | {"device": "cpu"}


def wait_for_status(url: str, workbook: str, prefix: str, timeout: float = 300.0) -> str:
    """The workbook's status line once it starts with ``prefix``."""
    seen = [""]

    def status() -> str | None:
        seen[0] = httpx.get(f"{url}/gradsheet/status", params={"workbook": workbook}).json()["status"]
        return seen[0] if seen[0].startswith(prefix) else None

    return wait_for(
        status, timeout, what=lambda: f"{workbook}: a status starting with {prefix!r}; last: {seen[0]!r}"
    )


def crop_bottom(path: Path, margin: int = 12) -> None:
    """Cut the empty page below the pane's last line (keeping ``margin`` pixels)."""
    image = Image.open(path).convert("RGB")
    content = ImageChops.difference(image, Image.new("RGB", image.size, "white")).getbbox()
    if content:
        image.crop((0, 0, image.width, min(image.height, content[3] + margin))).save(path, optimize=True)


def main() -> None:
    folder = Path(tempfile.mkdtemp(prefix="gradsheet-picture-"))
    server = LiveServer(folder, "--http").wait_ready()
    try:
        press(server.url, "train", "alice", **RUN)
        press(server.url, "train", "bob", **RUN)
        print(wait_for_status(server.url, "alice", "Training on cpu: epoch 2 of 15, step"))
        screenshot(f"{server.url}/taskpane.html?preview=picture&workbook=alice", OUT, width=350, height=1000)
        crop_bottom(OUT)
        print(f"wrote {OUT}")
        for workbook in ("bob", "alice"):
            press(server.url, "stop", workbook, **RUN)
        wait_for_status(server.url, "alice", "Stopped")
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
