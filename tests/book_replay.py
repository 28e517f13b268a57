"""Replay the actions a remote-engine Book recorded (what xlwings Server sends Excel) into an openpyxl
workbook, so a spreadsheet program can open and recalculate what Excel would hold.

Covers what gradsheet's set-up writes: sheets, values and formulas, defined names, number formats, fills,
fonts, alignment, wrap, column widths and row heights, merges, notes, data validation, conditional
formats (data bar, colour scale), frozen panes. Charts, pictures, borders and sheet activation are kept
as recorded actions (``Replay.kept``) for the tests to inspect: openpyxl would only redraw them. Formats
on whole rows or columns are left out (openpyxl keeps them per cell). An action it does not know raises,
so nothing is dropped silently.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import openpyxl
from openpyxl.comments import Comment
from openpyxl.formatting.rule import ColorScaleRule, DataBarRule
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.workbook.defined_name import DefinedName
from openpyxl.worksheet.datavalidation import DataValidation

KEPT = {
    "addChart",
    "setChartXAxisValues",
    "setChartTitle",
    "setChartAxis",
    "setChartLegend",
    "setChartSeries",
    "deleteChart",
    "addPicture",
    "updatePicture",
    "setBorderProperty",
    "activateSheet",
}
MAX_CELLS = 100_000  # larger blocks are whole rows or columns: formats there are left out
_OPERATORS = {
    "between": "between",
    "greater_than": "greaterThan",
    "greater_than_or_equal": "greaterThanOrEqual",
    "less_than": "lessThan",
    "less_than_or_equal": "lessThanOrEqual",
}


@dataclass
class Replay:
    """The workbook the actions built, and the actions kept as they were (sheet name -> actions)."""

    book: openpyxl.Workbook
    kept: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))


def replay(sheet_names: list[str], actions: list[dict[str, Any]]) -> Replay:
    """Apply ``actions`` to a workbook that starts with empty sheets ``sheet_names`` (the payload's)."""
    book = openpyxl.Workbook()
    book.remove(book.active)
    for name in sheet_names:
        book.create_sheet(name)
    result = Replay(book)
    for action in actions:
        _apply(result, action)
    return result


def _apply(result: Replay, action: dict[str, Any]) -> None:
    book, func, args = result.book, action["func"], action["args"]
    if func == "addSheet":
        index, name = args
        book.create_sheet(name, index)
        return
    if func == "namesAdd":
        name, refers_to = args
        book.defined_names[name] = DefinedName(name, attr_text=refers_to.lstrip("="))
        return
    sheet = book.worksheets[action["sheet_position"]]
    if func in KEPT:
        result.kept[sheet.title].append(action)
        return
    handler = _HANDLERS.get(func)
    if handler is None:
        raise ValueError(f"the replayer does not know the action {func!r}: {action}")
    handler(sheet, action, *args)


def _cells(sheet, action) -> list:
    """The cells of an action's block ([] for a block too large to hold per cell)."""
    rows, cols = action["row_count"], action["column_count"]
    if rows * cols > MAX_CELLS:
        return []
    r0, c0 = action["start_row"] + 1, action["start_column"] + 1
    return [sheet.cell(r0 + i, c0 + j) for i in range(rows) for j in range(cols)]


def _cell_value(value: Any) -> Any:
    """A written value as Excel stores it: "" empties the cell, a leading "'" marks text."""
    if value == "" or value is None:
        return None
    if isinstance(value, str) and value.startswith("'"):
        return value[1:]
    return value


def _set_values(sheet, action, *_) -> None:
    r0, c0 = action["start_row"] + 1, action["start_column"] + 1
    for i, row in enumerate(action["values"]):
        for j, value in enumerate(row):
            cell = sheet.cell(r0 + i, c0 + j)
            cell.value = _cell_value(value)
            if isinstance(value, str) and value.startswith("'"):
                cell.data_type = "s"  # text, even when it starts with "="


def _number_format(sheet, action, number_format) -> None:
    for cell in _cells(sheet, action):
        cell.number_format = number_format


def _fill(sheet, action, color) -> None:
    for cell in _cells(sheet, action):
        cell.fill = PatternFill("solid", fgColor=color.lstrip("#").upper())


def _font(sheet, action, attribute, value) -> None:
    key = {"size": "sz", "name": "name", "bold": "b", "italic": "i", "color": "color"}[attribute]
    if attribute == "color":
        value = value.lstrip("#").upper()
    for cell in _cells(sheet, action):
        font = {k: getattr(cell.font, k) for k in ("name", "sz", "b", "i", "color")}
        cell.font = Font(**{**font, key: value})


def _alignment(sheet, action, value, attribute) -> None:
    for cell in _cells(sheet, action):
        current = cell.alignment
        values = {
            "horizontal": current.horizontal,
            "vertical": current.vertical,
            "wrap_text": current.wrap_text,
        }
        values[attribute] = value
        cell.alignment = Alignment(**values)


def _column_width(sheet, action, points) -> None:
    for col in range(action["start_column"] + 1, action["start_column"] + action["column_count"] + 1):
        # points -> the file's width unit: pixels / 7 (Calibri 11's digit width; it includes the padding)
        sheet.column_dimensions[get_column_letter(col)].width = points / 0.75 / 7


def _row_height(sheet, action, points) -> None:
    for row in range(action["start_row"] + 1, action["start_row"] + action["row_count"] + 1):
        sheet.row_dimensions[row].height = points


def _merge(sheet, action, across) -> None:
    r0, c0 = action["start_row"] + 1, action["start_column"] + 1
    sheet.merge_cells(
        start_row=r0,
        start_column=c0,
        end_row=r0 + action["row_count"] - 1,
        end_column=c0 + action["column_count"] - 1,
    )


def _note(sheet, action, address, text) -> None:
    sheet[address.replace("$", "")].comment = Comment(text, "gradsheet")


def _block(action) -> str:
    r0, c0 = action["start_row"] + 1, action["start_column"] + 1
    first = f"{get_column_letter(c0)}{r0}"
    last = f"{get_column_letter(c0 + action['column_count'] - 1)}{r0 + action['row_count'] - 1}"
    return first if first == last else f"{first}:{last}"


def _validation_list(sheet, action, source, dropdown) -> None:
    assert source["type"] == "literal", source
    rule = DataValidation(
        type="list", formula1='"' + ",".join(source["values"]) + '"', showDropDown=not dropdown
    )
    rule.add(_block(action))
    sheet.add_data_validation(rule)


def _validation_rule(sheet, action, rule) -> None:
    kind = {"decimal": "decimal", "whole_number": "whole"}[rule["type"]]
    validation = DataValidation(
        type=kind,
        operator=_OPERATORS[rule["operator"]],
        formula1=rule["formula1"].lstrip("="),
        formula2=rule["formula2"].lstrip("=") if rule["formula2"] else None,
    )
    validation.add(_block(action))
    sheet.add_data_validation(validation)


def _clear_conditional(sheet, action, *_) -> None:
    block = _block(action)
    if any(str(cf.sqref) == block for cf in sheet.conditional_formatting):
        del sheet.conditional_formatting[block]


_SCALE_ENDS = {"LowestValue": "min", "HighestValue": "max"}  # the engine's threshold types -> openpyxl's


def _conditional(sheet, action, entry) -> None:
    if entry["type"] == "DataBar":
        low, high = entry["thresholds"]
        rule = DataBarRule(
            start_type="num",
            start_value=low,
            end_type="num",
            end_value=high,
            color=entry["bar_color"].lstrip("#"),
        )
    elif entry["type"] == "ColorScale":
        low, high = (c.lstrip("#") for c in entry["colors"])
        (start, start_value), (end, end_value) = (
            ("num", value) if kind == "Number" else (_SCALE_ENDS[kind], None)
            for kind, value in zip(entry["threshold_types"], entry["thresholds"], strict=True)
        )
        rule = ColorScaleRule(start_type=start, start_value=start_value, start_color=low,
                              end_type=end, end_value=end_value, end_color=high)  # fmt: skip
    else:
        raise ValueError(f"the replayer does not know conditional formats of type {entry['type']!r}")
    sheet.conditional_formatting.add(_block(action), rule)


def _freeze(sheet, action, frozen) -> None:
    """Excel freezes the named block; openpyxl takes the first cell that scrolls."""
    if ":" not in frozen or frozen.replace(":", "").isdigit():  # "1:4": rows only
        rows = int(frozen.split(":")[-1])
        sheet.freeze_panes = f"A{rows + 1}"
        return
    last = frozen.split(":")[-1]
    letters = last.rstrip("0123456789")
    digits = last[len(letters) :]
    col = openpyxl.utils.column_index_from_string(letters) + 1
    sheet.freeze_panes = f"{get_column_letter(col)}{int(digits) + 1 if digits else 1}"


_HANDLERS = {
    "setValues": _set_values,
    "setFormula": _set_values,
    "setNumberFormat": _number_format,
    "setRangeColor": _fill,
    "setFontProperty": _font,
    "setHorizontalAlignment": lambda s, a, v: _alignment(s, a, v.lower(), "horizontal"),
    "setVerticalAlignment": lambda s, a, v: _alignment(s, a, v.lower(), "vertical"),
    "setWrapText": lambda s, a, v: _alignment(s, a, v, "wrap_text"),
    "setColumnWidth": _column_width,
    "setRowHeight": _row_height,
    "rangeMerge": _merge,
    "addNote": _note,
    "setDataValidationList": _validation_list,
    "setDataValidationRule": _validation_rule,
    "clearConditionalFormats": _clear_conditional,
    "addConditionalFormat": _conditional,
    "freezePaneAtRange": _freeze,
}
