"""Draw the add-in's icons (ribbon, add-in list): ``python docs/make_icons.py``.

A spreadsheet grid with a falling loss curve, at the sizes Office asks for (16, 32, 64, 80 px), into
``excel_addin/server/project/static/images/icons/gradsheet-<size>.png``. Drawn at 8x and scaled down, so
the small sizes stay crisp.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

ICONS = (
    Path(__file__).resolve().parents[1] / "excel_addin" / "server" / "project" / "static" / "images" / "icons"
)
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


def main() -> None:
    ICONS.mkdir(parents=True, exist_ok=True)
    for size in SIZES:
        draw(size).save(ICONS / f"gradsheet-{size}.png", optimize=True)
        print(ICONS / f"gradsheet-{size}.png")


if __name__ == "__main__":
    main()
