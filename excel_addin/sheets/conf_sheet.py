"""The xlwings.conf sheet: the xlwings settings this workbook needs, nothing more.

xlwings reads key/value pairs from A1 down to the first empty row; a key here overrides the user's
xlwings.conf, so only what this workbook needs is set (the Python interpreter stays the user's).
"""

from __future__ import annotations

from excel_addin.sheets import layout
from excel_addin.sheets.spec import PrintSetup, SheetSpec

UDF_MODULE = "excel_addin.classic.udfs"
SETTINGS = {"UDF Modules": UDF_MODULE, "Debug UDFs": False}
NOTES = (
    "xlwings settings for this workbook (key in column A from A1, value in column B; no empty rows).",
    "Entries here override ~/.xlwings/xlwings.conf. The Python interpreter is not set here, so xlwings",
    "uses your own setting (xlwings config / add-in) or 'python' on the PATH. To pin one, add a row",
    "Interpreter_Win (Windows) or Interpreter_Mac (macOS) with the full path of python.",
    "The workbook's folder is added to PYTHONPATH, so excel_addin is found when the workbook sits in the",
    "gradsheet folder; otherwise pip install gradsheet into that Python.",
)


def conf_sheet() -> SheetSpec:
    sheet = SheetSpec(layout.XLWINGS_CONF_SHEET, tab_color="#A6A6A6", printing=PrintSetup(one_page=True))
    sheet.column_width("A", 18)
    sheet.column_width("B", 20)
    sheet.column_width("D", 100)
    for row, (key, value) in enumerate(SETTINGS.items()):
        sheet.write_row((row, 0), (key, value))
    for row, note in enumerate(NOTES):
        sheet.write((row, 3), note, "note")
    return sheet
