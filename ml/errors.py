"""Prediction errors: each names the file and says what to do. All are ValueErrors (bad input, not bugs)."""

from __future__ import annotations


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
