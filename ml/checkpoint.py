"""Checkpoints: everything to rebuild, use and resume a trained CNN, in a file torch loads with weights_only.

A checkpoint is a plain dict of tensors, numbers, strings and lists (never pickled objects), so loading one
with ``torch.load(weights_only=True)`` cannot run code from the file:

``format``, ``model`` (the ``ModelSpec`` as plain values), ``state_dict``, ``normalisation`` (mean, std used
in training), ``epoch`` (epochs done), ``epochs`` (the run's total), ``steps`` (per epoch), ``config`` (the
TrainConfig), ``history`` (per-epoch metric rows), and for ``--resume`` ``optimizer`` and ``scheduler``
state. ``export_weights`` drops the resume state for a small file to ship.

Loading checks what a file claims before trusting it: its size, its spec (absurd sizes are refused before
anything is allocated), that its weights fit the spec and are finite, and that its normalisation is usable.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import torch

from .model import MnistCNN
from .run_dir import atomic_path
from .spec import ModelSpec, ModelSpecError
from .variants import spec_from_dict

FORMAT = "gradsheet-mnist-cnn/2"  # /2: the model is a layer list; /1 stored stage settings
FORMATS = ("gradsheet-mnist-cnn/1", FORMAT)
MAX_BYTES = 64 * 2**20  # our checkpoints are well under 1 MB; a huge file is not one of ours
RESUME_KEYS = ("optimizer", "scheduler", "epoch", "epochs", "steps", "history")


class CheckpointError(ValueError):
    """A file that is not a usable gradsheet MNIST checkpoint (names the file and what is wrong)."""


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write a checkpoint atomically, so a crash or Ctrl-C never leaves half a file.

    The weights must be finite: a diverged model is never saved (ValueError).
    """
    path = Path(path)
    bad = non_finite_tensors(payload.get("state_dict", {}))
    if bad:
        raise ValueError(f"refusing to save non-finite weights ({', '.join(bad[:3])}) to {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, **payload}, tmp)
    return path


def non_finite_tensors(state_dict: dict[str, Any]) -> list[str]:
    """Names of the floating-point tensors holding NaN or infinity."""
    return [
        name
        for name, value in state_dict.items()
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not torch.isfinite(value).all()
    ]


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint safely (size checked, weights_only=True) and check it is one of ours."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise CheckpointError(
            f"{path} is {size / 2**20:,.0f} MB: too large to be a gradsheet model checkpoint"
        )
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        raise CheckpointError(
            f"{path} is not a readable model checkpoint ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") not in FORMATS:
        raise CheckpointError(f"{path} is not a gradsheet MNIST checkpoint (format {FORMAT} expected)")
    if not isinstance(ckpt.get("state_dict"), dict):
        raise CheckpointError(f"{path} has no weights (state_dict)")
    return ckpt


def spec_of(ckpt: dict[str, Any], source: str = "the checkpoint") -> ModelSpec:
    """The model spec a checkpoint describes (CheckpointError for a missing or malformed one)."""
    try:
        return spec_from_dict(ckpt["model"])
    except KeyError:
        raise CheckpointError(f"{source} does not say which model it holds (no 'model' entry)") from None
    except ModelSpecError as error:
        raise CheckpointError(f"{source} describes an unusable model: {error}") from None


def model_from_checkpoint(ckpt: dict[str, Any], source: str = "the checkpoint") -> MnistCNN:
    """Rebuild the network a checkpoint describes and load its weights (in eval mode, on the CPU).

    Raises CheckpointError when the spec is unusable, the weights do not fit it, or are not finite.
    """
    spec = spec_of(ckpt, source)
    state = ckpt["state_dict"]
    bad = non_finite_tensors(state)
    if bad:
        raise CheckpointError(
            f"{source} holds non-finite weights (NaN or infinity in {', '.join(bad[:3])}): the run that "
            "wrote it diverged; train again with a lower learning rate"
        )
    model = MnistCNN(spec)
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as error:
        first = str(error).strip().splitlines()
        raise CheckpointError(
            f"{source}'s weights do not fit its model spec ({first[1 if len(first) > 1 else 0].strip()})"
        ) from None
    return model.eval()


def normalisation_of(ckpt: dict[str, Any], source: str = "the checkpoint") -> tuple[float, float]:
    """The (mean, std) the model was trained with; CheckpointError for unusable values."""
    from .data import MNIST_MEAN, MNIST_STD

    norm = ckpt.get("normalisation", {"mean": MNIST_MEAN, "std": MNIST_STD})
    try:
        mean, std = float(norm["mean"]), float(norm["std"])
    except (KeyError, TypeError, ValueError):
        raise CheckpointError(f"{source} has a malformed normalisation entry: {norm!r}") from None
    if not (math.isfinite(mean) and math.isfinite(std) and std > 0):
        raise CheckpointError(
            f"{source} has an unusable normalisation (mean {mean}, std {std}): std must be a positive number"
        )
    return mean, std


def export_weights(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Copy a checkpoint without optimizer/scheduler state (about half the size): the file to ship."""
    ckpt = load_checkpoint(src)
    slim = {k: v for k, v in ckpt.items() if k not in ("optimizer", "scheduler", "format")}
    slim["state_dict"] = {k: v.detach().clone().contiguous() for k, v in slim["state_dict"].items()}
    return save_checkpoint(dst, slim)
