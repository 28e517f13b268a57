"""The MNIST CNNs as torch modules: ``MnistCNN(spec)`` builds a ``ModelSpec``'s layers into one
``nn.Sequential``, run layer by layer so that residual connections can add a kept input back.

What a network is (its layers, checked) is ``ml.spec``; gradsheet's named networks are ``ml.variants``
(``build_model(name)`` builds one); the layer summary with receptive fields is ``ml.summary``.
``ml.batchnorm.BatchNorm2d`` stands in for ``nn.BatchNorm2d`` (same parameters and state dict, a faster
CPU backward for channels_last tensors of 8 or 24 channels).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: N812 - the conventional name
from torch import nn

from .batchnorm import BatchNorm2d
from .spec import ModelSpec
from .variants import VARIANTS


def _module(layer: tuple) -> nn.Module:
    kind, args = layer[0], layer[1:]
    if kind == "conv":
        c_in, c_out, k, s, p, g, bias = args
        return nn.Conv2d(c_in, c_out, k, stride=s, padding=p, groups=g, bias=bias)
    if kind == "linear":
        return nn.Linear(args[0], args[1], bias=args[2])
    simple = {
        "bn": lambda: BatchNorm2d(args[0]),
        "relu": lambda: nn.ReLU(inplace=True),
        "maxpool": lambda: nn.MaxPool2d(args[0]),
        "avgpool": lambda: nn.AvgPool2d(args[0]),
        "gap": lambda: nn.AdaptiveAvgPool2d(1),
        "dropout": lambda: nn.Dropout(args[0]),
        "dropout2d": lambda: nn.Dropout2d(args[0]),
        "shortcut": Shortcut,
        "add": lambda: AddShortcut(args[0]),
    }
    return simple[kind]()


class Shortcut(nn.Identity):
    """The start of a residual connection: its input passes on unchanged and is kept (by ``apply_layer``)
    for the AddShortcut that closes the connection."""


class AddShortcut(nn.Module):
    """The end of a residual connection: adds the kept input to the block's output, max-pooled by
    ``pool`` when the block pooled (the block then learns a correction to its input: easier to train)."""

    def __init__(self, pool: int = 1):
        super().__init__()
        self.pool = pool

    def forward(self, x: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:
        return x + (F.max_pool2d(kept, self.pool) if self.pool > 1 else kept)

    def extra_repr(self) -> str:
        return f"pool={self.pool}"


def apply_layer(
    layer: nn.Module, x: torch.Tensor, kept: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One layer of a spec's network on ``x``: (its output, the residual connection's kept input).
    Flattens where a linear layer needs flat features, so the flattening appears in no layer table."""
    if isinstance(layer, nn.Linear) and x.dim() > 2:
        x = x.flatten(1)
    if isinstance(layer, AddShortcut):
        return layer(x, kept), None
    if x is kept and getattr(layer, "inplace", False):
        x = x.clone()  # an in-place ReLU right after a shortcut must not change the kept input
    x = layer(x)
    return x, x if isinstance(layer, Shortcut) else kept


class MnistCNN(nn.Module):
    """The network of a ModelSpec: its layers in one ``nn.Sequential``, run one by one (``apply_layer``)
    so residual connections can add a kept input back."""

    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.spec = spec
        self.net = nn.Sequential(*(_module(layer) for layer in spec.layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, 28, 28) normalised images -> (N, 10) logits."""
        kept = None
        for layer in self.net:
            x, kept = apply_layer(layer, x, kept)
        return x.flatten(1)


def build_model(variant: str = "default") -> MnistCNN:
    """The CNN of a named variant (see VARIANTS)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown model variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    return MnistCNN(VARIANTS[variant])


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
