"""Set up gradsheet in an open workbook: ``setup_workbook(book)``.

What the Office.js add-in's "Set up gradsheet" button calls, so that a blank workbook (in Excel on the
web, too) becomes gradsheet: it writes the same sheets as the template (the one description in
``workbook``) through the xlwings Book API (``book_render``), minus what a Book cannot hold (listed
there: macro buttons, tab colours, print setup, ...), as the add-in needs them: its functions by their
add-in names (``=GRADSHEET.BACKPROP_LOSS``) and the Train sheet's run cells streaming from the server.
"""

from __future__ import annotations

from typing import Any

from excel_addin.sheets.book_render import render_sheet
from excel_addin.sheets.workbook import gradsheet_workbook


def setup_workbook(book: Any) -> list[str]:
    """Write all of gradsheet's sheets into ``book`` (an open xlwings Book) and return their names.

    Missing sheets are added after the last one, in gradsheet's order; gradsheet's sheets that exist are
    rewritten; every other sheet is left alone. All sheets and defined names exist before any formula is
    written, so no formula ever refers to a sheet that is not there yet.
    """
    spec = gradsheet_workbook(predict_examples=False, addin=True)
    existing = {sheet.name.casefold(): sheet for sheet in book.sheets}
    sheets = {}
    for sheet_spec in spec.sheets:
        sheet = existing.get(sheet_spec.name.casefold())
        if sheet is None:
            sheet = book.sheets.add(name=sheet_spec.name, after=book.sheets[len(book.sheets) - 1])
        sheets[sheet_spec.name] = sheet
    for name, refers_to in spec.names.items():
        _define_name(book, name, refers_to)
    for sheet_spec in spec.sheets:
        render_sheet(sheets[sheet_spec.name], sheet_spec)
    if spec.active:
        sheets[spec.active].activate()
    return list(sheets)


def _define_name(book: Any, name: str, refers_to: str) -> None:
    """A workbook-level name, added or pointed at ``refers_to`` when it exists."""
    for existing in book.names:
        if existing.name == name:
            existing.refers_to = refers_to
            return
    book.names.add(name, refers_to)
