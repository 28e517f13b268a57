"""A network's layer summary as a table: ``LayerRow`` (torchsummary's columns plus each layer's jump and
receptive field), printed as torchsummary prints it (``format_rows``) or as the cells a sheet shows
(``summary_table``: a header, one row per layer, the total).

The rows themselves come from one forward pass of the network (``ml.summary.summary_rows``); this module
only lays them out, so the sheets, the run's files and the console read them without torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple


class LayerRow(NamedTuple):
    """One row of a model summary: torchsummary's name, output shape and parameters, plus the side of
    the square output map, its jump (the input pixels between neighbouring outputs: the product of the
    strides so far) and its receptive field (the side of the input square that one output sees)."""

    layer: str
    shape: str
    params: int
    size: int | None
    jump: int
    rf: int


SUMMARY_COLUMNS = ("Layer (type)", "Output Shape", "Param #", "Jump", "RF")


def format_rows(rows: Sequence[Sequence], n_params: int) -> str:
    """A printable table of summary rows (LayerRow, or the lists an event or JSON file carries)."""
    rows = [LayerRow(*row) for row in rows]
    name_w = max(len(SUMMARY_COLUMNS[0]), *(len(r.layer) for r in rows)) + 2
    shape_w = max(len(SUMMARY_COLUMNS[1]), *(len(r.shape) for r in rows)) + 2
    line = "-" * (name_w + shape_w + 12 + 6 + 6)
    head = f"{SUMMARY_COLUMNS[0]:>{name_w}}{SUMMARY_COLUMNS[1]:>{shape_w}}{SUMMARY_COLUMNS[2]:>12}"
    out = [line, head + f"{SUMMARY_COLUMNS[3]:>6}{SUMMARY_COLUMNS[4]:>6}", "=" * len(line)]
    for r in rows:
        out.append(f"{r.layer:>{name_w}}{r.shape:>{shape_w}}{r.params:>12,}{r.jump:>6}{r.rf:>6}")
    out += ["=" * len(line), f"Total params: {n_params:,}", f"Trainable params: {n_params:,}"]
    out += ["Non-trainable params: 0", line]
    return "\n".join(out)


SUMMARY_HEADER = ("Layer", "Output shape", "Params", "Jump", "RF")  # the sheets' column titles


def summary_cells(row: Sequence[Any]) -> list:
    """A model-summary row (LayerRow) as a sheet's cells: layer, shape, params, jump, RF."""
    layer = LayerRow(*row)
    return [layer.layer, layer.shape, int(layer.params), int(layer.jump), int(layer.rf)]


def summary_table(summary: Sequence[Any], n_params: int | None, empty: Any = None) -> list[list[Any]]:
    """The summary's header, one row per layer and (with layers) the Total row; ``empty`` fills the
    Total row's empty cells (a cell function's result spells them "")."""
    rows = [list(SUMMARY_HEADER)]
    if summary:
        rows += [summary_cells(row) for row in summary]
        rows.append(["Total", empty, int(n_params or 0), empty, empty])
    return rows
