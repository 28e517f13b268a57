"""A sheet described once, as data: what each cell holds and how the sheet looks.

The sheet modules (``backprop_sheets``, ``graphs_sheet``, ``train_sheet``, ``classify_sheet``,
``conf_sheet``) fill a ``SheetSpec`` and know nothing of where it goes; two renderers draw it:
``xlsx_render`` into the template file (XlsxWriter) and ``book_render`` into any open xlwings Book (the
"Set up gradsheet" button). So the template and a set-up workbook cannot drift apart: there is one layout.

Cells are addressed by 0-based ``(row, column)`` or by A1 text. Formats are names of ``styles.STYLES``.
A formula cell carries its *cached* value too: what the file shows before a spreadsheet recalculates
(a Book computes its own). Charts bind one contiguous block of value columns (series names in the header
row above) plus an x column, the shape Excel on the web can bind (one source range per chart).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xlsxwriter.utility import xl_cell_to_rowcol, xl_col_to_name, xl_rowcol_to_cell

Ref = tuple[int, int]  # (row, column), 0-based


def ref(where: str | Ref) -> Ref:
    """``(row, column)`` of an A1 address or of a (row, column) pair."""
    return xl_cell_to_rowcol(where) if isinstance(where, str) else (int(where[0]), int(where[1]))


def a1(where: str | Ref, absolute: bool = False) -> str:
    """The A1 address of a cell (``$C$4`` with ``absolute``)."""
    row, col = ref(where)
    return xl_rowcol_to_cell(row, col, row_abs=absolute, col_abs=absolute)


def a1_range(first: str | Ref, last: str | Ref, absolute: bool = False) -> str:
    """``A1:B2`` (or ``$A$1:$B$2``) of a block given by its corners."""
    return f"{a1(first, absolute)}:{a1(last, absolute)}"


def offset(where: str | Ref, rows: int = 0, columns: int = 0) -> str:
    """The A1 address ``rows`` below and ``columns`` right of a cell."""
    row, col = ref(where)
    return xl_rowcol_to_cell(row + rows, col + columns)


def column_name(col: int) -> str:
    return xl_col_to_name(col)


def column_width_points(characters: float) -> float:
    """A column width in points from Excel's character unit (Calibri 11: 7 px per digit, 5 px padding)."""
    pixels = int(characters * 7 + 0.5) + 5 if characters >= 1 else int(characters * 12 + 0.5)
    return pixels * 0.75


@dataclass(frozen=True)
class Cell:
    """One cell: a constant ``value``, or a ``formula`` with its ``cached`` value, in a named ``style``.

    A formula with ``spill`` = (rows, columns) returns a block: an array formula over that block in the
    file, a dynamic array that spills in Excel. Its ``cached`` value is then a list of rows. With
    ``dynamic`` the file's formula is a dynamic array too (its block follows the result's size when Excel
    recalculates; ``spill`` is the cached result's). A styled empty cell inside the block styles that
    cell of the result (e.g. a header row); the formula's style covers the rest.
    """

    value: Any = None
    formula: str | None = None
    cached: Any = None
    style: str | None = None
    spill: tuple[int, int] | None = None
    dynamic: bool = False


@dataclass(frozen=True)
class Columns:
    """Width (in characters, Excel's column unit) and optional style of columns ``first``..``last``."""

    first: int
    last: int
    width: float
    style: str | None = None


@dataclass(frozen=True)
class Validation:
    """A data-validation rule on a block: ``kind`` "list" (``choices``), "decimal" or "whole".

    ``operator`` uses xlwings' names ("between", "greater_than", ...). The error title and message are
    shown by the file's rule only (a Book cannot set them).
    """

    first: Ref
    last: Ref
    kind: str
    choices: tuple[str, ...] = ()
    operator: str = "between"
    minimum: float | None = None
    maximum: float | None = None
    error_title: str | None = None
    error_message: str | None = None


@dataclass(frozen=True)
class DataBar:
    """A data bar over a block, from ``minimum`` (empty bar) to ``maximum`` (full bar)."""

    first: Ref
    last: Ref
    color: str
    minimum: float
    maximum: float


@dataclass(frozen=True)
class ColorScale:
    """A 2-colour scale over a block: ``min_color`` at ``minimum``, ``max_color`` at ``maximum`` (numbers;
    values beyond take the end colour), or at the block's lowest and highest values where None."""

    first: Ref
    last: Ref
    min_color: str
    max_color: str
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True)
class Axis:
    """A chart axis: title, bounds, tick spacing, number format, logarithmic base."""

    title: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    major_unit: float | None = None
    number_format: str | None = None
    log_base: int | None = None


@dataclass(frozen=True)
class Chart:
    """A native x-y chart with straight lines: one series per column ``y_first``..``y_last`` of
    ``data_sheet`` (its name in ``header_row``, values below down to ``last_row``), plotted against
    column ``x_col`` of the same rows. Placed at ``anchor``, ``width`` x ``height`` points."""

    name: str
    anchor: Ref
    width: float
    height: float
    title: str
    data_sheet: str
    header_row: int
    last_row: int
    x_col: int
    y_first: int
    y_last: int
    x_axis: Axis = Axis()
    y_axis: Axis = Axis()
    markers: bool = False
    legend: str = "right"
    title_size: int = 13

    @property
    def y_cols(self) -> range:
        return range(self.y_first, self.y_last + 1)


@dataclass(frozen=True)
class Button:
    """A form button running a VBA macro (only the macro-enabled template file has macros)."""

    anchor: Ref
    macro: str
    caption: str
    width: float
    height: float


@dataclass(frozen=True)
class Picture:
    """A picture file at ``anchor``, shown ``width`` x ``height`` points, under ``name``."""

    name: str
    anchor: Ref
    path: Path
    width: float
    height: float


@dataclass
class PrintSetup:
    """How a sheet prints: the file's page setup (XlsxWriter; a Book cannot set it). ``print_layout``
    turns it into a scale at which every block of columns fits a page's width, ``one_page`` bands fit its
    height, and every chart, picture and ``keep`` box lies on one page.

    ``area``: the printed block (None: what the sheet uses); ``row_breaks``/``column_breaks``: a page ends
    above / left of each of these (0-based); ``repeat_rows``/``repeat_columns``: printed on every page;
    ``one_page``: each band of rows between breaks is one page tall; ``keep``: places (anchor, width,
    height in points) of pictures that a run adds later, which must not straddle a page break either.
    """

    landscape: bool = True
    area: tuple[Ref, Ref] | None = None
    row_breaks: list[int] = field(default_factory=list)
    column_breaks: list[int] = field(default_factory=list)
    repeat_rows: tuple[int, int] | None = None
    repeat_columns: tuple[int, int] | None = None
    one_page: bool = False
    across: bool = False  # page order: over, then down (default: down, then over)
    keep: list[tuple[Ref, float, float]] = field(default_factory=list)


@dataclass
class SheetSpec:
    """Everything one sheet holds; built with the methods below, read by the renderers."""

    name: str
    cells: dict[Ref, Cell] = field(default_factory=dict)
    columns: list[Columns] = field(default_factory=list)
    row_heights: dict[int, float] = field(default_factory=dict)
    merges: list[tuple[Ref, Ref]] = field(default_factory=list)
    notes: dict[Ref, str] = field(default_factory=dict)
    validations: list[Validation] = field(default_factory=list)
    conditional_formats: list[DataBar | ColorScale] = field(default_factory=list)
    charts: list[Chart] = field(default_factory=list)
    buttons: list[Button] = field(default_factory=list)
    pictures: list[Picture] = field(default_factory=list)
    freeze: Ref | None = None  # the first cell that scrolls (rows above and columns left of it stay)
    tab_color: str | None = None
    printing: PrintSetup = field(default_factory=PrintSetup)

    # ---- cells ------------------------------------------------------------------------------------
    def write(self, where: str | Ref, value: Any, style: str | None = None) -> None:
        """A constant (text, number, bool; None for an empty, possibly styled, cell)."""
        self.cells[ref(where)] = Cell(value=value, style=style)

    def formula(
        self,
        where: str | Ref,
        formula: str,
        cached: Any,
        style: str | None = None,
        spill: tuple[int, int] | None = None,
        dynamic: bool = False,
    ) -> None:
        """A formula (starting with "=") and the value it has as built (see ``Cell``)."""
        if not formula.startswith("="):
            raise ValueError(f"a formula starts with '=': {formula!r}")
        self.cells[ref(where)] = Cell(
            formula=formula, cached=cached, style=style, spill=spill, dynamic=dynamic
        )

    def write_row(
        self, where: str | Ref, values: Iterable[Any], style: str | Sequence[str | None] | None = None
    ):
        """Constants from ``where`` rightwards; ``style`` one for all or one per value."""
        row, col = ref(where)
        values = list(values)
        styles = style if isinstance(style, list | tuple) else [style] * len(values)
        for j, (value, cell_style) in enumerate(zip(values, styles, strict=True)):
            self.write((row, col + j), value, cell_style)

    # ---- layout -----------------------------------------------------------------------------------
    def column_width(self, first: str | int, width: float, last: str | int | None = None, style=None) -> None:
        """Width of a column (letters or 0-based index), or of ``first``..``last``."""
        first_col = _col(first)
        self.columns.append(Columns(first_col, _col(last) if last is not None else first_col, width, style))

    def row_height(self, row: int, height: float) -> None:
        """Height of a 0-based row, in points."""
        self.row_heights[row] = height

    def merge(self, first: str | Ref, last: str | Ref, value: Any, style: str | None = None) -> None:
        """One cell over a block, holding ``value``."""
        self.write(first, value, style)
        first_ref, last_ref = ref(first), ref(last)
        for r in range(first_ref[0], last_ref[0] + 1):
            for c in range(first_ref[1], last_ref[1] + 1):
                if (r, c) != first_ref:
                    self.cells[(r, c)] = Cell(style=style)
        self.merges.append((first_ref, last_ref))

    def note(self, where: str | Ref, text: str) -> None:
        self.notes[ref(where)] = text

    def validate_list(self, where: str | Ref, choices: Sequence[str]) -> None:
        """A dropdown of ``choices`` on one cell."""
        cell = ref(where)
        self.validations.append(Validation(cell, cell, "list", tuple(str(c) for c in choices)))

    def validate_number(self, where: str | Ref, kind: str, operator: str, **rule: Any) -> None:
        """A "decimal" or "whole" number rule on one cell (minimum, maximum, error_title, error_message)."""
        cell = ref(where)
        self.validations.append(Validation(cell, cell, kind, operator=operator, **rule))


@dataclass
class WorkbookSpec:
    """Sheets in order, workbook-level defined names (name -> "=Sheet!$A$1") and the active sheet."""

    sheets: list[SheetSpec]
    names: dict[str, str] = field(default_factory=dict)
    active: str | None = None


def _col(col: str | int) -> int:
    return col if isinstance(col, int) else xl_cell_to_rowcol(f"{col}1")[1]


def quote_sheet(name: str) -> str:
    """A sheet name as formulas spell it: quoted when it holds anything but letters, digits, _."""
    return name if name.replace("_", "").isalnum() and not name[0].isdigit() else f"'{name}'"


def sheet_ref(sheet: str, where: str | Ref) -> str:
    """``Sheet!$C$4``: an absolute reference to a cell of another sheet."""
    return f"{quote_sheet(sheet)}!{a1(where, absolute=True)}"


def sheet_range(sheet: str, first: str | Ref, last: str | Ref) -> str:
    """``Sheet!$C$4:$C$9``."""
    return f"{quote_sheet(sheet)}!{a1_range(first, last, absolute=True)}"
