"""A network's layer summary, measured: torchsummary's rows (name, output shape, parameters) with each
layer's output size, jump and receptive field, from one dummy forward pass (``summary_rows``); printed
(``format_summary``) or as a table (``ml.summary_table``).
"""

from __future__ import annotations

import torch
from torch import nn

from .model import MnistCNN, count_parameters
from .spec import INPUT_SIZE, ModelSpec
from .summary_table import LayerRow, format_rows


def _window(module: nn.Module, n_in: int | None) -> tuple[int, int] | None:
    """(effective kernel, stride) of a module that looks at a spatial window; None for the others."""

    def first(v):
        return v[0] if isinstance(v, tuple) else v

    if isinstance(module, nn.Conv2d | nn.MaxPool2d | nn.AvgPool2d):
        k, d = first(module.kernel_size), first(getattr(module, "dilation", 1))
        return (k - 1) * d + 1, first(module.stride or module.kernel_size)
    if isinstance(module, nn.AdaptiveAvgPool2d | nn.AdaptiveMaxPool2d | nn.Linear) and n_in:
        return n_in, n_in  # one output sees the whole input map
    return None


def summary_rows(model: nn.Module, input_size: tuple[int, ...] = INPUT_SIZE) -> list[LayerRow]:
    """The rows torchsummary prints for ``model`` (every module but the model and Sequential/ModuleList
    containers, numbered in the order they run), with each layer's output size, jump and receptive field,
    computed from the modules' kernels and strides during one dummy forward pass."""
    rows: list[LayerRow] = []
    state = {"n": input_size[-1], "jump": 1, "rf": 1}

    def hook(module: nn.Module, inputs, output) -> None:
        x = inputs[0] if inputs else None
        n_in = x.shape[-1] if x is not None and x.dim() == 4 else None
        window = _window(module, n_in if not isinstance(module, nn.Linear) else state["n"])
        if window is not None:
            k, s = window
            state["rf"] += (k - 1) * state["jump"]
            state["jump"] *= s
        state["n"] = output.shape[-1] if output.dim() == 4 else None
        params = sum(p.numel() for p in module.parameters(recurse=False) if p.requires_grad)
        shape = "[-1, " + ", ".join(str(s) for s in output.shape[1:]) + "]"
        name = f"{type(module).__name__}-{len(rows) + 1}"
        rows.append(LayerRow(name, shape, params, state["n"], state["jump"], state["rf"]))

    hooks = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if m is not model and not isinstance(m, nn.Sequential | nn.ModuleList)
    ]
    was_training = model.training
    try:
        model.eval()
        param = next(model.parameters())
        with torch.no_grad():
            model(torch.zeros(1, *input_size, device=param.device, dtype=param.dtype))
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return rows


def format_summary(model: nn.Module, input_size: tuple[int, ...] = INPUT_SIZE) -> str:
    """torchsummary's table with two more columns (jump, receptive field) and the total."""
    return format_rows(summary_rows(model, input_size), count_parameters(model))


def layer_table(spec: ModelSpec) -> list[LayerRow]:
    """The summary rows of a spec's network (built on the CPU, never trained)."""
    return summary_rows(MnistCNN(spec))
