"""The teacher's caps on what one run may ask of a shared server (``options.CAPS``): its epochs and its
training images, checked when Train is pressed (the minutes are the run book's to enforce)."""

from __future__ import annotations

from excel_addin.server.options import options
from excel_addin.server.runs import Refused
from ml.config import N_TRAIN_IMAGES, TrainConfig


def check(config: TrainConfig) -> None:
    """Refuse (``Refused``, saying what to type instead) a run beyond the server's caps."""
    epochs, images = options().cap("max_epochs"), options().cap("max_images")
    if epochs is not None and config.epochs > epochs:
        raise Refused(f"this server trains at most {epochs} epochs per run: set epochs to {epochs} or fewer")
    asked = config.subset or N_TRAIN_IMAGES
    if images is not None and asked > images:
        raise Refused(
            f"this server trains on at most {images:,} images per run: set training images to {images:,} "
            "or fewer"
        )
