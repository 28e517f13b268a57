"""Prediction errors: each names the file and says what to do. All are ValueErrors (bad input, not bugs)."""

from __future__ import annotations

import os
import stat


class PredictionError(ValueError):
    """Base class of everything that can go wrong classifying an image file."""


class ImageNotFoundError(PredictionError):
    """The image path does not exist (or is not a file)."""


class UnreadableImageError(PredictionError):
    """The file exists but is not an image Pillow can decode."""


class EmptyImageError(PredictionError):
    """The image has no ink: one flat colour, or contrast too low to hold a digit."""


class ModelNotFoundError(PredictionError):
    """No trained model file where one was expected (or the file is not a model)."""


def kind_of(path: str | os.PathLike) -> str:
    """What ``path`` is, in words, for a message: "a folder", "a device", "a pipe (FIFO)", "a socket", "a
    file"; "nothing" when it does not exist. (A device or a pipe is never opened: reading /dev/zero never
    ends, and reading a FIFO waits for a writer.)"""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return "nothing"
    kinds = ((stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"),
             (stat.S_ISFIFO, "a pipe (FIFO)"), (stat.S_ISSOCK, "a socket"))  # fmt: skip
    return next((word for test, word in kinds if test(mode)), "a file")
