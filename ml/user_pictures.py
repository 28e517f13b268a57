"""MNIST test digits re-drawn the way a user's photo would look: real pictures for prediction tests and
the benchmark (how well the preprocessing undoes what a camera or a scanner does).

Each digit is inverted to dark ink on light paper, rescaled (smaller or larger than MNIST), placed off
centre on a bigger canvas, optionally on grey paper and in RGB, then written as a PNG file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

# (scale, canvas (w, h), top-left offset (x, y), paper level, ink level, RGB?)
STYLES = [
    (3.0, (120, 100), (10, 5), 255, 0, False),
    (1.5, (64, 64), (20, 12), 230, 40, True),
    (6.0, (260, 220), (70, 40), 200, 20, True),
    (0.9, (40, 40), (12, 3), 255, 60, False),
]


def user_style_png(img28: np.ndarray, path: Path, style: int = 0) -> Path:
    """Write one MNIST digit (uint8 28x28, white on black) as a user-style PNG; returns the path."""
    scale, canvas, (ox, oy), paper, ink, rgb = STYLES[style % len(STYLES)]
    frac = img28.astype(np.float32) / 255.0  # ink coverage
    drawn = paper + (ink - paper) * frac  # dark ink on light paper
    size = max(8, round(28 * scale))
    digit = Image.fromarray(drawn.astype(np.float32), mode="F").resize((size, size), Image.Resampling.BICUBIC)
    page = np.full((canvas[1], canvas[0]), float(paper), dtype=np.float32)
    d = np.asarray(digit)[: canvas[1] - oy, : canvas[0] - ox]
    page[oy : oy + d.shape[0], ox : ox + d.shape[1]] = d
    out = Image.fromarray(np.clip(page, 0, 255).astype(np.uint8), mode="L")
    if rgb:
        out = out.convert("RGB")
    out.save(path)
    return path


def as_is_28(path: Path) -> np.ndarray:
    """The naive input: the picture resized to 28x28 grayscale, no inversion, no normalisation (0..1)."""
    img = Image.open(path).convert("L").resize((28, 28), Image.Resampling.BILINEAR)
    return np.asarray(img, dtype=np.float32) / 255.0
