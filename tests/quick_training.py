"""The quick training the tests run where any real training will do, written once: a small model on 1,000
MNIST images on the CPU (about a second an epoch on a 2-core EPYC). ``QUICK`` holds it as a workbook's
Train settings (what a Train sheet sends; ``out_dir`` empty: the workbook's default folder), ``quick_config``
as the ``TrainConfig`` of a run in a given folder on one thread."""

from __future__ import annotations

import os
from typing import Any

from ml.config import TrainConfig

QUICK: dict[str, Any] = {
    "subset": 1000,
    "batch_size": 100,
    "model": "small",
    "device": "cpu",
    "lr": 0.05,
    "seed": 3,
    "out_dir": "",
}


def quick_config(out_dir: str | os.PathLike, **changes: Any) -> TrainConfig:
    """The quick training into ``out_dir`` on one CPU thread, with ``changes`` (e.g. ``epochs=3``)."""
    return TrainConfig(**{**QUICK, "threads": 1, **changes, "out_dir": str(out_dir)})
