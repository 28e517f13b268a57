"""Draw the picture of the add-in's task pane: ``python docs/render_taskpane.py --out docs/img/taskpane.png``.

Starts the add-in server on loopback (``python -m excel_addin.server --http``), presses Train for two
workbooks (one trains, the other waits in the queue), and once the first is in its second epoch, takes
headless Chromium's picture of the task pane at 350 px wide, as the first workbook's pane shows it (the
empty page below it cut off). Then stops both and the server. Writes only the ``--out`` file (docs/img/
taskpane.png is the docs' picture); needs chromium and a few minutes of CPU (a real training).
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from ml.cli import Parser

PROG = "python docs/render_taskpane.py"


def training_settings() -> dict[str, str]:
    """The Train sheet's settings left empty, so the defaults apply (all 60,000 images, 15 epochs): long
    enough that the picture is taken while the run trains."""
    from excel_addin.testing.remote_book import DEFAULT_TRAIN_SETTINGS

    return {name: "" for name in DEFAULT_TRAIN_SETTINGS} | {"device": "cpu"}


def wait_for_status(url: str, workbook: str, prefix: str, timeout: float = 300.0) -> str:
    """The workbook's status line once it starts with ``prefix``."""
    import httpx

    from excel_addin.testing.waiting import wait_for

    seen = [""]

    def status() -> str | None:
        seen[0] = httpx.get(f"{url}/gradsheet/status", params={"workbook": workbook}).json()["status"]
        return seen[0] if seen[0].startswith(prefix) else None

    return wait_for(
        status, timeout, what=lambda: f"{workbook}: a status starting with {prefix!r}; last: {seen[0]!r}"
    )


def crop_bottom(path: Path, margin: int = 12) -> None:
    """Cut the empty page below the pane's last line (keeping ``margin`` pixels)."""
    from PIL import Image, ImageChops

    image = Image.open(path).convert("RGB")
    content = ImageChops.difference(image, Image.new("RGB", image.size, "white")).getbbox()
    if content:
        image.crop((0, 0, image.width, min(image.height, content[3] + margin))).save(path, optimize=True)


def build_parser() -> Parser:
    parser = Parser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--out", metavar="FILE", type=Path, required=True, help="the PNG to write")
    return parser


def main(argv: list[str] | None = None) -> int:
    out = build_parser().parse_args(argv).out
    from excel_addin.testing.chromium import screenshot
    from excel_addin.testing.live_server import LiveServer, press

    out.parent.mkdir(parents=True, exist_ok=True)
    run = training_settings()
    folder = Path(tempfile.mkdtemp(prefix="gradsheet-picture-"))
    server = LiveServer(folder, "--http").wait_ready()
    try:
        press(server.url, "train", "alice", **run)
        press(server.url, "train", "bob", **run)
        print(wait_for_status(server.url, "alice", "Training on cpu: epoch 2 of 15, step"))
        screenshot(f"{server.url}/taskpane.html?preview=picture&workbook=alice", out, width=350, height=1000)
        crop_bottom(out)
        print(f"wrote {out}")
        for workbook in ("bob", "alice"):
            press(server.url, "stop", workbook, **run)
        wait_for_status(server.url, "alice", "Stopped")
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
