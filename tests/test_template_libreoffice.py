"""A real spreadsheet engine computes the template: LibreOffice (headless, recalculating every formula on
load) must get the Python engine's numbers from the LR sheets' plain formulas, also after inputs change.

LibreOffice does not know the xlwings cell functions (BACKPROP_LOSS shows an error there), so these tests
read the formula-built sheets; the cached values of the function cells are checked in test_template.py.
"""

from __future__ import annotations

import warnings

import numpy as np
import openpyxl
import pytest
from engine_check import TOLERANCE, assert_derivation_matches_engine, assert_sheets_match_engine
from xlsxwriter.utility import xl_cell_to_rowcol

from excel_addin.sheets import backprop_sheets as bs
from excel_addin.sheets import derivation_sheet, layout
from excel_addin.testing import libreoffice
from ml import backprop

pytestmark = pytest.mark.skipif(not libreoffice.available(), reason="LibreOffice (soffice) is not installed")


def test_formula_sheets_equal_the_engine_for_every_rate_and_epoch(built):
    values = libreoffice.recalculated_values(built)
    assert_sheets_match_engine(values, layout.DEFAULT_RATES, backprop.Network())
    assert_derivation_matches_engine(values, backprop.Network())
    first_line = values[layout.DERIVATION_SHEET][derivation_sheet.section_tops()["worked"] + 2]
    assert "= 0.15 × 0.05 + 0.2 × 0.1 + 0" in first_line  # the substitution, spelled out
    # It really recalculated: the cell-function grid, cached as numbers, is an error in LibreOffice.
    row0, col0 = xl_cell_to_rowcol(layout.BACKPROP_GRID_HEADER_CELL)
    assert not isinstance(values[layout.BACKPROP_SHEET][row0 + 1][col0 + 1], float)


def test_cached_values_are_what_a_viewer_shows(built):
    values = libreoffice.sheet_values(built, recalc=False)
    row0, col0 = xl_cell_to_rowcol(layout.BACKPROP_GRID_HEADER_CELL)
    grid = values[layout.BACKPROP_SHEET]
    for j, lr in enumerate(layout.DEFAULT_RATES):
        shown = [grid[row0 + 1 + e][col0 + 1 + j] for e in range(bs.EPOCHS + 1)]
        assert np.allclose(shown, backprop.loss_curve(lr, bs.EPOCHS), rtol=0, atol=TOLERANCE)


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

    values = libreoffice.recalculated_values(edited)
    assert_sheets_match_engine(values, rates, network)
    assert_derivation_matches_engine(values, network)  # the worked example follows the edited Backprop
    assert values[layout.rate_sheet_name(2.0)][2][2] == 1.5  # the sheet's rate cell follows Backprop

    # and back to sigmoid with the same edited numbers
    ws[cells["output"]] = "sigmoid"
    book.save(edited)
    sigmoid = backprop.Network(network.inputs, network.targets, network.weights, "sigmoid", network.biases)
    values = libreoffice.recalculated_values(edited)
    assert_sheets_match_engine(values, rates, sigmoid)
    assert_derivation_matches_engine(values, sigmoid)
