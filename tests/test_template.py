"""workbook_template.xlsm: built reproducibly, its VBA equal to the sources, and its sheets, formulas,
cached values, buttons and charts where excel_addin.sheets.layout says (read back with openpyxl and
oletools)."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
import xlwings
from oletools.olevba import VBA_Parser
from xlsxwriter.utility import xl_cell_to_rowcol, xl_col_to_name

from excel_addin.classic import macros
from excel_addin.sheets import backprop_sheets as bs
from excel_addin.sheets import layout
from excel_addin.sheets.classify_sheet import CLASSIFY_EXAMPLES, NO_PROBABILITY
from excel_addin.sheets.fallback import NEEDS_PYTHON
from excel_addin.xlsm import template, vba
from ml import backprop
from ml.events import METRIC_COLUMNS

COMMITTED = template.COMMITTED
REBUILD = f"{template.BUILD_COMMAND} --out {COMMITTED.name}"  # the committed template is written when named


@pytest.fixture(scope="module")
def modules(built) -> dict[str, str]:
    parser = VBA_Parser(str(built))
    try:
        return {stream.split("/")[-1]: code for _, stream, _, code in parser.extract_macros()}
    finally:
        parser.close()


def _lines(text: str) -> list[str]:
    """Source lines without VBA's Attribute lines, line ends normalised, trailing blank lines dropped."""
    lines = [line for line in text.replace("\r\n", "\n").split("\n") if not line.startswith("Attribute VB_")]
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def _subs(source: str) -> dict[str, str]:
    """Sub name -> body of every Sub in a VBA module."""
    return {
        m.group(1): m.group(2)
        for m in re.finditer(r"^Sub (\w+)\(\)\n(.*?)^End Sub", source.replace("\r\n", "\n"), re.M | re.S)
    }


# ---- reproducibility --------------------------------------------------------------------------------


@pytest.mark.slow
def test_two_builds_are_byte_identical(built, tmp_path):
    again = template.build(tmp_path / "again.xlsm")
    assert again.read_bytes() == built.read_bytes()


def test_committed_template_equals_a_fresh_build(built):
    assert COMMITTED.exists(), f"workbook_template.xlsm is missing: run {REBUILD}"
    assert COMMITTED.read_bytes() == built.read_bytes(), (
        f"workbook_template.xlsm is stale: run {REBUILD} and commit it"
    )


def test_is_a_macro_enabled_workbook(built):
    with zipfile.ZipFile(built) as archive:
        types = archive.read("[Content_Types].xml").decode()
        assert "application/vnd.ms-excel.sheet.macroEnabled.main+xml" in types
        assert "xl/vbaProject.bin" in archive.namelist()


# ---- VBA ------------------------------------------------------------------------------------------


def test_every_module_is_present(modules):
    assert set(modules) == {
        "ThisWorkbook",
        "Sheet1",
        "Sheet2",
        "xlwings",
        "Dictionary",
        "gradsheet",
        "xlwings_udfs",
    }


def test_macro_module_equals_its_bas_source(modules):
    assert _lines(modules["gradsheet"]) == _lines(macros.bas_source())


def test_udf_module_equals_xlwings_generated_wrappers(modules):
    assert _lines(modules["xlwings_udfs"]) == _lines(vba.xlwings_udfs_source())


def test_embedded_xlwings_module_is_the_installed_release(modules):
    version = re.search(r'XLWINGS_VERSION As String = "([^"]+)"', modules["xlwings"]).group(1)
    assert version == xlwings.__version__ == "0.37.8"  # pyproject pins xlwings==0.37.8
    shipped = Path(xlwings.__file__).with_name("xlwings.bas").read_text(encoding="cp1252")
    assert _lines(modules["xlwings"]) == _lines(shipped)
    # On macOS the module runs the AppleScript of exactly this version, which the package ships.
    assert Path(xlwings.__file__).with_name(f"xlwings-{version}.applescript").exists()


def test_each_layout_macro_is_a_sub_that_runs_its_python_function(modules):
    subs = _subs(modules["gradsheet"])
    assert set(subs) == set(layout.MACROS)
    for sub, function in layout.MACROS.items():
        assert f'RunPython "import excel_addin.classic.macros as m; m.{function}()"' in subs[sub]
        assert callable(getattr(macros, function))


@pytest.mark.slow
def test_every_cell_function_used_has_a_vba_wrapper(formulas, modules):
    wrapped = set(re.findall(r"^Function (\w+)\(", modules["xlwings_udfs"].replace("\r\n", "\n"), re.M))
    used: set[str] = set()
    for ws in formulas.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                value = cell.value.text if hasattr(cell.value, "text") else cell.value
                if isinstance(value, str) and value.startswith("="):
                    used |= set(re.findall(r"\b((?:BACKPROP|CLASSIFY)_[A-Z]+)\(", value))
    assert {"BACKPROP_LOSS", "CLASSIFY_IMAGE", "CLASSIFY_PROBS"} <= used
    assert used <= wrapped, f"formulas call functions without a VBA wrapper: {sorted(used - wrapped)}"


def _buttons(path: Path) -> dict[str, list[tuple[str, str]]]:
    """Sheet name -> [(caption, macro)] of the form buttons, read from the sheets' VML drawings."""
    out: dict[str, list[tuple[str, str]]] = {}
    with zipfile.ZipFile(path) as archive:
        workbook = archive.read("xl/workbook.xml").decode()
        rels = archive.read("xl/_rels/workbook.xml.rels").decode()
        targets = dict(re.findall(r'Id="(rId\d+)"[^>]*Target="([^"]+)"', rels))
        targets |= {k: v for v, k in re.findall(r'Target="([^"]+)"[^>]*Id="(rId\d+)"', rels)}
        for name, rid in re.findall(r'<sheet name="([^"]+)" sheetId="\d+" r:id="(rId\d+)"', workbook):
            sheet_path = "xl/" + targets[rid]
            sheet_rels_path = sheet_path.replace("worksheets/", "worksheets/_rels/") + ".rels"
            sheet = archive.read(sheet_path).decode()
            match = re.search(r'<legacyDrawing r:id="(rId\d+)"', sheet)
            if not match:
                continue
            sheet_rels = archive.read(sheet_rels_path).decode()
            vml_target = re.search(rf'Id="{match.group(1)}"[^>]*Target="([^"]+)"', sheet_rels).group(1)
            vml = archive.read("xl/" + vml_target.replace("../", "")).decode()
            for shape in re.findall(r"<v:shape .*?</v:shape>", vml, re.S):
                macro = re.search(r"<x:FmlaMacro>\[0\]!(\w+)</x:FmlaMacro>", shape)
                if macro:
                    caption = re.sub(
                        r"<[^>]+>", "", re.search(r"<v:textbox.*?</v:textbox>", shape, re.S).group(0)
                    )
                    out.setdefault(name.replace("&amp;", "&"), []).append((caption.strip(), macro.group(1)))
    return out


def test_buttons_call_macros_that_exist(built, modules):
    buttons = _buttons(built)
    assert sorted(buttons[layout.TRAIN_SHEET]) == [("Stop", "StopTraining"), ("Train", "Train")]
    assert buttons[layout.BACKPROP_SHEET] == [("Refresh (Python)", "RefreshBackprop")]
    assert sorted(buttons[layout.CLASSIFY_SHEET]) == [
        ("Clear", "ClearGrid"),
        ("Random test digit", "RandomTestDigit"),
        ("What the network sees", "WhatTheNetworkSees"),
    ]
    subs = _subs(modules["gradsheet"])
    for sheet_buttons in buttons.values():
        for _, macro in sheet_buttons:
            assert macro in subs


# ---- sheets, formulas and cached values ----------------------------------------------------------


def test_sheets_in_order(formulas):
    assert formulas.sheetnames == [
        layout.BACKPROP_SHEET,
        layout.DERIVATION_SHEET,
        *(layout.rate_sheet_name(lr) for lr in layout.DEFAULT_RATES),
        layout.GRAPHS_SHEET,
        layout.TRAIN_SHEET,
        layout.CLASSIFY_SHEET,
        layout.XLWINGS_CONF_SHEET,
    ]
    assert [layout.rate_sheet_name(lr) for lr in layout.DEFAULT_RATES] == [
        "LR 2.0",
        "LR 1.0",
        "LR 0.8",
        "LR 0.5",
        "LR 0.2",
        "LR 0.1",
    ]


def test_backprop_inputs_hold_the_engine_defaults(formulas):
    ws = formulas[layout.BACKPROP_SHEET]
    net = backprop.Network()
    c = layout.BACKPROP_INPUT_CELLS
    assert [ws[c["i1"]].value, ws[c["i2"]].value] == list(net.inputs)
    assert [ws[c["t1"]].value, ws[c["t2"]].value] == list(net.targets)
    assert [ws[c[f"w{k}"]].value for k in range(1, 9)] == list(net.weights)
    assert [ws[c["b1"]].value, ws[c["b2"]].value] == list(net.biases)
    assert ws[c["output"]].value == net.output
    assert [ws[cell].value for cell in layout.BACKPROP_RATE_CELLS] == list(layout.DEFAULT_RATES)
    assert ws[layout.BACKPROP_EPOCHS_CELL].value == layout.DEFAULT_EPOCHS
    names = {name: formulas.defined_names[name].attr_text for name in bs.INPUT_NAMES}
    for name, key in bs.INPUT_NAMES.items():
        assert names[name] == "Backprop!$" + re.sub(r"(\d+)", r"$\1", c[key])


@pytest.mark.slow
def test_loss_grid_calls_the_engine_with_cached_values(formulas, cached):
    ws, values = formulas[layout.BACKPROP_SHEET], cached[layout.BACKPROP_SHEET]
    row0, col0 = xl_cell_to_rowcol(layout.BACKPROP_GRID_HEADER_CELL)
    for j, lr in enumerate(layout.DEFAULT_RATES):
        curve = backprop.loss_curve(lr, layout.DEFAULT_EPOCHS)
        column = [values.cell(row0 + 2 + e, col0 + 2 + j).value for e in range(layout.DEFAULT_EPOCHS + 1)]
        assert column == list(curve)
        formula = ws.cell(row0 + 2 + 7, col0 + 2 + j).value
        assert f"BACKPROP_LOSS($C${22 + j},$E12," in formula and "Backprop!$C$9:$C$16" in formula
        # without the engine, the same epoch's E_total of the rate's own LR sheet
        assert formula.startswith("=IF($E12>$C$29,NA(),IFERROR(BACKPROP_LOSS(")
        assert formula.endswith(f",{bs.lr_cell(lr, 'E_total', 7)}))")
        assert values.cell(row0 + 1, col0 + 2 + j).value == f"lr = {lr}"


def test_rate_sheets_are_chain_rule_formulas_with_cached_engine_values(formulas, cached):
    first = bs.lr_first_data_row() + 1  # 1-based row of epoch 0
    col = {key: xl_col_to_name(bs.lr_col(key)) for key in bs.LR_KEYS}
    for k, lr in enumerate(layout.DEFAULT_RATES):
        name = layout.rate_sheet_name(lr)
        ws, values = formulas[name], cached[name]
        assert ws[layout.LR_RATE_CELL].value == f"=Backprop!$C${22 + k}"
        # epoch 0 takes the Backprop sheet's weights; epoch 1 updates the row above
        assert ws[f"{col['w1']}{first}"].value == "=Backprop!$C$9"
        assert ws[f"{col['w1']}{first + 1}"].value == f"={col['w1']}{first}-$C$3*{col['dE_dw1']}{first}"
        assert (
            ws[f"{col['h1']}{first}"].value
            == f"={col['w1']}{first}*input_1+{col['w2']}{first}*input_2+bias_1"
        )
        assert ws[f"{col['dE_dw5']}{first}"].value == f"={col['d_o1']}{first}*{col['a_h1']}{first}"
        assert ws[f"{col['engine_E_total']}{first}"].value.startswith("=IFERROR(BACKPROP_LOSS($C$3,A7,")
        assert ws[f"{col['engine_E_total']}{first}"].value.endswith(f',"{NEEDS_PYTHON}")')
        table = backprop.trajectory(lr, layout.DEFAULT_EPOCHS)
        for j, key in enumerate(backprop.COLUMNS):
            column = [values[f"{col[key]}{first + e}"].value for e in range(layout.DEFAULT_EPOCHS + 1)]
            assert np.array_equal(np.array(column, dtype=float), table[:, j]), (name, key)
        engine = [
            values[f"{col['engine_E_total']}{first + e}"].value for e in range(layout.DEFAULT_EPOCHS + 1)
        ]
        assert engine == list(table[:, backprop.COLUMNS.index("E_total")])
        assert ws.max_row == first + layout.DEFAULT_EPOCHS


def test_charts_are_bound_to_the_right_ranges(formulas):
    def refs(chart):
        return [(s.val or s.yVal).numRef.f for s in chart.series]

    (loss_chart,) = formulas[layout.BACKPROP_SHEET]._charts
    assert refs(loss_chart) == [f"Backprop!${c}$5:${c}$105" for c in "FGHIJK"]
    # Graphs: both charts plot the sheet's table, whose cells link to each LR sheet's E_total column
    graphs = formulas[layout.GRAPHS_SHEET]
    assert len(graphs._charts) == 2
    head_row, head_col = xl_cell_to_rowcol(layout.GRAPHS_TABLE_HEADER_CELL)
    first, last = head_row + 2, head_row + 2 + layout.DEFAULT_EPOCHS  # 1-based rows of epochs 0 and 100
    columns = [xl_col_to_name(head_col + 1 + j) for j in range(len(layout.DEFAULT_RATES))]
    for chart in graphs._charts:
        assert refs(chart) == [f"Graphs!${c}${first}:${c}${last}" for c in columns]
    e_total = xl_col_to_name(bs.lr_col("E_total"))
    for j, lr in enumerate(layout.DEFAULT_RATES):
        assert graphs[f"{columns[j]}{head_row + 1}"].value == layout.rate_sheet_name(lr)
        for epoch in (0, layout.DEFAULT_EPOCHS):
            linked = graphs[f"{columns[j]}{first + epoch}"].value
            assert linked == f"='{layout.rate_sheet_name(lr)}'!{e_total}{bs.lr_first_data_row() + 1 + epoch}"
    # Train: one block of adjacent metric columns per chart, over the whole reserved table
    train = formulas[layout.TRAIN_SHEET]._charts
    assert len(train) == len(layout.TRAIN_CHART_CELLS) == 2
    header_row = xl_cell_to_rowcol(layout.TRAIN_METRICS_HEADER_CELL)[0] + 1
    first, last = header_row + 1, header_row + layout.TRAIN_METRICS_MAX_ROWS
    metric_col = {m: xl_col_to_name(j) for j, m in enumerate(layout.TRAIN_METRIC_COLUMNS)}
    expected = [("train_loss", "test_loss"), ("train_acc", "test_acc")]
    for chart, metrics in zip(train, expected, strict=True):
        assert refs(chart) == [f"Train!${metric_col[m]}${first}:${metric_col[m]}${last}" for m in metrics]


def test_train_sheet_settings_show_the_standard_preset(formulas, cached):
    """Each preset-dependent setting looks its value up in the presets table by the preset cell; the file
    caches the standard preset's values, which are the training defaults."""
    from ml.train import TrainConfig

    ws, values = formulas[layout.TRAIN_SHEET], cached[layout.TRAIN_SHEET]
    config = TrainConfig()
    cells = layout.TRAIN_SETTING_CELLS
    assert ws[cells["preset"]].value == config.preset == "standard"
    for key in ("model", "epochs", "batch_size", "lr", "device", "seed", "subset", "out_dir"):
        assert ws[cells[key]].value.startswith("=INDEX("), key
        assert values[cells[key]].value == getattr(config, key), key
    assert ws[cells["model_path"]].value is None
    row, col = xl_cell_to_rowcol(layout.TRAIN_METRICS_HEADER_CELL)
    header = [ws.cell(row + 1, col + 1 + j).value for j in range(len(METRIC_COLUMNS))]
    assert header == list(layout.TRAIN_METRIC_COLUMNS) and sorted(header) == sorted(METRIC_COLUMNS)
    assert ws[layout.TRAIN_PROGRESS_CELL].value == 0


def test_presets_table_lists_every_preset_beside_the_settings(formulas):
    from ml.config import PRESETS, preset_values

    ws = formulas[layout.TRAIN_SHEET]
    preset_row = xl_cell_to_rowcol(layout.TRAIN_SETTING_CELLS["preset"])[0] + 1
    first = xl_cell_to_rowcol(f"{layout.TRAIN_PRESETS_FIRST_COLUMN}1")[1]
    summary_col = xl_cell_to_rowcol(layout.TRAIN_SUMMARY_HEADER_CELL)[1]
    assert first + len(PRESETS) < summary_col, "the presets table runs into the model summary"
    for k, preset in enumerate(PRESETS):
        assert ws.cell(preset_row, first + 1 + k).value == preset
        for name, cell in layout.TRAIN_SETTING_CELLS.items():
            if name in ("preset", "model_path"):
                continue
            assert ws.cell(xl_cell_to_rowcol(cell)[0] + 1, first + 1 + k).value == preset_values(preset)[name]


def test_train_sheet_offers_every_preset_model_variant_and_device(formulas):
    from ml.config import PRESETS
    from ml.variants import CUSTOM, VARIANTS

    validations = formulas[layout.TRAIN_SHEET].data_validations.dataValidation
    lists = {str(dv.sqref): dv.formula1 for dv in validations}
    assert lists[layout.TRAIN_SETTING_CELLS["preset"]] == '"' + ",".join(PRESETS) + '"'
    assert lists[layout.TRAIN_SETTING_CELLS["model"]] == '"' + ",".join([*VARIANTS, CUSTOM]) + '"'
    assert lists[layout.TRAIN_SETTING_CELLS["device"]] == '"auto,cpu,cuda,mps"'


def test_classify_sheet_formulas(formulas):
    ws = formulas[layout.CLASSIFY_SHEET]
    row = layout.CLASSIFY_FIRST_ROW
    assert ws[f"A{row}"].value == CLASSIFY_EXAMPLES[0]
    assert ws[f"B{row}"].value.startswith(f"=IFERROR(CLASSIFY_IMAGE(A{row},")
    assert ws[f"B{row}"].value.endswith(f',"{NEEDS_PYTHON}")')
    probs = ws[f"C{row}"].value
    assert probs.ref == f"C{row}:L{row}" and probs.text.startswith(f"=IFERROR(CLASSIFY_PROBS(A{row},")
    assert probs.text.endswith(f',"{NO_PROBABILITY}")')


def test_xlwings_conf_sheet(formulas):
    ws = formulas[layout.XLWINGS_CONF_SHEET]
    keys = {}
    row = 1
    while ws.cell(row, 1).value:  # xlwings reads from A1 down to the first empty cell
        keys[ws.cell(row, 1).value] = ws.cell(row, 2).value
        row += 1
    assert keys == {"UDF Modules": "excel_addin.classic.udfs", "Debug UDFs": False}
