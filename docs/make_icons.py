"""Draw the add-in's icons (ribbon, add-in list) into a folder.

``python docs/make_icons.py --out-dir excel_addin/server/project/static/images/icons`` redraws the add-in's.

A spreadsheet grid with a falling loss curve, at the sizes Office asks for (16, 32, 64, 80 px), as
``gradsheet-<size>.png`` in ``--out-dir`` (the add-in's icons are those of the folder above). Drawn at 8x and
scaled down, so the small sizes stay crisp.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image, ImageDraw

from ml.cli import Parser

SIZES = (16, 32, 64, 80)
GREEN, LIGHT, CURVE = (33, 115, 70), (232, 243, 236), (230, 120, 30)


def draw(size: int) -> Image.Image:
    scale = 8
    big = size * scale
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    pen = ImageDraw.Draw(image)
    pad = big // 16
    pen.rounded_rectangle([pad, pad, big - pad, big - pad], radius=big // 6, fill=GREEN)
    inner = [big * 0.2, big * 0.2, big * 0.8, big * 0.8]
    pen.rectangle(inner, fill=LIGHT)
    for k in (1, 2):  # the grid
        x = inner[0] + (inner[2] - inner[0]) * k / 3
        y = inner[1] + (inner[3] - inner[1]) * k / 3
        pen.line([x, inner[1], x, inner[3]], fill=GREEN, width=max(scale, big // 60))
        pen.line([inner[0], y, inner[2], y], fill=GREEN, width=max(scale, big // 60))
    curve = [
        (
            inner[0] + (inner[2] - inner[0]) * t / 20,
            inner[3] - (inner[3] - inner[1]) * (0.1 + 0.8 / (1 + 3 * t / 20) ** 2),
        )
        for t in range(21)
    ]
    pen.line(curve, fill=CURVE, width=big // 14, joint="curve")
    return image.resize((size, size), Image.Resampling.LANCZOS)


def build_parser() -> Parser:
    parser = Parser(prog="python docs/make_icons.py", description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", metavar="DIR", type=Path, required=True, help="the icons' folder")
    return parser


def main(argv: list[str] | None = None) -> int:
    folder = build_parser().parse_args(argv).out_dir
    folder.mkdir(parents=True, exist_ok=True)
    for size in SIZES:
        draw(size).save(folder / f"gradsheet-{size}.png", optimize=True)
        print(folder / f"gradsheet-{size}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
