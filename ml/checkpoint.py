"""Checkpoints: everything to rebuild, use and resume a trained CNN, in a file torch loads with weights_only.

A checkpoint is a plain dict of tensors, numbers, strings and lists (never pickled objects), so loading one
with ``torch.load(weights_only=True)`` cannot run code from the file:

``format``, ``model`` (variant, stage channels, dropout, pool order: enough to rebuild the network),
``state_dict``,
``normalisation`` (mean, std used in training), ``epoch`` (epochs done), ``epochs`` (the run's total),
``config`` (the TrainConfig), ``history`` (per-epoch metric dicts), and for ``--resume`` ``optimizer`` and
``scheduler`` state. ``export_weights`` drops the resume state for a small file to ship.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from .model import VARIANTS, MnistCNN, model_from_spec

FORMAT = "gradsheet-mnist-cnn/1"


class CheckpointError(ValueError):
    """A file that is not a usable gradsheet MNIST checkpoint."""


def model_config(variant: str) -> dict[str, Any]:
    """The JSON-safe description of a model variant stored in checkpoints."""
    spec = VARIANTS[variant]
    return {
        "variant": variant,
        "stages": [list(s) for s in spec["stages"]],
        "dropout": float(spec["dropout"]),
        "pool_first": bool(spec.get("pool_first", False)),
        "strided_stem": bool(spec.get("strided_stem", False)),
        "separable_from": spec.get("separable_from"),
    }


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write a checkpoint atomically (temp file + rename) so a crash or Ctrl-C never leaves half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format": FORMAT, **payload}, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint safely (weights_only=True) and check it is one of ours."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many types for a bad file
        raise CheckpointError(
            f"{path} is not a readable model checkpoint ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT or "state_dict" not in ckpt:
        raise CheckpointError(f"{path} is not a gradsheet MNIST checkpoint (format {FORMAT} expected)")
    return ckpt


def model_from_checkpoint(ckpt: dict[str, Any]) -> MnistCNN:
    """Rebuild the network a checkpoint describes and load its weights (in eval mode, on the CPU)."""
    model = model_from_spec(ckpt["model"])
    model.load_state_dict(ckpt["state_dict"])
    return model.eval()


def export_weights(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """Copy a checkpoint without optimizer/scheduler state (about half the size): the file to ship."""
    ckpt = load_checkpoint(src)
    slim = {k: v for k, v in ckpt.items() if k not in ("optimizer", "scheduler", "format")}
    slim["state_dict"] = {k: v.detach().clone().contiguous() for k, v in slim["state_dict"].items()}
    return save_checkpoint(dst, slim)
