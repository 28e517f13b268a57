"""Turn any picture of one digit into an MNIST-style 28x28 image, the way MNIST's digits were made.

MNIST digits are white ink on black, size-normalised to fit a 20x20 box (keeping their aspect ratio,
anti-aliased) and placed in a 28x28 field so that their centre of mass is at the centre. A photo or scan of
a digit is usually dark ink on light paper, any size, anywhere in the frame; fed as-is (just resized to
28x28) the network sees something it was never trained on and gets about one in ten right. So:

1. grayscale (transparent pixels count as white paper);
2. invert when the background (median of the border pixels) is light, so ink is bright on black;
3. subtract the background level and stretch the ink to 0..1, dropping faint paper texture;
4. crop to the ink (ignoring stray specks that hold under 0.1% of the ink at either side);
5. resize so the longer side is 20 px, keeping the aspect ratio (Lanczos, anti-aliased);
6. paste into 28x28 with the ink's centre of mass at the centre (MNIST's is at 14.0, 14.0).

The result is 0..1 float32 with ink = 1; the classifier then normalises it with the training mean and std.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import EmptyImageError, ImageNotFoundError, UnreadableImageError, kind_of

BOX = 20  # MNIST's size-normalisation box
SIZE = 28
CENTRE = 14.0  # mean centre of mass of MNIST's training digits (row, column), in pixel-index units
MIN_CONTRAST = 0.08  # ink must differ from the paper by at least 8% of full scale
NOISE_FLOOR = 0.15  # after stretching, values below this are paper texture, not ink
MAX_SIDE = 1024  # larger pictures are reduced first (keeps big scans fast; the digit ends up 20 px anyway)
MAX_PIXELS = 25_000_000  # a 24-megapixel phone photo passes; a "decompression bomb" does not
MAX_FILE_BYTES = 64 * 2**20


def open_image(path: str | os.PathLike) -> Image.Image:
    """Open an image file, with errors that name the file and say what is wrong.

    The size is checked from the file's header before anything is decoded, so a huge picture or a
    "decompression bomb" (a small file claiming billions of pixels) is refused within bounded memory;
    a JPEG is decoded at a reduced scale when it is larger than needed.
    """
    p = Path(path)
    if not p.exists():
        raise ImageNotFoundError(
            f"image file not found: {p} (check the path; relative paths are from {Path.cwd()})"
        )
    if not p.is_file():
        raise ImageNotFoundError(f"{p} is {kind_of(p)}, not an image file")
    size = p.stat().st_size
    if size > MAX_FILE_BYTES:
        raise UnreadableImageError(
            f"{p} is {size / 2**20:,.0f} MB: too large for a picture of one digit "
            f"(at most {MAX_FILE_BYTES // 2**20} MB); crop or scale it down"
        )
    try:
        with warnings.catch_warnings():  # Pillow warns of big images; _check_pixels refuses them anyway
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(p)
        _check_pixels(img, p)
        img.draft("L", (MAX_SIDE, MAX_SIDE))  # JPEG: decode at 1/2, 1/4 or 1/8 scale when that suffices
        img.load()
    except UnreadableImageError:
        raise
    except Image.DecompressionBombError:
        raise UnreadableImageError(
            f"{p} claims hundreds of megapixels: far too large to read safely (at most "
            f"{MAX_PIXELS / 1e6:.0f} megapixels); crop or scale it down"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        raise UnreadableImageError(
            f"{p} is not a readable image ({type(exc).__name__}: {exc}); "
            "use a PNG, JPEG, BMP, GIF or TIFF file"
        ) from exc
    return img


def _check_pixels(img: Image.Image, path: Path) -> None:
    width, height = img.size
    if width * height > MAX_PIXELS:
        raise UnreadableImageError(
            f"{path} is {width:,} x {height:,} pixels ({width * height / 1e6:,.0f} megapixels): too large "
            f"to read safely (at most {MAX_PIXELS / 1e6:.0f} megapixels); crop or scale it down"
        )


def to_grayscale(img: Image.Image) -> np.ndarray:
    """float32 (H, W) in 0..1, 1 = white; transparency is composited onto white."""
    img = ImageOps.exif_transpose(img)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        arr = np.asarray(img, dtype=np.float32)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo) if hi > lo else np.zeros_like(arr)
        img = Image.fromarray((arr * 255).astype(np.uint8))
    gray = img.convert("L")
    if max(gray.size) > MAX_SIDE:
        gray.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.BOX)
    return np.asarray(gray, dtype=np.float32) / 255.0


def ink_map(gray: np.ndarray, source: str = "image", bright_ink: bool | None = None) -> np.ndarray:
    """Steps 2-3: ink in 0..1 on a 0 background; EmptyImageError when there is no ink to speak of.

    ``bright_ink`` says which way round the picture is (True: ink brighter than the paper, as in MNIST);
    None guesses it from the border, which is mostly paper.
    """
    border = np.concatenate([gray[0], gray[-1], gray[1:-1, 0], gray[1:-1, -1]])
    background = float(np.median(border))
    if bright_ink is None:
        bright_ink = background <= 0.5
    ink = gray.copy() if bright_ink else (1.0 - gray)
    paper = background if bright_ink else (1.0 - background)
    ink -= paper
    peak = float(ink.max()) if ink.size else 0.0
    if peak < MIN_CONTRAST:
        raise EmptyImageError(
            f"{source} looks blank: no ink stands out from the background (contrast {max(peak, 0):.1%}); "
            "use a picture of one dark digit on light paper (or light on dark)"
        )
    ink = np.clip(ink / peak, 0.0, 1.0)
    ink = np.clip((ink - NOISE_FLOOR) / (1.0 - NOISE_FLOOR), 0.0, 1.0)
    return ink


def _ink_span(mass: np.ndarray, tail: float = 0.001) -> tuple[int, int]:
    """First and last index holding the ink, ignoring up to ``tail`` of the mass at each end."""
    cum = np.cumsum(mass)
    total = cum[-1]
    lo = int(np.searchsorted(cum, total * tail, side="right"))
    hi = int(np.searchsorted(cum, total * (1 - tail), side="left"))
    return lo, max(lo, min(hi, len(mass) - 1))


def crop_to_ink(ink: np.ndarray) -> np.ndarray:
    """Step 4: the bounding box of the ink."""
    r0, r1 = _ink_span(ink.sum(axis=1))
    c0, c1 = _ink_span(ink.sum(axis=0))
    return ink[r0 : r1 + 1, c0 : c1 + 1]


def fit_box(ink: np.ndarray, box: int = BOX) -> np.ndarray:
    """Step 5: resize so the longer side is ``box`` pixels, keeping the aspect ratio."""
    h, w = ink.shape
    scale = box / max(h, w)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    resized = Image.fromarray(ink.astype(np.float32), mode="F").resize(
        (new_w, new_h), Image.Resampling.LANCZOS
    )
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)


def centre_by_mass(patch: np.ndarray, size: int = SIZE, centre: float = CENTRE) -> np.ndarray:
    """Step 6: paste ``patch`` into a size x size field with its centre of mass at ``centre``."""
    h, w = patch.shape
    mass = patch.sum()
    cy = (patch.sum(axis=1) * np.arange(h)).sum() / mass
    cx = (patch.sum(axis=0) * np.arange(w)).sum() / mass
    top = int(np.clip(round(centre - cy), 0, size - h))
    left = int(np.clip(round(centre - cx), 0, size - w))
    out = np.zeros((size, size), dtype=np.float32)
    out[top : top + h, left : left + w] = patch
    return out


def mnistify(gray: np.ndarray, source: str = "image", bright_ink: bool | None = None) -> np.ndarray:
    """A grayscale picture (0..1, any size; polarity as ``ink_map``) -> MNIST-style 28x28 float32, ink = 1."""
    if gray.ndim != 2 or min(gray.shape) < 1:
        raise EmptyImageError(f"{source} has no pixels")
    return centre_by_mass(fit_box(crop_to_ink(ink_map(gray, source, bright_ink))))


def preprocess_file(path: str | os.PathLike) -> np.ndarray:
    """Read an image file and return its MNIST-style 28x28 float32 (ink = 1)."""
    return mnistify(to_grayscale(open_image(path)), source=str(path))
