"""What the network sees: the first layer's filters and feature maps, and the class evidence maps.

For one picture of a digit, ``explain`` runs the classifier's network once and keeps:

* the prepared 28x28 input (what the preprocessing made of the picture);
* the first convolution's filters (its 3x3 weights, one small image per filter);
* the first layer's feature maps (after its BatchNorm and ReLU): where each filter found its pattern;
* the class evidence maps: how strongly each region of the picture speaks for each digit. In gradsheet's
  own models they are the 10 maps of the 1x1 convolution before global average pooling, so the score of a
  digit is exactly the mean of its map. For a network that pools first and then applies a linear layer
  (the assignment's s6), the same maps are the linear layer applied at every position (class activation
  maps), whose means again give the scores.

``plot_explanation`` draws all of it into one PNG; ``python -m ml.explain PICTURE`` (``ml.explain``) does
both from the command line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import nn

from .model import apply_layer
from .predict import Classifier, Prediction
from .preprocess import preprocess_file
from .run_dir import atomic_path


@dataclass(frozen=True)
class Explanation:
    """One picture as the network sees it (arrays are float32)."""

    source: str
    image: np.ndarray  # (28, 28), 0..1, ink = 1
    filters: np.ndarray  # (C, k, k) first-layer weights
    feature_maps: np.ndarray  # (C, H, W) first layer after BN and ReLU
    evidence: np.ndarray  # (10, h, w) class evidence maps
    prediction: Prediction


def _layers(model: nn.Module) -> list[nn.Module]:
    return (
        list(model.net) if hasattr(model, "net") else [m for m in model.modules() if not list(m.children())]
    )


def _first_block_end(layers: list[nn.Module]) -> int:
    """Index of the first ReLU (the end of the first conv -> BN -> ReLU block)."""
    return next(i for i, m in enumerate(layers) if isinstance(m, nn.ReLU))


def _evidence(layers: list[nn.Module], x: torch.Tensor) -> torch.Tensor:
    """Run the layers on ``x`` and return the (10, h, w) class evidence maps before global pooling."""
    kept = None
    for k, layer in enumerate(layers):
        global_pool = isinstance(layer, nn.AdaptiveAvgPool2d) or (
            isinstance(layer, nn.AvgPool2d) and x.shape[-1] <= _side(layer.kernel_size)
        )
        if global_pool:
            rest = [m for m in layers[k + 1 :] if isinstance(m, nn.Linear)]
            if rest:  # pool, then linear: apply the linear layer at every position (class activation maps)
                weight = rest[0].weight
                maps = torch.einsum("ck,nkhw->nchw", weight, x)
                if rest[0].bias is not None:
                    maps = maps + rest[0].bias[None, :, None, None]
                return maps[0]
            return x[0]
        x, kept = apply_layer(layer, x, kept)
    raise ValueError("the network has no global pooling layer: it has no class evidence maps")


def _side(size) -> int:
    return size[0] if isinstance(size, tuple) else int(size)


@torch.inference_mode()
def explain(
    classifier: Classifier, picture: str | os.PathLike | np.ndarray, source: str | None = None
) -> Explanation:
    """The filters, feature maps and class evidence of one picture (a file, or a prepared 28x28 array);
    ``source`` names it in the picture's title (default: the file's name, or "pixels")."""
    if isinstance(picture, np.ndarray):
        image, named = np.asarray(picture, dtype=np.float32).reshape(28, 28), "pixels"
    else:
        image, named = preprocess_file(picture), str(picture)
    source = source or named
    layers = _layers(classifier.model)
    x = torch.from_numpy(image).reshape(1, 1, 28, 28)
    x = (x - classifier.mean) / classifier.std
    first = next(m for m in layers if isinstance(m, nn.Conv2d))
    end = _first_block_end(layers)
    features, kept = x, None
    for layer in layers[: end + 1]:
        features, kept = apply_layer(layer, features, kept)
    evidence = _evidence(layers, x)
    return Explanation(
        source=source,
        image=image,
        filters=first.weight.detach()[:, 0].float().numpy(),
        feature_maps=features[0].float().numpy(),
        evidence=evidence.float().numpy(),
        prediction=Prediction.from_probs(classifier.probabilities(image[None])[0]),
    )


def plot_explanation(expl: Explanation, path: str | os.PathLike) -> Path:
    """One PNG: the input, each first-layer filter above its feature map, and the ten evidence maps."""
    channels = len(expl.filters)
    cols = max(channels, 10)
    fig = Figure(figsize=(1.9 + 0.95 * cols, 3.9))
    grid = fig.add_gridspec(3, cols + 1, width_ratios=[2.2] + [1] * cols, hspace=0.55, wspace=0.12)
    ax = fig.add_subplot(grid[:, 0])
    ax.imshow(expl.image, cmap="gray_r", vmin=0, vmax=1)
    digit, p = expl.prediction.digit, expl.prediction.confidence
    ax.set_title(f"input (28x28)\nseen as {digit}, p={p:.2f}", fontsize=9)
    ax.axis("off")
    rows = (
        ("filters", expl.filters, "RdBu_r", True),
        ("feature maps", expl.feature_maps, "magma", False),
        ("evidence", expl.evidence, "RdBu_r", True),
    )
    scores = expl.evidence.mean(axis=(1, 2))
    for r, (label, maps, cmap, centred) in enumerate(rows):
        limit = float(np.abs(maps).max()) or 1.0
        for c in range(len(maps)):
            ax = fig.add_subplot(grid[r, 1 + c])
            ax.imshow(maps[c], cmap=cmap, **({"vmin": -limit, "vmax": limit} if centred else {}))
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label, fontsize=8)
            if label == "filters":
                ax.set_title(f"{c + 1}", fontsize=7)
            elif label == "evidence":
                ax.set_title(
                    f"{c}: {scores[c]:+.1f}", fontsize=8, fontweight="bold" if c == digit else "normal"
                )
    fig.suptitle(
        f"What the network sees in {Path(expl.source).name}: first-layer filters and their feature maps;\n"
        "class evidence maps before global average pooling (red: for the digit, blue: against; title: mean)",
        fontsize=9,
        y=1.06,
    )
    FigureCanvasAgg(fig)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, bbox_inches="tight")
    return path
