"""A real spreadsheet engine computes the template: LibreOffice (headless, recalculating every formula on
load) must get the Python engine's numbers from the LR sheets' plain formulas, also after inputs change;
and no cell of any sheet shows an error value, as opened or after a full recalculation.

LibreOffice does not know gradsheet's cell functions: every call to them falls back (``sheets.fallback``)
to a value the formulas give (the Backprop grid: the LR sheets' E_total) or to a short text. The cached
values of the function cells are checked in test_template.py.
"""

from __future__ import annotations

import warnings

import numpy as np
import openpyxl
import pytest
from engine_check import TOLERANCE, assert_derivation_matches_engine, assert_sheets_match_engine
from xlsxwriter.utility import xl_cell_to_rowcol

from excel_addin.sheets import backprop_sheets as bs
from excel_addin.sheets import classify_sheet, derivation_sheet, layout
from excel_addin.sheets.fallback import NEEDS_PYTHON
from excel_addin.sheets.spec import ref
from excel_addin.sheets.train_sheet import SUMMARY_HEADER
from excel_addin.testing import libreoffice
from ml import backprop

pytestmark = pytest.mark.skipif(not libreoffice.available(), reason="LibreOffice (soffice) is not installed")


def _grid(values: dict) -> list[list[float]]:
    """The Backprop sheet's loss grid, one list per rate (epochs 0..EPOCHS)."""
    row0, col0 = xl_cell_to_rowcol(layout.BACKPROP_GRID_HEADER_CELL)
    rows = values[layout.BACKPROP_SHEET]
    return [
        [rows[row0 + 1 + e][col0 + 1 + j] for e in range(bs.EPOCHS + 1)]
        for j in range(len(layout.DEFAULT_RATES))
    ]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["shown_as_opened", "shown_recalculated"])
def test_no_sheet_shows_an_error_cell(mode, request, formulas):
    shown = request.getfixturevalue(mode)
    assert list(shown.errors) == formulas.sheetnames  # every sheet counted
    assert shown.error_count() == 0, {name: cells[:5] for name, cells in shown.errors.items() if cells}


def test_formula_sheets_equal_the_engine_for_every_rate_and_epoch(shown_recalculated):
    values = shown_recalculated.values
    assert_sheets_match_engine(values, layout.DEFAULT_RATES, backprop.Network())
    assert_derivation_matches_engine(values, backprop.Network())
    first_line = values[layout.DERIVATION_SHEET][derivation_sheet.section_tops()["worked"] + 2]
    assert "= 0.15 × 0.05 + 0.2 × 0.1 + 0" in first_line  # the substitution, spelled out


def test_without_python_the_grid_shows_the_lr_sheets_values(shown_recalculated):
    """The grid's =BACKPROP_LOSS cells fall back to the LR sheets' E_total: the engine's curves, so the
    grid's chart draws in any spreadsheet program."""
    for lr, shown in zip(layout.DEFAULT_RATES, _grid(shown_recalculated.values), strict=True):
        assert np.allclose(shown, backprop.loss_curve(lr, bs.EPOCHS), rtol=0, atol=TOLERANCE), lr


@pytest.mark.slow
def test_without_python_the_python_only_cells_say_so(shown_recalculated, cached):
    """It really recalculated: the cells whose file holds the engine's numbers now read NEEDS_PYTHON."""
    values = shown_recalculated.values
    first = bs.lr_first_data_row()
    for lr in layout.DEFAULT_RATES:
        rows = values[layout.rate_sheet_name(lr)]
        assert isinstance(
            cached[layout.rate_sheet_name(lr)].cell(first + 1, bs.lr_col("engine_E_total") + 1).value, float
        )
        assert {rows[first + e][bs.lr_col("engine_E_total")] for e in range(bs.EPOCHS + 1)} == {NEEDS_PYTHON}
        assert {rows[first + e][bs.lr_col("engine_diff")] for e in range(bs.EPOCHS + 1)} == {None}
    train = values[layout.TRAIN_SHEET]
    top, left = ref(layout.TRAIN_CUSTOM_SUMMARY_CELL)
    assert train[top][left : left + 5] == list(SUMMARY_HEADER)
    assert train[top + 1][left : left + 5] == [NEEDS_PYTHON, None, None, None, None]
    classify = values[layout.CLASSIFY_SHEET]
    for row in (
        *classify_sheet.image_rows()[: len(classify_sheet.CLASSIFY_EXAMPLES)],
        layout.CLASSIFY_GRID_RESULT_ROW,
    ):
        assert classify[row - 1][1:12] == [NEEDS_PYTHON, *[classify_sheet.NO_PROBABILITY] * 10], row


def test_as_opened_the_grid_shows_the_cached_engine_values(shown_as_opened):
    for lr, shown in zip(layout.DEFAULT_RATES, _grid(shown_as_opened.values), strict=True):
        assert np.allclose(shown, backprop.loss_curve(lr, bs.EPOCHS), rtol=0, atol=TOLERANCE), lr


@pytest.mark.slow
def test_editing_inputs_recomputes_the_formula_sheets(built, tmp_path):
    """Change weights, targets, biases, the output activation and a rate in a copy, as a user would type
    them; LibreOffice's recalculation must follow the engine run on the same network."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        book = openpyxl.load_workbook(built)
    ws = book[layout.BACKPROP_SHEET]
    cells = layout.BACKPROP_INPUT_CELLS
    network = backprop.Network(
        inputs=(0.3, -0.7),
        targets=(0.2, 0.9),
        weights=(0.11, -0.2, 0.35, 0.4, -0.45, 0.5, 0.62, -0.05),
        biases=(0.35, -0.6),
        output="softmax",
    )
    for key, value in zip(("i1", "i2"), network.inputs, strict=True):
        ws[cells[key]] = value
    for key, value in zip(("t1", "t2"), network.targets, strict=True):
        ws[cells[key]] = value
    for k, value in enumerate(network.weights, start=1):
        ws[cells[f"w{k}"]] = value
    ws[cells["b1"]], ws[cells["b2"]] = network.biases
    ws[cells["output"]] = "softmax"
    rates = (1.5, *layout.DEFAULT_RATES[1:])
    ws[layout.BACKPROP_RATE_CELLS[0]] = rates[0]
    edited = tmp_path / "edited.xlsx"
    book.save(edited)

    shown = libreoffice.shown(edited, recalc=True)
    assert shown.error_count() == 0, {name: cells[:5] for name, cells in shown.errors.items() if cells}
    values = shown.values
    assert_sheets_match_engine(values, rates, network)
    assert_derivation_matches_engine(values, network)  # the worked example follows the edited Backprop
    assert np.allclose(
        _grid(values)[0],
        backprop.trajectory(1.5, bs.EPOCHS, network)[:, backprop.COLUMNS.index("E_total")],
        rtol=0,
        atol=TOLERANCE,
    )
    assert values[layout.rate_sheet_name(2.0)][2][2] == 1.5  # the sheet's rate cell follows Backprop

    # and back to sigmoid with the same edited numbers
    ws[cells["output"]] = "sigmoid"
    book.save(edited)
    sigmoid = backprop.Network(network.inputs, network.targets, network.weights, "sigmoid", network.biases)
    values = libreoffice.recalculated_values(edited)
    assert_sheets_match_engine(values, rates, sigmoid)
    assert_derivation_matches_engine(values, sigmoid)
