"""Build ``workbook_template.xlsm`` from source: ``python -m excel_addin.build_template [--out PATH]``.

One pass with XlsxWriter writes every sheet (see ``excel_addin.layout`` for where things are), native
charts, buttons bound to the macros in ``gradsheet.bas``, and formulas with cached values computed by
``ml.backprop``, so any viewer shows numbers before Python runs. The VBA project is the xlwings
standalone project with our modules added source-only (``vba_project``). The build is reproducible: the
same sources give the same bytes (fixed creation date, deterministic VBA and zip), and a test checks the
committed workbook against a fresh build.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.util
import io
import re
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import xlsxwriter
import xlwings
from xlsxwriter.utility import xl_cell_to_rowcol, xl_rowcol_to_cell

from excel_addin import layout
from excel_addin.metric_charts import insert_metric_charts
from excel_addin.vba_project import VbaProject
from ml import backprop, config
from ml.events import METRIC_COLUMNS

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "workbook_template.xlsm"
MACRO_SOURCE = Path(__file__).with_name("gradsheet.bas")
MACRO_MODULE = "gradsheet"
UDF_MODULE = "excel_addin.udfs"
UDF_VBA_MODULE = "xlwings_udfs"
XLWINGS_STANDALONE = Path(xlwings.__file__).with_name("quickstart_standalone.xlsm")
CREATED = dt.datetime(2025, 1, 1, 0, 0, 0)  # fixed, so two builds are byte-identical
EPOCHS = layout.DEFAULT_EPOCHS  # rows of the per-rate formula tables and of the loss grid

# The example images the Classify sheet points at (paths relative to the workbook's folder).
CLASSIFY_EXAMPLES = tuple(f"examples/digits/{digit}.png" for digit in range(10))
NO_MODEL_YET = "train first"


def _example_predictions() -> list[tuple[int, list[float]] | None]:
    """What the shipped model says of each Classify example, for the cells' cached values.

    Probabilities are rounded to 3 decimals (what the cells show), so the build stays byte-identical on
    CPUs whose last float bits differ. An example or model that is missing caches "train first".
    """
    from ml.predict import PredictionError, load_classifier, shipped_model_path

    try:
        classifier = load_classifier(shipped_model_path())
    except PredictionError:
        return [None] * len(CLASSIFY_EXAMPLES)
    results: list[tuple[int, list[float]] | None] = []
    for path in CLASSIFY_EXAMPLES:
        try:
            prediction = classifier.predict(ROOT / path)
        except PredictionError:
            results.append(None)
            continue
        results.append((prediction.digit, [round(float(p), 3) for p in prediction.probs]))
    return results


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


def lr_col(key: str) -> int:
    """0-based column of a quantity in the per-rate tables."""
    return LR_KEYS.index(key)


def lr_first_data_row() -> int:
    """0-based row of epoch 0 in the per-rate tables."""
    return xl_cell_to_rowcol(layout.LR_TABLE_HEADER_CELL)[0] + 1


# ---- VBA ------------------------------------------------------------------------------------------


def _unavailable(name: str):
    """Any attribute of a stand-in module: a callable that fails loudly if anything ever calls it."""

    def call(*args, **kwargs):
        raise RuntimeError(f"{name} is a stand-in: Windows COM is not available while generating VBA")

    return call


@contextlib.contextmanager
def _windows_stand_ins() -> Iterator[types.ModuleType]:
    """Import ``xlwings.udfs`` on any OS: it imports pythoncom, pywintypes and win32com at module level,
    but generating the VBA wrappers touches none of them. Everything is restored afterwards."""
    names = ("pythoncom", "pywintypes", "win32com", "win32com.client", "xlwings.udfs")
    saved = {name: sys.modules.get(name) for name in names}
    try:
        for name in names[:-1]:
            if saved[name] is None:
                stand_in = types.ModuleType(name)
                stand_in.__getattr__ = _unavailable  # type: ignore[method-assign]  # any attribute
                sys.modules[name] = stand_in
        sys.modules.pop("xlwings.udfs", None)
        yield importlib.import_module("xlwings.udfs")
    finally:
        if saved["xlwings.udfs"] is None and "udfs" in vars(xlwings):
            delattr(xlwings, "udfs")
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def xlwings_udfs_source(module_name: str = UDF_MODULE) -> str:
    """The ``xlwings_udfs`` VBA module for ``module_name``, as xlwings' "Import Functions" writes it.

    The module is loaded afresh with xlwings' real UDF decorators (on Linux and macOS ``xw.func`` is a
    no-op), then ``xlwings.udfs.generate_vba_wrapper`` writes the wrappers.
    """
    spec = importlib.util.find_spec(module_name)
    if spec is None or spec.origin is None:
        raise ImportError(f"UDF module {module_name!r} not found")
    with _windows_stand_ins() as udfs:
        decorators = {"func": udfs.xlfunc, "arg": udfs.xlarg, "ret": udfs.xlret, "sub": udfs.xlsub}
        originals = {name: getattr(xlwings, name) for name in decorators}
        try:
            for name, decorator in decorators.items():
                setattr(xlwings, name, decorator)
            fresh = importlib.util.spec_from_file_location(f"_gradsheet_udfs_{id(spec)}", spec.origin)
            module = importlib.util.module_from_spec(fresh)
            fresh.loader.exec_module(module)
        finally:
            for name, original in originals.items():
                setattr(xlwings, name, original)
        out = io.StringIO()
        writer = udfs.VBAWriter(out)
        writer.writeln(f'Attribute VB_Name = "{UDF_VBA_MODULE}"')
        writer.writeln("'Autogenerated code by xlwings - changes will be lost with next import!")
        writer.writeln("""#Const App = "Microsoft Excel" 'Adjust when using outside of Excel""")
        udfs.generate_vba_wrapper(module_name, module, out, types.SimpleNamespace(Name=DEFAULT_OUT.name))
    return out.getvalue()


def embedded_xlwings_version(project: VbaProject) -> str:
    """The XLWINGS_VERSION constant of the project's xlwings module."""
    match = re.search(r'XLWINGS_VERSION As String = "([^"]+)"', project.source("xlwings"))
    if match is None:
        raise ValueError("the xlwings VBA module has no XLWINGS_VERSION constant")
    return match.group(1)


def vba_project_bytes() -> bytes:
    """vbaProject.bin: xlwings' standalone project (xlwings module, Dictionary class) minus its sample
    Module1, plus the gradsheet macros and the xlwings_udfs wrappers, all source-only."""
    project = VbaProject.from_xlsm(XLWINGS_STANDALONE)
    version = embedded_xlwings_version(project)
    if version != xlwings.__version__:
        # On macOS the module calls xlwings-<version>.applescript of the installed package.
        raise RuntimeError(f"xlwings package {xlwings.__version__} ships a VBA module of version {version}")
    if "Module1" in project.module_names:
        project.remove_module("Module1")
    project.set_module(MACRO_MODULE, MACRO_SOURCE.read_text(encoding="utf-8"))
    project.set_module(UDF_VBA_MODULE, xlwings_udfs_source())
    return project.to_bytes()


# ---- sheets ----------------------------------------------------------------------------------------


class _Formats:
    """The workbook's cell formats, created once."""

    def __init__(self, wb: xlsxwriter.Workbook):
        base = {"font_name": "Calibri", "font_size": 11}
        self.title = wb.add_format({**base, "bold": True, "font_size": 16, "font_color": "#1F3864"})
        self.subtitle = wb.add_format({**base, "italic": True, "font_color": "#595959"})
        self.section = wb.add_format({**base, "bold": True, "bottom": 1, "font_color": "#1F3864"})
        self.header = wb.add_format(
            {
                **base,
                "bold": True,
                "bg_color": "#1F3864",
                "font_color": "#FFFFFF",
                "align": "center",
                "valign": "vcenter",
                "border": 1,
                "text_wrap": True,
            }
        )
        self.group = wb.add_format(
            {**base, "bold": True, "bg_color": "#D9E1F2", "align": "center", "border": 1}
        )
        self.label = wb.add_format({**base})
        self.note = wb.add_format({**base, "italic": True, "font_color": "#7F7F7F"})
        self.input = wb.add_format({**base, "bg_color": "#FFF2CC", "border": 1, "num_format": "0.00##"})
        self.input_text = wb.add_format({**base, "bg_color": "#FFF2CC", "border": 1})
        self.input_int = wb.add_format({**base, "bg_color": "#FFF2CC", "border": 1, "num_format": "0"})
        self.status = wb.add_format({**base, "bold": True})
        self.percent = wb.add_format({**base, "num_format": "0.0%"})
        self.int = wb.add_format({**base, "num_format": "0", "align": "center"})
        self.value = wb.add_format({**base, "num_format": "0.000000"})
        self.loss = wb.add_format({**base, "num_format": "0.000000000"})
        self.small = wb.add_format({**base, "num_format": "0.000E+00"})
        self.code = wb.add_format({"font_name": "Consolas", "font_size": 10})


def _cell(name: str) -> tuple[int, int]:
    return xl_cell_to_rowcol(name)


def _abs(sheet: str, cell: str) -> str:
    row, col = _cell(cell)
    return f"{_quote(sheet)}!{xl_rowcol_to_cell(row, col, row_abs=True, col_abs=True)}"


def _quote(sheet: str) -> str:
    return f"'{sheet}'" if re.search(r"[^A-Za-z0-9_]", sheet) else sheet


def _range(sheet: str, first: str, last: str) -> str:
    r1, c1 = _cell(first)
    r2, c2 = _cell(last)
    return f"{_quote(sheet)}!{xl_rowcol_to_cell(r1, c1, True, True)}:{xl_rowcol_to_cell(r2, c2, True, True)}"


def udf_network_args() -> str:
    """The network arguments every BACKPROP_* formula passes: inputs, targets, weights, biases, output."""
    c = layout.BACKPROP_INPUT_CELLS
    s = layout.BACKPROP_SHEET
    return ",".join(
        (
            _range(s, c["i1"], c["i2"]),
            _range(s, c["t1"], c["t2"]),
            _range(s, c["w1"], c["w8"]),
            _range(s, c["b1"], c["b2"]),
            _abs(s, c["output"]),
        )
    )


def _deltas(table: np.ndarray, network: backprop.Network) -> np.ndarray:
    """δo1, δo2, δh1, δh2 per row of a trajectory (the sheet's backward-pass columns), from ml.backprop."""
    col = backprop.COLUMNS.index
    weights = [tuple(row[col(name)] for name in backprop.WEIGHT_NAMES) for row in table]
    return np.array([backprop.deltas(network, w, backprop.forward(network, w)) for w in weights])


def lr_row_formulas(row: int, epoch: int) -> dict[str, str]:
    """The formulas of one row (0-based ``row``) of a per-rate table: forward pass, error, chain rule.

    Epoch 0 takes the initial weights from the Backprop sheet; every later row updates the row above.
    """

    def at(key: str, r: int = row) -> str:
        return xl_rowcol_to_cell(r, lr_col(key))

    rate = xl_rowcol_to_cell(*_cell(layout.LR_RATE_CELL), row_abs=True, col_abs=True)
    f: dict[str, str] = {}
    for k, w in enumerate(backprop.WEIGHT_NAMES, start=1):
        if epoch == 0:
            f[w] = "=" + _abs(layout.BACKPROP_SHEET, layout.BACKPROP_INPUT_CELLS[w])
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
    f["engine_E_total"] = f"=BACKPROP_LOSS({rate},{at('epoch')},{udf_network_args()})"
    f["engine_diff"] = f"={at('engine_E_total')}-{at('E_total')}"
    return f


def _write_backprop(wb, ws, fmt: _Formats, curves: dict[float, np.ndarray]) -> None:
    network = backprop.Network()
    ws.set_column("A:A", 2)
    ws.set_column("B:B", 24)
    ws.set_column("C:C", 11)
    ws.set_column("D:D", 2)
    ws.set_column("E:E", 7)
    ws.set_column("F:K", 11)
    ws.write("B1", "Backpropagation by hand: a 2-2-2 network", fmt.title)
    macro, cell = next(iter(layout.BACKPROP_BUTTON_CELLS.items()))
    ws.set_row(_cell(cell)[0], 24)
    ws.insert_button(
        cell,
        {
            "macro": macro,
            "caption": "Refresh (Python)",
            "width": 150,
            "height": 24,
            "x_offset": 2,
            "y_offset": 1,
        },
    )
    ws.write(
        layout.BACKPROP_STATUS_CELL,
        "Yellow cells are inputs: edit them and every sheet recomputes.",
        fmt.subtitle,
    )

    c = layout.BACKPROP_INPUT_CELLS
    first_row = _cell(c["i1"])[0]
    ws.write(first_row - 1, 1, "Network", fmt.section)
    ws.write(first_row - 1, 2, "value", fmt.section)
    labels = {
        "i1": "input i1",
        "i2": "input i2",
        "t1": "target t1",
        "t2": "target t2",
        **{f"w{k}": f"initial weight w{k}" for k in range(1, 9)},
        "b1": "hidden bias b1 (fixed)",
        "b2": "output bias b2 (fixed)",
        "output": "output (sigmoid / softmax)",
    }
    values = {
        "i1": network.inputs[0],
        "i2": network.inputs[1],
        "t1": network.targets[0],
        "t2": network.targets[1],
        **{f"w{k}": network.weights[k - 1] for k in range(1, 9)},
        "b1": network.biases[0],
        "b2": network.biases[1],
    }
    for key, cell in c.items():
        row, col = _cell(cell)
        ws.write(row, col - 1, labels[key], fmt.label)
        if key == "output":
            ws.write_string(row, col, network.output, fmt.input_text)
            ws.data_validation(row, col, row, col, {"validate": "list", "source": list(backprop.OUTPUTS)})
        else:
            ws.write_number(row, col, values[key], fmt.input)
            ws.data_validation(
                row,
                col,
                row,
                col,
                {
                    "validate": "decimal",
                    "criteria": "between",
                    "minimum": -1e6,
                    "maximum": 1e6,
                    "error_title": "Not a number",
                    "error_message": "Enter a number.",
                },
            )
    for name, key in INPUT_NAMES.items():
        wb.define_name(name, "=" + _abs(layout.BACKPROP_SHEET, c[key]))

    rate_row = _cell(layout.BACKPROP_RATE_CELLS[0])[0]
    ws.write(rate_row - 1, 1, "Learning rates", fmt.section)
    ws.write(rate_row - 1, 2, "lr", fmt.section)
    for k, (cell, lr) in enumerate(zip(layout.BACKPROP_RATE_CELLS, layout.DEFAULT_RATES, strict=True)):
        row, col = _cell(cell)
        ws.write(row, col - 1, f"rate {k + 1} (sheet {layout.rate_sheet_name(lr)})", fmt.label)
        ws.write_number(row, col, lr, fmt.input)
        ws.data_validation(
            row,
            col,
            row,
            col,
            {
                "validate": "decimal",
                "criteria": ">",
                "value": 0,
                "error_title": "Not a rate",
                "error_message": "A learning rate is a positive number.",
            },
        )
    row, col = _cell(layout.BACKPROP_EPOCHS_CELL)
    ws.write(row, col - 1, f"epochs shown (0..{EPOCHS})", fmt.label)
    ws.write_number(row, col, EPOCHS, fmt.input_int)
    ws.data_validation(
        row,
        col,
        row,
        col,
        {
            "validate": "integer",
            "criteria": "between",
            "minimum": 0,
            "maximum": EPOCHS,
            "error_title": "Epochs",
            "error_message": f"A whole number from 0 to {EPOCHS}.",
        },
    )
    ws.write(row + 2, 1, "The grid calls the Python engine:", fmt.note)
    ws.write(row + 3, 1, "=BACKPROP_LOSS(lr, epoch, ...)", fmt.code)
    ws.write(row + 4, 1, "The LR sheets compute the same", fmt.note)
    ws.write(row + 5, 1, "with plain formulas, row by row.", fmt.note)

    # The loss grid: E_total from the Python engine, one column per rate.
    head_row, head_col = _cell(layout.BACKPROP_GRID_HEADER_CELL)
    ws.write(head_row - 2, head_col, "E_total by epoch from the Python engine (=BACKPROP_LOSS)", fmt.section)
    ws.write(head_row, head_col, "epoch", fmt.header)
    epochs_ref = _abs(layout.BACKPROP_SHEET, layout.BACKPROP_EPOCHS_CELL).split("!")[1]
    for j, (cell, lr) in enumerate(zip(layout.BACKPROP_RATE_CELLS, layout.DEFAULT_RATES, strict=True)):
        rate_ref = _abs(layout.BACKPROP_SHEET, cell).split("!")[1]
        ws.write_formula(
            head_row, head_col + 1 + j, f'="lr = "&TEXT({rate_ref},"0.0##")', fmt.header, f"lr = {lr:.1f}"
        )
    args = udf_network_args()
    for epoch in range(EPOCHS + 1):
        row = head_row + 1 + epoch
        ws.write_number(row, head_col, epoch, fmt.int)
        epoch_ref = xl_rowcol_to_cell(row, head_col, col_abs=True)
        for j, (cell, lr) in enumerate(zip(layout.BACKPROP_RATE_CELLS, layout.DEFAULT_RATES, strict=True)):
            rate_ref = _abs(layout.BACKPROP_SHEET, cell).split("!")[1]
            formula = f"=IF({epoch_ref}>{epochs_ref},NA(),BACKPROP_LOSS({rate_ref},{epoch_ref},{args}))"
            ws.write_formula(row, head_col + 1 + j, formula, fmt.loss, float(curves[lr][epoch]))

    chart = wb.add_chart({"type": "scatter", "subtype": "straight"})
    last_row = head_row + 1 + EPOCHS
    for j in range(len(layout.DEFAULT_RATES)):
        chart.add_series(
            {
                "name": [layout.BACKPROP_SHEET, head_row, head_col + 1 + j],
                "categories": [layout.BACKPROP_SHEET, head_row + 1, head_col, last_row, head_col],
                "values": [layout.BACKPROP_SHEET, head_row + 1, head_col + 1 + j, last_row, head_col + 1 + j],
                "line": {"width": 2},
            }
        )
    _style_loss_chart(chart, "Loss curves: E_total by epoch, six learning rates (Python engine)")
    ws.insert_chart(layout.BACKPROP_CHART_CELL, chart, {"x_scale": 1.6, "y_scale": 1.7})
    ws.freeze_panes(head_row + 1, 0)
    ws.set_landscape()
    ws.fit_to_pages(1, 0)
    ws.repeat_rows(head_row)
    ws.activate()


def _style_loss_chart(chart, title: str, log: bool = False) -> None:
    chart.set_title({"name": title, "name_font": {"size": 13, "bold": True}})
    chart.set_x_axis(
        {
            "name": "epoch (weight updates)",
            "min": 0,
            "max": EPOCHS,
            "major_unit": 10,
            "major_gridlines": {"visible": True, "line": {"color": "#E0E0E0"}},
        }
    )
    y = {
        "name": "E_total",
        "num_format": "0.000",
        "major_gridlines": {"visible": True, "line": {"color": "#E0E0E0"}},
    }
    if log:
        y.update({"log_base": 10, "num_format": "0.0E+0"})
    chart.set_y_axis(y)
    chart.set_legend({"position": "right"})


def _write_rate_sheet(wb, ws, fmt: _Formats, k: int, lr: float, table: np.ndarray) -> None:
    network = backprop.Network()
    deltas = _deltas(table, network)
    rate_cell = layout.BACKPROP_RATE_CELLS[k]
    ws.write("A1", f"Learning rate {lr}: {EPOCHS} epochs of gradient descent, one row per epoch", fmt.title)
    ws.write(
        "A2",
        "Every cell is a plain formula: the forward pass, the error, the backward pass (chain rule) and the "
        "update of the row above. Inputs come from the Backprop sheet.",
        fmt.subtitle,
    )
    row, col = _cell(layout.LR_RATE_CELL)
    ws.write(row, col - 2, "learning rate lr", fmt.label)
    ws.write_formula(row, col, "=" + _abs(layout.BACKPROP_SHEET, rate_cell), fmt.input, lr)
    ws.write(row, col + 1, f"(from {layout.BACKPROP_SHEET}!{rate_cell})", fmt.note)

    head_row, head_col = _cell(layout.LR_TABLE_HEADER_CELL)
    assert head_col == 0
    # Group titles above the header.
    groups: dict[str, list[int]] = {}
    for j, (_, _, group) in enumerate(LR_COLUMNS):
        groups.setdefault(group, []).append(j)
    for group, cols in groups.items():
        if group == "epoch":
            continue
        if len(cols) > 1:
            ws.merge_range(head_row - 1, cols[0], head_row - 1, cols[-1], GROUP_TITLES[group], fmt.group)
        else:
            ws.write(head_row - 1, cols[0], GROUP_TITLES[group], fmt.group)
    ws.set_row(head_row - 1, 18)
    ws.set_row(head_row, 30)
    for j, (_, header, group) in enumerate(LR_COLUMNS):
        ws.write(head_row, j, header, fmt.header)
        width = {"epoch": 7, "engine": 15}.get(group, 11)
        ws.set_column(j, j, width)
    col_fmt = {
        "weights": fmt.value,
        "forward": fmt.value,
        "error": fmt.loss,
        "delta": fmt.small,
        "gradient": fmt.small,
        "engine": fmt.loss,
    }
    col_index = {name: i for i, name in enumerate(backprop.COLUMNS)}
    first = head_row + 1
    for epoch in range(EPOCHS + 1):
        row = first + epoch
        formulas = lr_row_formulas(row, epoch)
        ws.write_number(row, 0, epoch, fmt.int)
        for j, (key, _, group) in enumerate(LR_COLUMNS):
            if key == "epoch":
                continue
            if key in col_index:
                value = float(table[epoch, col_index[key]])
            elif key in DELTA_NAMES:
                value = float(deltas[epoch, DELTA_NAMES.index(key)])
            elif key == "engine_E_total":
                value = float(table[epoch, col_index["E_total"]])
            else:
                value = 0.0
            ws.write_formula(row, j, formulas[key], col_fmt[group], value)
    # The Refresh macro writes the engine's E_total under this header (see excel_addin.macros).
    r_row, r_col = _cell(layout.LR_REFRESH_HEADER_CELL)
    ws.write(r_row - 1, r_col, "Refresh button (Python)", fmt.group)
    ws.write(r_row, r_col, "E_total (Python), filled by Refresh", fmt.header)
    ws.set_column(r_col, r_col, 20, fmt.loss)
    ws.set_column(r_col - 1, r_col - 1, 2)
    ws.freeze_panes(first, 1)
    ws.set_landscape()
    ws.fit_to_pages(1, 0)
    ws.repeat_rows(head_row - 1, head_row)


def _write_graphs(wb, ws, fmt: _Formats) -> None:
    ws.write("B1", "Loss curves from the formula sheets (plain Excel, no Python needed)", fmt.title)
    head_row = _cell(layout.LR_TABLE_HEADER_CELL)[0]
    first, last = head_row + 1, head_row + 1 + EPOCHS
    e_col, ep_col = lr_col("E_total"), lr_col("epoch")
    for log, anchor_row in ((False, 0), (True, 28)):
        chart = wb.add_chart({"type": "scatter", "subtype": "straight"})
        for lr in layout.DEFAULT_RATES:
            name = layout.rate_sheet_name(lr)
            chart.add_series(
                {
                    "name": name,
                    "categories": [name, first, ep_col, last, ep_col],
                    "values": [name, first, e_col, last, e_col],
                    "line": {"width": 2},
                }
            )
        title = "E_total by epoch for six learning rates" + (" (log scale)" if log else "")
        _style_loss_chart(chart, title, log=log)
        row, col = _cell(layout.GRAPHS_CHART_CELL)
        ws.insert_chart(row + anchor_row, col, chart, {"x_scale": 1.9, "y_scale": 1.75})
    ws.set_landscape()
    ws.fit_to_pages(1, 1)


def _write_train(wb, ws, fmt: _Formats) -> None:
    ws.set_column("A:A", 9)
    ws.set_column("B:B", 16)
    ws.set_column("C:C", 24)
    ws.set_column("D:G", 11)
    summary_col = _cell(layout.TRAIN_SUMMARY_HEADER_CELL)[1]
    for offset, width in enumerate((22, 16, 11)):  # Layer | Output shape | Params
        ws.set_column(summary_col + offset, summary_col + offset, width)
    ws.set_row(0, 26)
    captions = {"Train": "Train", "StopTraining": "Stop"}
    for macro, cell in layout.TRAIN_BUTTON_CELLS.items():
        ws.insert_button(
            cell,
            {
                "macro": macro,
                "caption": captions[macro],
                "width": 110,
                "height": 26,
                "x_offset": 2,
                "y_offset": 1,
            },
        )
    ws.write("E1", "Train a CNN on MNIST (60,000 handwritten digits) from this sheet", fmt.title)
    first_row = min(_cell(cell)[0] for cell in layout.TRAIN_SETTING_CELLS.values())
    ws.write(first_row - 1, 1, "Settings", fmt.section)
    ws.write(first_row - 1, 2, "value", fmt.section)
    for key, cell in layout.TRAIN_SETTING_CELLS.items():
        row, col = _cell(cell)
        if key in config.FIELDS:
            label, value, note = config.label_of(key), config.default_of(key), config.spec_of(key).help
        else:
            (label, note), value = layout.TRAIN_EXTRA_SETTINGS[key], ""
        ws.write(row, col - 1, label, fmt.label)
        if isinstance(value, str):
            ws.write_string(row, col, value, fmt.input_text)
        elif isinstance(value, float):
            ws.write_number(row, col, value, fmt.input)
        else:
            ws.write_number(row, col, value, fmt.input_int)
        ws.write_comment(row, col, note)
        choices = config.choices_of(key) if key in config.FIELDS else None
        if choices:
            ws.data_validation(row, col, row, col, {"validate": "list", "source": list(choices)})

    r, c = _cell(layout.TRAIN_STATUS_CELL)
    ws.write(r - 1, 1, "Run", fmt.section)
    ws.write(r - 1, 2, "", fmt.section)
    ws.write(r, c - 1, "status", fmt.label)
    ws.write(r, c, "Not started: press Train", fmt.status)
    r, c = _cell(layout.TRAIN_PROGRESS_CELL)
    ws.write(r, c - 1, "progress", fmt.label)
    ws.write_number(r, c, 0, fmt.percent)
    ws.conditional_format(
        r,
        c,
        r,
        c,
        {
            "type": "data_bar",
            "bar_color": "#5B9BD5",
            "min_type": "num",
            "min_value": 0,
            "max_type": "num",
            "max_value": 1,
        },
    )
    r, c = _cell(layout.TRAIN_DEVICE_CELL)
    ws.write(r, c - 1, "device", fmt.label)

    r, c = _cell(layout.TRAIN_SUMMARY_HEADER_CELL)
    for j, header in enumerate(("Layer", "Output shape", "Params")):
        ws.write(r, c + j, header, fmt.header)
    ws.write(r - 1, c, "Model summary (filled in when a run starts)", fmt.section)

    r, c = _cell(layout.TRAIN_METRICS_HEADER_CELL)
    ws.write(r - 1, c, "Metrics, one row per epoch (filled in during a run)", fmt.section)
    for j, header in enumerate(METRIC_COLUMNS):
        ws.write(r, c + j, header, fmt.header)
    metric_formats = {
        "epoch": fmt.int,
        "train_acc": fmt.percent,
        "test_acc": fmt.percent,
        "lr": fmt.small,
        "seconds": wb.add_format({"num_format": "0.0"}),
    }
    for j, name in enumerate(METRIC_COLUMNS):
        for row in range(r + 1, r + 1 + layout.TRAIN_METRICS_MAX_ROWS):
            ws.write_blank(row, c + j, None, metric_formats.get(name, fmt.value))

    insert_metric_charts(wb, ws, last_row=r + layout.TRAIN_METRICS_MAX_ROWS)
    ws.set_landscape()
    ws.fit_to_pages(1, 0)


def _write_classify(wb, ws, fmt: _Formats) -> None:
    ws.set_column("A:A", 32)
    ws.set_column("B:B", 16)
    ws.set_column("C:L", 8)
    ws.write("A1", "Classify handwritten digits with the trained CNN", fmt.title)
    ws.write(
        "A2",
        "Put the path of a PNG/JPG image in column A (relative to this workbook's folder or "
        "absolute). Column B predicts the digit, C:L give the probability of each digit.",
        fmt.subtitle,
    )
    ws.write(
        "A3",
        "Model: the Train sheet's model file if set, else model.pt in its output folder (once trained), "
        "else the model shipped with gradsheet.",
        fmt.note,
    )
    head = layout.CLASSIFY_FIRST_ROW - 2  # 0-based header row, just above the first path
    ws.write(head, 0, "image path", fmt.header)
    ws.write(head, 1, "predicted digit", fmt.header)
    for digit in range(10):
        ws.write(head, 2 + digit, f"p({digit})", fmt.header)
    model = _abs(layout.TRAIN_SHEET, layout.TRAIN_SETTING_CELLS["model_path"])
    run_folder = _abs(layout.TRAIN_SHEET, layout.TRAIN_SETTING_CELLS["out_dir"])
    probs = wb.add_format({"num_format": "0.000"})
    predictions = _example_predictions()
    for k, (path, cached) in enumerate(zip(CLASSIFY_EXAMPLES, predictions, strict=True)):
        row = layout.CLASSIFY_FIRST_ROW - 1 + k
        ref = xl_rowcol_to_cell(row, 0)
        ws.write_string(row, 0, path, fmt.input_text)
        model_arg = f"{model},{run_folder}"  # empty cells arrive as None: the function's defaults
        # Cached results for viewers: the shipped model's answers (the cells' default model).
        digit, probabilities = cached if cached else (NO_MODEL_YET, ["-"] * 10)
        ws.write_formula(row, 1, f"=CLASSIFY_IMAGE({ref},{model_arg})", fmt.int, digit)
        formula = f"{{=CLASSIFY_PROBS({ref},{model_arg})}}"
        ws.write_array_formula(row, 2, row, 11, formula, probs, probabilities[0])
        for col in range(3, 12):
            ws.write(row, col, probabilities[col - 2], probs)
    last = layout.CLASSIFY_FIRST_ROW - 1 + len(CLASSIFY_EXAMPLES) - 1
    ws.conditional_format(
        layout.CLASSIFY_FIRST_ROW - 1,
        2,
        last,
        11,
        {"type": "2_color_scale", "min_color": "#FFFFFF", "max_color": "#63BE7B"},
    )
    ws.set_landscape()
    ws.fit_to_pages(1, 0)


def _write_xlwings_conf(ws, fmt: _Formats) -> None:
    """xlwings reads key/value pairs from A1 down to the first empty row; a key here overrides the
    user's xlwings.conf, so only what this workbook needs is set (the Python interpreter stays the user's)."""
    ws.set_column("A:A", 18)
    ws.set_column("B:B", 20)
    ws.set_column("D:D", 100)
    ws.write("A1", "UDF Modules")
    ws.write("B1", UDF_MODULE)
    ws.write("A2", "Debug UDFs")
    ws.write_boolean("B2", False)
    notes = (
        "xlwings settings for this workbook (key in column A from A1, value in column B; no empty rows).",
        "Entries here override ~/.xlwings/xlwings.conf. The Python interpreter is not set here, so xlwings",
        "uses your own setting (xlwings config / add-in) or 'python' on the PATH. To pin one, add a row",
        "Interpreter_Win (Windows) or Interpreter_Mac (macOS) with the full path of python.",
        "The workbook's folder is added to PYTHONPATH, so excel_addin is found when the workbook sits in the",
        "gradsheet folder; otherwise pip install gradsheet into that Python.",
    )
    for k, note in enumerate(notes):
        ws.write(k, 3, note, fmt.note)


def build(out: str | Path = DEFAULT_OUT) -> Path:
    """Write the template to ``out`` and return its path."""
    out = Path(out)
    curves_tables = {lr: backprop.trajectory(lr, EPOCHS) for lr in layout.DEFAULT_RATES}
    e_col = backprop.COLUMNS.index("E_total")
    curves = {lr: table[:, e_col] for lr, table in curves_tables.items()}
    vba = vba_project_bytes()

    wb = xlsxwriter.Workbook(str(out), {"strings_to_numbers": False, "strings_to_formulas": False})
    wb.set_properties(
        {
            "title": "gradsheet",
            "subject": "Train neural networks from a spreadsheet",
            "author": "gradsheet",
            "comments": "Built by python -m excel_addin.build_template; do not edit by hand.",
            "created": CREATED,
        }
    )
    wb.set_calc_mode("auto")
    wb.add_vba_project(io.BytesIO(vba), is_stream=True)
    fmt = _Formats(wb)
    backprop_ws = wb.add_worksheet(layout.BACKPROP_SHEET)
    rate_sheets = [wb.add_worksheet(layout.rate_sheet_name(lr)) for lr in layout.DEFAULT_RATES]
    graphs_ws = wb.add_worksheet(layout.GRAPHS_SHEET)
    train_ws = wb.add_worksheet(layout.TRAIN_SHEET)
    classify_ws = wb.add_worksheet(layout.CLASSIFY_SHEET)
    conf_ws = wb.add_worksheet(layout.XLWINGS_CONF_SHEET)

    _write_backprop(wb, backprop_ws, fmt, curves)
    for k, (lr, ws) in enumerate(zip(layout.DEFAULT_RATES, rate_sheets, strict=True)):
        _write_rate_sheet(wb, ws, fmt, k, lr, curves_tables[lr])
        ws.set_tab_color("#8EA9DB")
    _write_graphs(wb, graphs_ws, fmt)
    _write_train(wb, train_ws, fmt)
    _write_classify(wb, classify_ws, fmt)
    _write_xlwings_conf(conf_ws, fmt)
    conf_ws.set_tab_color("#A6A6A6")
    wb.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(DEFAULT_OUT), help=f"output path (default: {DEFAULT_OUT.name})")
    args = parser.parse_args(argv)
    path = build(args.out)
    print(f"wrote {path} ({path.stat().st_size:,} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
