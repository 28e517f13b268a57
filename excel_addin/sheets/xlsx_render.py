"""Render sheet descriptions (``spec``) into an .xlsx/.xlsm file with XlsxWriter.

Used by the template build (with its VBA project) and the headless report. Everything the description
holds has a file form here, including what a Book cannot do (macro buttons, tab colours, print setup,
cached formula values, validation error messages, logarithmic axes). The output is deterministic: the
same description and properties give the same bytes.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import xlsxwriter
from PIL import Image

from excel_addin.sheets import print_layout
from excel_addin.sheets.spec import Axis, Button, Chart, ColorScale, DataBar, Picture, SheetSpec, Validation
from excel_addin.sheets.styles import GRID_LINE, SERIES_COLORS, STYLES, Style

CHART_PIXELS = (480, 288)  # XlsxWriter's chart size at scale 1
POINTS_PER_PIXEL = 0.75


def write_workbook(
    spec_sheets: list[SheetSpec],
    out: str | Path,
    names: dict[str, str] | None = None,
    active: str | None = None,
    properties: dict[str, Any] | None = None,
    vba: bytes | None = None,
) -> Path:
    """Write the sheets (in order) and defined names to ``out``; ``vba``: a vbaProject.bin to embed."""
    out = Path(out)
    wb = xlsxwriter.Workbook(str(out), {"strings_to_numbers": False, "strings_to_formulas": False})
    if properties:
        wb.set_properties(properties)
    wb.set_calc_mode("auto")
    if vba is not None:
        wb.add_vba_project(io.BytesIO(vba), is_stream=True)
    formats = _Formats(wb)
    worksheets = [(wb.add_worksheet(sheet.name), sheet) for sheet in spec_sheets]
    for ws, sheet in worksheets:
        _render_sheet(wb, ws, sheet, formats)
        if sheet.name == active:
            ws.activate()
    for name, refers_to in (names or {}).items():
        wb.define_name(name, refers_to)
    wb.close()
    return out


class _Formats:
    """XlsxWriter formats of the named styles, created on first use (so in a deterministic order)."""

    def __init__(self, wb: xlsxwriter.Workbook):
        self.wb = wb
        self.made: dict[str, Any] = {}

    def __call__(self, name: str | None):
        if name is None:
            return None
        if name not in self.made:
            self.made[name] = self.wb.add_format(format_properties(STYLES[name]))
        return self.made[name]


def format_properties(style: Style) -> dict[str, Any]:
    """The XlsxWriter format dictionary of a style."""
    props: dict[str, Any] = {"font_name": style.font or "Calibri", "font_size": style.size or 11}
    for key, value in (
        ("bold", style.bold),
        ("italic", style.italic),
        ("font_color", style.color),
        ("bg_color", style.fill),
        ("num_format", style.number_format),
        ("align", style.align),
        ("valign", {"center": "vcenter"}.get(style.valign, style.valign)),
        ("text_wrap", style.wrap),
    ):
        if value:
            props[key] = value
    if style.border == "box":
        props["border"] = 1
    elif style.border == "bottom":
        props["bottom"] = 1
    if style.border and style.border_color:
        props["border_color"] = style.border_color
    return props


def _render_sheet(wb, ws, sheet: SheetSpec, fmt: _Formats) -> None:
    for cols in sheet.columns:
        ws.set_column(cols.first, cols.last, cols.width, fmt(cols.style))
    for row, height in sorted(sheet.row_heights.items()):
        ws.set_row(row, height)
    merged = {first: last for first, last in sheet.merges}
    spilled = _spilled(sheet)
    for (row, col), cell in sorted(sheet.cells.items()):
        if (row, col) in merged:
            last = merged[(row, col)]
            ws.merge_range(row, col, last[0], last[1], cell.value, fmt(cell.style))
        elif (row, col) in spilled:
            continue  # written with its formula's cached block
        elif not any(_inside((row, col), first, last) for first, last in sheet.merges):
            _write_cell(ws, row, col, cell, fmt, sheet)
    for (row, col), text in sorted(sheet.notes.items()):
        ws.write_comment(row, col, text)
    for rule in sheet.validations:
        ws.data_validation(*rule.first, *rule.last, _validation(rule))
    for rule in sheet.conditional_formats:
        ws.conditional_format(*rule.first, *rule.last, _conditional(rule))
    for button in sheet.buttons:
        _button(ws, button)
    for picture in sheet.pictures:
        _picture(ws, picture)
    for chart in sheet.charts:
        _chart(wb, ws, chart)
    if sheet.freeze:
        ws.freeze_panes(*sheet.freeze)
    if sheet.tab_color:
        ws.set_tab_color(sheet.tab_color)
    _page_setup(ws, sheet)


PAGE_FOOTER = "&L&A&Rpage &P of &N"  # the sheet's name, the page number


def _page_setup(ws, sheet: SheetSpec) -> None:
    """Orientation, print area, breaks, repeated rows and columns, the scale (``print_layout``), a footer."""
    setup = sheet.printing
    if setup.landscape:
        ws.set_landscape()
    else:
        ws.set_portrait()
    (top, left), (bottom, right) = print_layout.print_area(sheet)
    ws.print_area(top, left, bottom, right)
    if print_layout.one_page(sheet):
        print_layout.page_scale(sheet)  # checks that it fits; the program then fits it to one page
        ws.fit_to_pages(1, 1)
    else:
        ws.set_print_scale(print_layout.page_scale(sheet))
    if setup.repeat_rows:
        ws.repeat_rows(*setup.repeat_rows)
    if setup.repeat_columns:
        ws.repeat_columns(*setup.repeat_columns)
    if setup.row_breaks:
        ws.set_h_pagebreaks(setup.row_breaks)
    if setup.column_breaks:
        ws.set_v_pagebreaks(setup.column_breaks)
    if setup.across:
        ws.print_across()
    ws.set_footer(PAGE_FOOTER)


def _inside(cell, first, last) -> bool:
    return first[0] <= cell[0] <= last[0] and first[1] <= cell[1] <= last[1]


def _spilled(sheet: SheetSpec) -> set[tuple[int, int]]:
    """The cells inside array formulas' blocks, other than the formulas' own."""
    covered = set()
    for (row, col), cell in sheet.cells.items():
        if cell.formula is not None and cell.spill:
            rows, cols = cell.spill
            covered |= {(row + i, col + j) for i in range(rows) for j in range(cols)} - {(row, col)}
    return covered


def _write_cell(ws, row: int, col: int, cell, fmt: _Formats, sheet: SheetSpec) -> None:
    style = fmt(cell.style)
    if cell.formula is not None and cell.spill:
        rows, cols = cell.spill
        cached = cell.cached
        write = ws.write_dynamic_array_formula if cell.dynamic else ws.write_array_formula
        formula = cell.formula if cell.dynamic else "{" + cell.formula + "}"
        write(row, col, row + rows - 1, col + cols - 1, formula, style, cached[0][0])
        for i in range(rows):  # the other cells of the block show their cached values
            for j in range(cols):
                if (i, j) != (0, 0):
                    own = sheet.cells.get((row + i, col + j))
                    ws.write(row + i, col + j, cached[i][j], fmt(own.style) if own else style)
    elif cell.formula is not None:
        ws.write_formula(row, col, cell.formula, style, cell.cached)
    elif cell.value is None:
        ws.write_blank(row, col, None, style)
    elif isinstance(cell.value, bool):
        ws.write_boolean(row, col, cell.value, style)
    elif isinstance(cell.value, int | float):
        if not math.isfinite(cell.value):
            raise ValueError(f"{ws.name} row {row + 1} column {col + 1}: {cell.value} is not a finite number")
        ws.write_number(row, col, cell.value, style)
    else:
        ws.write_string(row, col, str(cell.value), style)


_OPERATORS = {
    "between": "between",
    "greater_than": ">",
    "greater_than_or_equal": ">=",
    "less_than": "<",
    "less_than_or_equal": "<=",
}


def _validation(rule: Validation) -> dict[str, Any]:
    if rule.kind == "list":
        return {"validate": "list", "source": list(rule.choices)}
    options: dict[str, Any] = {
        "validate": {"whole": "integer", "decimal": "decimal"}[rule.kind],
        "criteria": _OPERATORS[rule.operator],
    }
    if rule.operator == "between":
        options.update(minimum=rule.minimum, maximum=rule.maximum)
    else:
        options["value"] = rule.minimum if rule.minimum is not None else rule.maximum
    if rule.error_title:
        options.update(error_title=rule.error_title, error_message=rule.error_message)
    return options


def _conditional(rule: DataBar | ColorScale) -> dict[str, Any]:
    if isinstance(rule, DataBar):
        return {
            "type": "data_bar",
            "bar_color": rule.color,
            "min_type": "num",
            "min_value": rule.minimum,
            "max_type": "num",
            "max_value": rule.maximum,
        }
    scale = {"type": "2_color_scale", "min_color": rule.min_color, "max_color": rule.max_color}
    for end, value in (("min", rule.minimum), ("max", rule.maximum)):
        if value is not None:
            scale.update({f"{end}_type": "num", f"{end}_value": value})
    return scale


def _button(ws, button: Button) -> None:
    ws.insert_button(
        *button.anchor,
        {
            "macro": button.macro,
            "caption": button.caption,
            "width": button.width,
            "height": button.height,
            "x_offset": 2,
            "y_offset": 1,
        },
    )


def picture_scale(picture: Picture) -> float:
    """The scale that shows the image at the picture's width (XlsxWriter honours the PNG's own DPI)."""
    with Image.open(picture.path) as image:
        width = image.width
        dpi = float((image.info.get("dpi") or (96, 96))[0]) or 96.0
    return picture.width / (width * 72.0 / dpi)


def _picture(ws, picture: Picture) -> None:
    scale = picture_scale(picture)
    ws.insert_image(
        *picture.anchor,
        str(picture.path),
        {"x_scale": scale, "y_scale": scale, "object_position": 1, "description": picture.name},
    )


def _axis(axis: Axis) -> dict[str, Any]:
    options: dict[str, Any] = {"major_gridlines": {"visible": True, "line": {"color": GRID_LINE}}}
    for key, value in (
        ("name", axis.title),
        ("min", axis.minimum),
        ("max", axis.maximum),
        ("major_unit", axis.major_unit),
        ("num_format", axis.number_format),
        ("log_base", axis.log_base),
    ):
        if value is not None:
            options[key] = value
    return options


def _chart(wb, ws, chart: Chart) -> None:
    xl = wb.add_chart(
        {"type": "scatter", "subtype": "straight_with_markers" if chart.markers else "straight"}
    )
    first = chart.header_row + 1
    for index, col in enumerate(chart.y_cols):
        color = SERIES_COLORS[index % len(SERIES_COLORS)]
        series = {
            "name": [chart.data_sheet, chart.header_row, col],
            "categories": [chart.data_sheet, first, chart.x_col, chart.last_row, chart.x_col],
            "values": [chart.data_sheet, first, col, chart.last_row, col],
            "line": {"width": 2, "color": color},
        }
        if chart.markers:
            series["marker"] = {
                "type": "circle",
                "size": 4,
                "fill": {"color": color},
                "border": {"color": color},
            }
        xl.add_series(series)
    xl.set_title({"name": chart.title, "name_font": {"size": chart.title_size, "bold": True}})
    xl.set_x_axis(_axis(chart.x_axis))
    xl.set_y_axis(_axis(chart.y_axis))
    xl.set_legend({"position": chart.legend})
    xl.show_blanks_as("gap")
    width, height = CHART_PIXELS
    ws.insert_chart(
        *chart.anchor,
        xl,
        {
            "x_scale": chart.width / POINTS_PER_PIXEL / width,
            "y_scale": chart.height / POINTS_PER_PIXEL / height,
            "description": chart.name,
        },
    )
