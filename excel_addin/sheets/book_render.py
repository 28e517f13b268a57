"""Render sheet descriptions (``spec``) into an open workbook through the xlwings Book API.

Works with any xlwings Book: Excel on the desktop, or the remote engine behind xlwings Server and the
Office.js add-in, whose writes Excel (on the web, too) applies as actions. Cells go in as few block writes
as the layout allows (one per run of filled rows), styles as one write per block of equally styled cells.

What a Book cannot do is skipped, by design rather than by accident:

* macro buttons: a workbook set up this way has no VBA project (the add-in's own buttons run Python);
* tab colours, print setup (landscape, fit to page, repeated rows): the Book API has no such calls;
* cached formula values: Excel computes every formula itself;
* validation error titles and messages: the Book API sets the rule only;
* chart line widths, gridline colours, marker sizes, blanks-as-gaps, and charts with a logarithmic
  axis (the API has no log base; a linear copy of a "log scale" chart would mislead, so it is left out);
* on the remote engine, with clients other than Office.js: alignment, notes and data validation
  (the engine refuses them with NotImplementedError; everything else is still written).
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from excel_addin.sheets.spec import (
    Cell,
    Chart,
    ColorScale,
    Columns,
    DataBar,
    Picture,
    Ref,
    SheetSpec,
    Validation,
    a1,
    a1_range,
    column_name,
    column_width_points,
)
from excel_addin.sheets.styles import STYLES, Style

# A Book cannot do these; they raise NotImplementedError on some engines/clients: skipped there.
_OPTIONAL = (NotImplementedError,)
EXCEL_ROWS, EXCEL_COLUMNS = 1_048_576, 16_384


def render_sheet(sheet: Any, spec: SheetSpec) -> None:
    """Write everything ``spec`` describes into ``sheet`` (an xlwings Sheet), over what it held."""
    for first, last, width in column_runs(spec.columns):
        _column_width(sheet, first, last, width)
    for row, height in sorted(spec.row_heights.items()):
        sheet.range((row + 1, 1), (row + 1, EXCEL_COLUMNS)).row_height = height
    write_cells(sheet, spec.cells)
    for first, last in spec.merges:
        _range(sheet, first, last).merge()
    for style_name, blocks in _style_blocks(spec).items():
        for first, last in blocks:
            apply_style(_range(sheet, first, last), STYLES[style_name])
    for columns in spec.columns:
        if columns.style:
            rng = sheet.range((1, columns.first + 1), (EXCEL_ROWS, columns.last + 1))
            apply_style(rng, STYLES[columns.style])
    for where, text in sorted(spec.notes.items()):
        _optional(_note, sheet, where, text)
    for rule in spec.validations:
        _optional(_validation, _range(sheet, rule.first, rule.last), rule)
    for rule in spec.conditional_formats:
        _conditional(_range(sheet, rule.first, rule.last), rule)
    if spec.freeze:
        _freeze(sheet, spec.freeze)
    for chart in spec.charts:
        add_chart(sheet, chart)
    for picture in spec.pictures:
        put_picture(sheet, picture)


# ---- cells ------------------------------------------------------------------------------------------


def cell_input(cell: Cell) -> Any:
    """What a Book write puts into a cell: the formula, or the constant (text that starts with "=" gets
    Excel's text prefix "'", so it stays text)."""
    if cell.formula is not None:
        return cell.formula
    if isinstance(cell.value, str) and cell.value.startswith("="):
        return "'" + cell.value
    return cell.value


def row_bands(cells: Iterable[Ref]) -> list[tuple[Ref, Ref]]:
    """Blocks (first, last) covering the given cells: one per run of consecutive rows that hold cells,
    spanning the columns those rows use."""
    by_row: dict[int, list[int]] = defaultdict(list)
    for row, col in cells:
        by_row[row].append(col)
    bands: list[tuple[Ref, Ref]] = []
    start = prev = None
    for row in sorted(by_row):
        if start is None or row != prev + 1:
            if start is not None:
                bands.append(_band(by_row, start, prev))
            start = row
        prev = row
    if start is not None:
        bands.append(_band(by_row, start, prev))
    return bands


def _band(by_row: dict[int, list[int]], first_row: int, last_row: int) -> tuple[Ref, Ref]:
    cols = [c for r in range(first_row, last_row + 1) for c in by_row[r]]
    return (first_row, min(cols)), (last_row, max(cols))


def write_cells(sheet: Any, cells: dict[Ref, Cell]) -> None:
    """Write the cells' constants and formulas, one block per band of rows the description uses (its
    empty cells are written empty too, so a set-up over an older gradsheet sheet leaves no stale run
    behind): a band with a formula is a formula write, the others value writes."""
    for first, last in row_bands(cells):
        block = [
            [cell_input(cells[(r, c)]) if (r, c) in cells else None for c in range(first[1], last[1] + 1)]
            for r in range(first[0], last[0] + 1)
        ]
        rng = _range(sheet, first, last)
        if any(cell.formula is not None for where, cell in cells.items() if _inside(where, first, last)):
            rng.formula = block
        else:
            rng.value = block


def _inside(cell: Ref, first: Ref, last: Ref) -> bool:
    return first[0] <= cell[0] <= last[0] and first[1] <= cell[1] <= last[1]


def _range(sheet: Any, first: Ref, last: Ref) -> Any:
    return sheet.range((first[0] + 1, first[1] + 1), (last[0] + 1, last[1] + 1))


# ---- styles -----------------------------------------------------------------------------------------


def _style_blocks(spec: SheetSpec) -> dict[str, list[tuple[Ref, Ref]]]:
    """Style name -> blocks of cells with that style: row runs of equal style, stacked where runs of
    consecutive rows match, so a styled table is a handful of writes."""
    runs: dict[tuple[int, int, str], list[int]] = defaultdict(list)  # (first col, last col, style) -> rows
    by_row: dict[int, dict[int, str]] = defaultdict(dict)
    for (row, col), cell in spec.cells.items():
        if cell.style:
            by_row[row][col] = cell.style
    for row, styles in by_row.items():
        cols = sorted(styles)
        start = cols[0]
        for k, col in enumerate(cols):
            nxt = cols[k + 1] if k + 1 < len(cols) else None
            if nxt != col + 1 or styles[nxt] != styles[col]:
                runs[(start, col, styles[col])].append(row)
                start = nxt
    blocks: dict[str, list[tuple[Ref, Ref]]] = defaultdict(list)
    for (first_col, last_col, style), rows in sorted(runs.items()):
        rows.sort()
        top = rows[0]
        for k, row in enumerate(rows):
            if k + 1 == len(rows) or rows[k + 1] != row + 1:
                blocks[style].append(((top, first_col), (row, last_col)))
                top = rows[k + 1] if k + 1 < len(rows) else None
    return dict(sorted(blocks.items()))


def apply_style(rng: Any, style: Style) -> None:
    """Set what the style sets on a range (fonts, fill, number format, alignment, wrap, borders)."""
    font = {k: v for k, v in (("bold", style.bold), ("italic", style.italic)) if v}
    font.update({k: v for k, v in (("size", style.size), ("color", style.color), ("name", style.font)) if v})
    if font:
        rng.font.set(**font)
    if style.fill:
        rng.color = style.fill
    if style.number_format:
        rng.number_format = style.number_format
    if style.align:
        _optional(setattr, rng, "horizontal_alignment", style.align)
    if style.valign:
        _optional(setattr, rng, "vertical_alignment", style.valign)
    if style.wrap:
        rng.wrap_text = True
    color = {"color": style.border_color} if style.border_color else {}
    if style.border == "box":
        rng.borders.set("all", line_style="continuous", weight="thin", **color)
    elif style.border == "bottom":
        rng.borders.set(["edge_bottom", "inside_horizontal"], line_style="continuous", weight="thin", **color)


def _optional(func, *args) -> None:
    """Run a write the Book may not support (see the module docstring); skip it where it cannot."""
    try:
        func(*args)
    except _OPTIONAL:
        pass


def column_runs(columns: Iterable[Columns]) -> list[tuple[int, int, float]]:
    """(first, last, width) of the column settings, adjacent columns of equal width joined into one."""
    runs: list[tuple[int, int, float]] = []
    for cols in sorted(columns, key=lambda c: c.first):
        if runs and runs[-1][1] + 1 == cols.first and runs[-1][2] == cols.width:
            runs[-1] = (runs[-1][0], cols.last, cols.width)
        else:
            runs.append((cols.first, cols.last, cols.width))
    return runs


def _column_width(sheet: Any, first: int, last: int, characters: float) -> None:
    """Column widths: the remote engine (Excel on the web, xlwings Server) takes points, the desktop
    engines Excel's character unit."""
    remote = sheet.book.app.engine.name == "remote"
    rng = sheet.range((1, first + 1), (EXCEL_ROWS, last + 1))
    rng.column_width = column_width_points(characters) if remote else characters


# ---- notes, validation, conditional formats, panes ---------------------------------------------------


def _note(sheet: Any, where: Ref, text: str) -> None:
    rng = _range(sheet, where, where)
    if rng.note is not None:
        rng.note.text = text
    else:
        rng.add_note(text)


def _validation(rng: Any, rule: Validation) -> None:
    if rule.kind == "list":
        rng.data_validation.set_list(list(rule.choices))
        return
    setter = {"decimal": rng.data_validation.set_decimal, "whole": rng.data_validation.set_whole_number}
    if rule.operator == "between":
        setter[rule.kind]("between", rule.minimum, rule.maximum)
    else:
        setter[rule.kind](rule.operator, rule.minimum if rule.minimum is not None else rule.maximum)


def _conditional(rng: Any, rule: DataBar | ColorScale) -> None:
    rng.conditional_formats.clear()
    if isinstance(rule, DataBar):
        rng.conditional_formats.add_data_bar(rule.color, minimum=rule.minimum, maximum=rule.maximum)
    elif rule.minimum is None or rule.maximum is None:
        rng.conditional_formats.add_color_scale([rule.min_color, rule.max_color])
    else:
        rng.conditional_formats.add_color_scale(
            [rule.min_color, rule.max_color], thresholds=[rule.minimum, rule.maximum]
        )


def _freeze(sheet: Any, first_scrolling: Ref) -> None:
    """Freeze the rows above and the columns left of a cell (the Book API names the frozen block)."""
    rows, cols = first_scrolling
    if rows and cols:
        frozen = a1_range((0, 0), (rows - 1, cols - 1))
    elif rows:
        frozen = f"1:{rows}"
    else:
        frozen = f"A:{column_name(cols - 1)}"
    sheet.freeze_panes.freeze_at(frozen)


# ---- charts and pictures -----------------------------------------------------------------------------


def add_chart(sheet: Any, chart: Chart) -> Any | None:
    """A native chart bound to its block (replacing a chart of the same name); None where skipped."""
    if chart.x_axis.log_base or chart.y_axis.log_base:
        return None  # see the module docstring
    if chart.name in sheet.charts:
        sheet.charts[chart.name].delete()
    data = sheet.book.sheets[chart.data_sheet]
    xl = sheet.charts.add(
        width=chart.width,
        height=chart.height,
        chart_type="xy_scatter_lines" if chart.markers else "xy_scatter_lines_no_markers",
        name=chart.name,
        anchor=_range(sheet, chart.anchor, chart.anchor),
    )
    xl.set_source_data(
        _range(data, (chart.header_row, chart.y_first), (chart.last_row, chart.y_last)), plot_by="columns"
    )
    xl.set_x_axis_values(_range(data, (chart.header_row + 1, chart.x_col), (chart.last_row, chart.x_col)))
    xl.title = chart.title
    for axis, spec in ((xl.category_axis, chart.x_axis), (xl.value_axis, chart.y_axis)):
        settings = {
            key: value
            for key, value in (
                ("title", spec.title),
                ("minimum_scale", spec.minimum),
                ("maximum_scale", spec.maximum),
                ("major_unit", spec.major_unit),
                ("number_format", spec.number_format),
            )
            if value is not None
        }
        if settings:
            axis.set(**settings)
    xl.legend.position = chart.legend
    return xl


def put_picture(sheet: Any, picture: Picture) -> Any:
    """Add a picture at its anchor, or replace the one of the same name in place (same position)."""
    path = os.fspath(picture.path)
    if picture.name in sheet.pictures:
        return sheet.pictures[picture.name].update(path)
    return sheet.pictures.add(
        path,
        name=picture.name,
        anchor=sheet[a1(picture.anchor)],
        width=picture.width,
        height=picture.height,
    )
