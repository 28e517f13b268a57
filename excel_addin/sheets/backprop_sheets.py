"""The Backprop sheet (editable network, six rates, the Python engine's loss grid and chart) and the six
per-rate sheets that compute 100 epochs of gradient descent with plain formulas, one row per epoch.

Cached values come from ``ml.backprop``, so a viewer shows the engine's numbers before anything
recalculates; a spreadsheet that recalculates gets the same numbers from the formulas (tested with
LibreOffice).
"""

from __future__ import annotations

import numpy as np

from excel_addin.sheets import layout
from excel_addin.sheets.fallback import NEEDS_PYTHON, literal, or_else
from excel_addin.sheets.spec import (
    Axis,
    Button,
    Chart,
    PrintSetup,
    Ref,
    SheetSpec,
    a1,
    ref,
    sheet_range,
    sheet_ref,
)
from ml import backprop

EPOCHS = layout.DEFAULT_EPOCHS  # rows of the per-rate formula tables and of the loss grid

# Workbook-level names for the network's fixed data, so the LR sheets' formulas read like the maths.
INPUT_NAMES = {
    "input_1": "i1",
    "input_2": "i2",
    "target_1": "t1",
    "target_2": "t2",
    "bias_1": "b1",
    "bias_2": "b2",
    "output_fn": "output",
}
INPUT_LABELS = {
    "i1": "input i1",
    "i2": "input i2",
    "t1": "target t1",
    "t2": "target t2",
    **{f"w{k}": f"initial weight w{k}" for k in range(1, 9)},
    "b1": "hidden bias b1 (fixed)",
    "b2": "output bias b2 (fixed)",
    "output": "output (sigmoid / softmax)",
}

# ---- the per-rate formula table: key, header, group -------------------------------------------------
DELTA_NAMES = ("d_o1", "d_o2", "d_h1", "d_h2")
LR_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("epoch", "epoch", "epoch"),
    *((w, w, "weights") for w in backprop.WEIGHT_NAMES),
    *((n, n, "forward") for n in ("h1", "h2", "a_h1", "a_h2", "o1", "o2", "a_o1", "a_o2")),
    *((n, n, "error") for n in ("E1", "E2", "E_total")),
    ("d_o1", "δo1", "delta"),
    ("d_o2", "δo2", "delta"),
    ("d_h1", "δh1", "delta"),
    ("d_h2", "δh2", "delta"),
    *((g, f"∂E/∂w{g[-1]}", "gradient") for g in backprop.GRADIENT_NAMES),
    ("engine_E_total", "E_total (Python)", "engine"),
    ("engine_diff", "Python − formula", "engine"),
)
LR_KEYS = tuple(key for key, _, _ in LR_COLUMNS)
GROUP_TITLES = {
    "weights": "weights: w := w − lr·∂E/∂w (row above)",
    "forward": "forward pass",
    "error": "error",
    "delta": "backward: δ = ∂E/∂(pre-activation)",
    "gradient": "gradients ∂E_total/∂w",
    "engine": "ml.backprop (cell function)",
}
GROUP_STYLES = {
    "epoch": "int",
    "weights": "value",
    "forward": "value",
    "error": "loss",
    "delta": "small",
    "gradient": "small",
    "engine": "loss",
}
# the quantities that start a printed page (column blocks of whole groups, epoch repeated on each):
# weights | forward pass, error, deltas | gradients and the engine's columns
PAGE_STARTS = ("h1", "dE_dw1")
GROUP_WIDTHS = {"epoch": 7, "engine": 22}  # others: 11 (the engine's: room for NEEDS_PYTHON)


def lr_col(key: str) -> int:
    """0-based column of a quantity in the per-rate tables."""
    return LR_KEYS.index(key)


def lr_first_data_row() -> int:
    """0-based row of epoch 0 in the per-rate tables."""
    return ref(layout.LR_TABLE_HEADER_CELL)[0] + 1


def lr_cell(lr: float, key: str, epoch: int) -> str:
    """A quantity of a per-rate sheet at an epoch, from another sheet: ``'LR 0.5'!$S$7``."""
    return sheet_ref(layout.rate_sheet_name(lr), (lr_first_data_row() + epoch, lr_col(key)))


def input_names() -> dict[str, str]:
    """The workbook's defined names: name -> "=Backprop!$C$5"."""
    cells = layout.BACKPROP_INPUT_CELLS
    return {name: "=" + sheet_ref(layout.BACKPROP_SHEET, cells[key]) for name, key in INPUT_NAMES.items()}


def udf_network_args() -> str:
    """The network arguments every BACKPROP_* formula passes: inputs, targets, weights, biases, output."""
    c, s = layout.BACKPROP_INPUT_CELLS, layout.BACKPROP_SHEET
    return ",".join(
        (
            sheet_range(s, c["i1"], c["i2"]),
            sheet_range(s, c["t1"], c["t2"]),
            sheet_range(s, c["w1"], c["w8"]),
            sheet_range(s, c["b1"], c["b2"]),
            sheet_ref(s, c["output"]),
        )
    )


def deltas(table: np.ndarray, network: backprop.Network) -> np.ndarray:
    """δo1, δo2, δh1, δh2 per row of a trajectory (the sheet's backward-pass columns), from ml.backprop."""
    col = backprop.COLUMNS.index
    weights = [tuple(row[col(name)] for name in backprop.WEIGHT_NAMES) for row in table]
    return np.array([backprop.deltas(network, w, backprop.forward(network, w)) for w in weights])


def lr_row_formulas(row: int, epoch: int) -> dict[str, str]:
    """The formulas of one row (0-based ``row``) of a per-rate table: forward pass, error, chain rule.

    Epoch 0 takes the initial weights from the Backprop sheet; every later row updates the row above.
    """

    def at(key: str, r: int = row) -> str:
        return a1((r, lr_col(key)))

    rate = a1(layout.LR_RATE_CELL, absolute=True)
    f: dict[str, str] = {}
    for k, w in enumerate(backprop.WEIGHT_NAMES, start=1):
        if epoch == 0:
            f[w] = "=" + sheet_ref(layout.BACKPROP_SHEET, layout.BACKPROP_INPUT_CELLS[w])
        else:
            f[w] = f"={at(w, row - 1)}-{rate}*{at(f'dE_dw{k}', row - 1)}"
    softmax = 'output_fn="softmax"'
    f["h1"] = f"={at('w1')}*input_1+{at('w2')}*input_2+bias_1"
    f["h2"] = f"={at('w3')}*input_1+{at('w4')}*input_2+bias_1"
    f["a_h1"] = f"=1/(1+EXP(-{at('h1')}))"
    f["a_h2"] = f"=1/(1+EXP(-{at('h2')}))"
    f["o1"] = f"={at('w5')}*{at('a_h1')}+{at('w6')}*{at('a_h2')}+bias_2"
    f["o2"] = f"={at('w7')}*{at('a_h1')}+{at('w8')}*{at('a_h2')}+bias_2"
    f["a_o1"] = f"=IF({softmax},1/(1+EXP({at('o2')}-{at('o1')})),1/(1+EXP(-{at('o1')})))"
    f["a_o2"] = f"=IF({softmax},1/(1+EXP({at('o1')}-{at('o2')})),1/(1+EXP(-{at('o2')})))"
    f["E1"] = f"=IF({softmax},-target_1*LN({at('a_o1')}),0.5*(target_1-{at('a_o1')})^2)"
    f["E2"] = f"=IF({softmax},-target_2*LN({at('a_o2')}),0.5*(target_2-{at('a_o2')})^2)"
    f["E_total"] = f"={at('E1')}+{at('E2')}"
    f["d_o1"] = (
        f"=IF({softmax},{at('a_o1')}*(target_1+target_2)-target_1,"
        f"({at('a_o1')}-target_1)*{at('a_o1')}*(1-{at('a_o1')}))"
    )
    f["d_o2"] = (
        f"=IF({softmax},{at('a_o2')}*(target_1+target_2)-target_2,"
        f"({at('a_o2')}-target_2)*{at('a_o2')}*(1-{at('a_o2')}))"
    )
    f["d_h1"] = f"=({at('d_o1')}*{at('w5')}+{at('d_o2')}*{at('w7')})*{at('a_h1')}*(1-{at('a_h1')})"
    f["d_h2"] = f"=({at('d_o1')}*{at('w6')}+{at('d_o2')}*{at('w8')})*{at('a_h2')}*(1-{at('a_h2')})"
    f["dE_dw1"] = f"={at('d_h1')}*input_1"
    f["dE_dw2"] = f"={at('d_h1')}*input_2"
    f["dE_dw3"] = f"={at('d_h2')}*input_1"
    f["dE_dw4"] = f"={at('d_h2')}*input_2"
    f["dE_dw5"] = f"={at('d_o1')}*{at('a_h1')}"
    f["dE_dw6"] = f"={at('d_o1')}*{at('a_h2')}"
    f["dE_dw7"] = f"={at('d_o2')}*{at('a_h1')}"
    f["dE_dw8"] = f"={at('d_o2')}*{at('a_h2')}"
    engine = f"BACKPROP_LOSS({rate},{at('epoch')},{udf_network_args()})"
    f["engine_E_total"] = "=" + or_else(engine, literal(NEEDS_PYTHON))
    f["engine_diff"] = f'=IF(ISNUMBER({at("engine_E_total")}),{at("engine_E_total")}-{at("E_total")},"")'
    return f


# ---- the Backprop sheet ------------------------------------------------------------------------------


def loss_axes(log: bool = False) -> tuple[Axis, Axis]:
    """x: epochs 0..EPOCHS; y: E_total (log scale on request)."""
    x = Axis("epoch (weight updates)", minimum=0, maximum=EPOCHS, major_unit=10)
    y = (
        Axis("E_total", number_format="0.0E+0", log_base=10)
        if log
        else Axis("E_total", number_format="0.000")
    )
    return x, y


def loss_curves_chart(
    name: str, anchor: Ref, size: tuple[float, float], title: str, sheet: str, head: Ref, log: bool = False
) -> Chart:
    """A chart of the six loss curves of a table on ``sheet`` whose header is at ``head``: epochs 0..EPOCHS
    in the header's column, one rate per column to its right."""
    head_row, head_col = head
    x, y = loss_axes(log)
    return Chart(
        name=name,
        anchor=anchor,
        width=size[0],
        height=size[1],
        title=title,
        data_sheet=sheet,
        header_row=head_row,
        last_row=head_row + 1 + EPOCHS,
        x_col=head_col,
        y_first=head_col + 1,
        y_last=head_col + len(layout.DEFAULT_RATES),
        x_axis=x,
        y_axis=y,
    )


def backprop_sheet() -> SheetSpec:
    """Inputs, rates, the engine's loss grid (=BACKPROP_LOSS) and its chart, the Refresh button."""
    sheet = SheetSpec(layout.BACKPROP_SHEET)
    for col, width in (("A", 2), ("B", 24), ("C", 11), ("D", 2), ("E", 7)):
        sheet.column_width(col, width)
    sheet.column_width("F", 11, last="K")
    sheet.write("B1", "Backpropagation by hand: a 2-2-2 network", "title")
    ((macro, cell),) = layout.BACKPROP_BUTTON_CELLS.items()
    sheet.row_height(ref(cell)[0], 24)
    sheet.buttons.append(Button(ref(cell), macro, "Refresh (Python)", 150, 24))
    sheet.write(
        layout.BACKPROP_STATUS_CELL,
        "Yellow cells are inputs: edit them and every sheet recomputes.",
        "subtitle",
    )
    _network_inputs(sheet)
    _rates(sheet)
    _loss_grid(sheet)
    sheet.freeze = (ref(layout.BACKPROP_GRID_HEADER_CELL)[0] + 1, 0)
    # one page wide (inputs, grid and chart side by side), the grid's header on every page
    sheet.printing = PrintSetup(repeat_rows=(ref(layout.BACKPROP_GRID_HEADER_CELL)[0],) * 2)
    return sheet


def network_cell_values(network: backprop.Network | None = None) -> dict[str, float | str]:
    """A network's values by their input cell's key (layout.BACKPROP_INPUT_CELLS): i1 .. output. The
    default: the course's network, as the template ships it."""
    network = network or backprop.Network()
    return {
        "i1": network.inputs[0],
        "i2": network.inputs[1],
        "t1": network.targets[0],
        "t2": network.targets[1],
        **{f"w{k}": network.weights[k - 1] for k in range(1, 9)},
        "b1": network.biases[0],
        "b2": network.biases[1],
        "output": network.output,
    }


def _network_inputs(sheet: SheetSpec) -> None:
    values = network_cell_values()
    first_row = ref(layout.BACKPROP_INPUT_CELLS["i1"])[0]
    sheet.write_row((first_row - 1, 1), ("Network", "value"), "section")
    for key, cell in layout.BACKPROP_INPUT_CELLS.items():
        row, col = ref(cell)
        sheet.write((row, col - 1), INPUT_LABELS[key], "label")
        if key == "output":
            sheet.write(cell, values[key], "input_text")
            sheet.validate_list(cell, backprop.OUTPUTS)
        else:
            sheet.write(cell, values[key], "input")
            sheet.validate_number(
                cell,
                "decimal",
                "between",
                minimum=-1e6,
                maximum=1e6,
                error_title="Not a number",
                error_message="Enter a number.",
            )


def _rates(sheet: SheetSpec) -> None:
    rate_row = ref(layout.BACKPROP_RATE_CELLS[0])[0]
    sheet.write_row((rate_row - 1, 1), ("Learning rates", "lr"), "section")
    for k, (cell, lr) in enumerate(zip(layout.BACKPROP_RATE_CELLS, layout.DEFAULT_RATES, strict=True)):
        row, col = ref(cell)
        sheet.write((row, col - 1), f"rate {k + 1} (sheet {layout.rate_sheet_name(lr)})", "label")
        sheet.write(cell, lr, "input")
        sheet.validate_number(
            cell,
            "decimal",
            "greater_than",
            minimum=0,
            error_title="Not a rate",
            error_message="A learning rate is a positive number.",
        )
    row, col = ref(layout.BACKPROP_EPOCHS_CELL)
    sheet.write((row, col - 1), f"epochs shown (0..{EPOCHS})", "label")
    sheet.write(layout.BACKPROP_EPOCHS_CELL, EPOCHS, "input_int")
    sheet.validate_number(
        layout.BACKPROP_EPOCHS_CELL,
        "whole",
        "between",
        minimum=0,
        maximum=EPOCHS,
        error_title="Epochs",
        error_message=f"A whole number from 0 to {EPOCHS}.",
    )
    sheet.write((row + 2, 1), "The grid calls the Python engine:", "note")
    sheet.write((row + 3, 1), "=BACKPROP_LOSS(lr, epoch, ...)", "code")
    sheet.write((row + 4, 1), "The LR sheets compute the same", "note")
    sheet.write((row + 5, 1), "with plain formulas, row by row;", "note")
    sheet.write((row + 6, 1), "without Python the grid shows theirs.", "note")


def _loss_grid(sheet: SheetSpec) -> None:
    """E_total from the Python engine, one column per rate, epochs 0..EPOCHS, falling back to the LR sheets'
    formula values where the engine is not there (``fallback``); and its chart."""
    head_row, head_col = ref(layout.BACKPROP_GRID_HEADER_CELL)
    sheet.write(
        (head_row - 2, head_col), "E_total by epoch from the Python engine (=BACKPROP_LOSS)", "section"
    )
    sheet.write((head_row, head_col), "epoch", "header")
    epochs_ref = a1(layout.BACKPROP_EPOCHS_CELL, absolute=True)
    args = udf_network_args()
    for j, (cell, lr) in enumerate(zip(layout.BACKPROP_RATE_CELLS, layout.DEFAULT_RATES, strict=True)):
        rate_ref = a1(cell, absolute=True)
        sheet.formula(
            (head_row, head_col + 1 + j), f'="lr = "&TEXT({rate_ref},"0.0##")', f"lr = {lr:.1f}", "header"
        )
        curve = backprop.loss_curve(lr, EPOCHS)
        for epoch in range(EPOCHS + 1):
            row = head_row + 1 + epoch
            epoch_ref = f"${a1((row, head_col))}"
            engine = f"BACKPROP_LOSS({rate_ref},{epoch_ref},{args})"
            formula = f"=IF({epoch_ref}>{epochs_ref},NA(),{or_else(engine, lr_cell(lr, 'E_total', epoch))})"
            sheet.formula((row, head_col + 1 + j), formula, float(curve[epoch]), "loss")
    for epoch in range(EPOCHS + 1):
        sheet.write((head_row + 1 + epoch, head_col), epoch, "int")
    sheet.charts.append(
        loss_curves_chart(
            "backprop_loss",
            ref(layout.BACKPROP_CHART_CELL),
            (480 * 1.6 * 0.75, 288 * 1.7 * 0.75),
            "Loss curves: E_total by epoch, six learning rates",
            layout.BACKPROP_SHEET,
            (head_row, head_col),
        )
    )


# ---- the per-rate sheets -----------------------------------------------------------------------------


def rate_sheet(k: int, lr: float) -> SheetSpec:
    """Rate k of the Backprop sheet: EPOCHS+1 rows of forward pass, error, chain rule and update."""
    sheet = SheetSpec(layout.rate_sheet_name(lr), tab_color="#8EA9DB")
    rate_cell = layout.BACKPROP_RATE_CELLS[k]
    # the texts above the table start in column B and end before the first page break (column A, the
    # epoch, is printed on every page)
    sheet.write("B1", f"Learning rate {lr}: {EPOCHS} epochs of gradient descent, one row per epoch", "title")
    sheet.write(
        "B2",
        "Every cell is a plain formula: forward pass, error, chain rule, update of the row above.",
        "subtitle",
    )
    row, col = ref(layout.LR_RATE_CELL)
    sheet.write((row, col - 1), "learning rate", "label")
    sheet.formula(layout.LR_RATE_CELL, "=" + sheet_ref(layout.BACKPROP_SHEET, rate_cell), lr, "input")
    sheet.write((row, col + 1), f"(from {layout.BACKPROP_SHEET}!{rate_cell}, like every input)", "note")
    _rate_table_header(sheet)
    _rate_table(sheet, lr)
    _refresh_column(sheet)
    head_row = ref(layout.LR_TABLE_HEADER_CELL)[0]
    sheet.freeze = (head_row + 1, 1)
    sheet.printing = PrintSetup(
        repeat_rows=(head_row - 1, head_row),
        repeat_columns=(0, 0),
        column_breaks=[lr_col(key) for key in PAGE_STARTS],
    )
    return sheet


def _rate_table_header(sheet: SheetSpec) -> None:
    head_row, head_col = ref(layout.LR_TABLE_HEADER_CELL)
    assert head_col == 0
    groups: dict[str, list[int]] = {}
    for j, (_, _, group) in enumerate(LR_COLUMNS):
        groups.setdefault(group, []).append(j)
    for group, cols in groups.items():
        if group == "epoch":
            continue
        if len(cols) > 1:
            sheet.merge((head_row - 1, cols[0]), (head_row - 1, cols[-1]), GROUP_TITLES[group], "group")
        else:
            sheet.write((head_row - 1, cols[0]), GROUP_TITLES[group], "group")
    sheet.row_height(head_row - 1, 18)
    sheet.row_height(head_row, 30)
    for j, (_, header, group) in enumerate(LR_COLUMNS):
        sheet.write((head_row, j), header, "header")
        sheet.column_width(j, GROUP_WIDTHS.get(group, 11))


def _rate_table(sheet: SheetSpec, lr: float) -> None:
    network = backprop.Network()
    table = backprop.trajectory(lr, EPOCHS, network)
    backward = deltas(table, network)
    col_index = {name: i for i, name in enumerate(backprop.COLUMNS)}
    first = lr_first_data_row()
    for epoch in range(EPOCHS + 1):
        row = first + epoch
        formulas = lr_row_formulas(row, epoch)
        sheet.write((row, 0), epoch, "int")
        for j, (key, _, group) in enumerate(LR_COLUMNS):
            if key == "epoch":
                continue
            if key in col_index:
                value = float(table[epoch, col_index[key]])
            elif key in DELTA_NAMES:
                value = float(backward[epoch, DELTA_NAMES.index(key)])
            elif key == "engine_E_total":
                value = float(table[epoch, col_index["E_total"]])
            else:
                value = 0.0
            sheet.formula((row, j), formulas[key], value, GROUP_STYLES[group])


def _refresh_column(sheet: SheetSpec) -> None:
    """The column the Refresh button fills with the engine's E_total (``excel_addin.buttons``)."""
    r_row, r_col = ref(layout.LR_REFRESH_HEADER_CELL)
    sheet.write((r_row - 1, r_col), "Refresh button (Python)", "group")
    sheet.write((r_row, r_col), "E_total (Python), filled by Refresh", "header")
    sheet.column_width(r_col, 20, style="loss")
    sheet.column_width(r_col - 1, 2)
