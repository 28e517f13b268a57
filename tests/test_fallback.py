"""The fallbacks of the cells that call gradsheet's Python, in a real spreadsheet engine: where the call
works, its value, also a "#VALUE! reason" text, comes through unchanged; where the function is unknown
(LibreOffice knows none of gradsheet's), the fallback shows. LibreOffice stands in for Excel here, with
native expressions in the place of the Python calls.
"""

from __future__ import annotations

import pytest

from excel_addin.sheets.fallback import (
    NEEDS_PYTHON,
    array_constant,
    block_or_else,
    literal,
    or_else,
    text_block,
)
from excel_addin.sheets.spec import SheetSpec
from excel_addin.sheets.xlsx_render import write_workbook
from excel_addin.testing import libreoffice

pytestmark = pytest.mark.skipif(not libreoffice.available(), reason="LibreOffice (soffice) is not installed")

UNKNOWN = "BACKPROP_LOSS(0.5,3)"  # a cell function LibreOffice does not know: an error there
TABLE = [["Layer", "Params"], ["Conv2d-1", 80], ["Total", 80]]


@pytest.mark.slow
def test_a_value_or_a_reason_comes_through_and_an_unknown_function_falls_back(tmp_path):
    sheet = SheetSpec("fallbacks")
    single = {
        "A1": ("0.25*2", 0.5),  # the engine's number
        "A2": (
            '"#VALUE! learning rate must be positive, got -1"',
            "#VALUE! learning rate must be positive, got -1",
        ),
        "A3": (UNKNOWN, NEEDS_PYTHON),
    }
    for cell, (call, _) in single.items():
        sheet.formula(cell, "=" + or_else(call, literal(NEEDS_PYTHON)), None)
    size = (3, 2)  # the block the file holds (a spreadsheet without dynamic arrays keeps its size)
    fallback = text_block([("Layer", "Params"), (NEEDS_PYTHON,)], size)
    known = array_constant(TABLE)  # a block the call returns
    sheet.formula("C1", "=" + block_or_else(known, fallback), fallback, spill=size)
    sheet.formula("F1", "=" + block_or_else(UNKNOWN, fallback), fallback, spill=size)
    shown = libreoffice.shown(write_workbook([sheet], tmp_path / "fallbacks.xlsx"), recalc=True)
    rows = shown.values["fallbacks"]
    assert [rows[r][0] for r in range(3)] == [expected for _, expected in single.values()]
    assert [row[2:4] for row in rows[:3]] == TABLE  # the call's block, whole
    assert [row[5:7] for row in rows[:3]] == [["Layer", "Params"], [NEEDS_PYTHON, None], [None, None]]
    assert shown.error_count() == 0
