"""How a sheet prints: the scale at which its pages hold what they should, and where each page ends.

A sheet's ``PrintSetup`` (``spec``) says where pages end (manual breaks between columns and rows), what
repeats on every page and which bands of rows are one page each. This module measures the sheet (column
widths in Excel's character unit, rows 15 points unless set, charts and pictures in points) and finds the
largest scale at which

* every block of columns between column breaks (with the repeated columns) fits the page's width,
* every band of rows between row breaks fits its height where the sheet asks for one page per band,
* every chart, picture and reserved picture place ends on its band's first page, so no automatic page
  break runs through it, and none straddles a manual break (a layout error, raised).

The page is the smaller of A4 and Letter with Excel's default margins, so the file prints the same on
either paper. A fixed scale, not "fit to pages": Excel ignores manual page breaks when fitting. Rows are
measured at 15 points (both programs' default for the file); a page's columns as LibreOffice draws them
(the wider of the two), a drawing's as Excel does (where it covers the most columns).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from excel_addin.sheets.spec import Ref, SheetSpec, column_width_points

# usable (width, height) in points: A4 (595.3 x 841.9) and Letter (612 x 792) less Excel's default
# margins (0.7 inch left and right, 0.75 inch top and bottom), the smaller of the two each way
PAGE_POINTS = {True: (792.0 - 100.8, 595.3 - 108.0), False: (595.3 - 100.8, 792.0 - 108.0)}
DEFAULT_COLUMN_WIDTH = 8.43  # characters: XlsxWriter's (and Excel's) default
DEFAULT_ROW_HEIGHT = 15.0  # points
# LibreOffice draws a column of the same width in characters 5.7% wider than Excel (its character unit
# from its own font metrics: 11 characters are 65.0 points there, 61.5 in Excel): measured its way
WIDER = 1.06
SAFETY = 0.97  # room for the programs' slightly different fonts
MAX_SCALE = 100


@dataclass(frozen=True)
class Box:
    """Something drawn over the cells (a chart or picture): its name and the cells it covers."""

    name: str
    first: Ref
    last: Ref


class Measure:
    """A sheet's column widths and row heights in points, as Excel lays them out."""

    def __init__(self, sheet: SheetSpec):
        self.widths: dict[int, float] = {}
        for cols in sheet.columns:  # a later setting of a column wins, as in the file
            for col in range(cols.first, cols.last + 1):
                self.widths[col] = cols.width
        self.heights = dict(sheet.row_heights)

    def width(self, col: int) -> float:
        """Excel's width of a column (a drawing covers the most columns there)."""
        return column_width_points(self.widths.get(col, DEFAULT_COLUMN_WIDTH))

    def height(self, row: int) -> float:
        return self.heights.get(row, DEFAULT_ROW_HEIGHT)

    def columns(self, first: int, last: int) -> float:
        return sum(self.width(col) for col in range(first, last + 1))

    def rows(self, first: int, last: int) -> float:
        return sum(self.height(row) for row in range(first, last + 1))

    def box(self, name: str, anchor: Ref, width: float, height: float) -> Box:
        """The cells a drawing of ``width`` x ``height`` points at ``anchor`` covers."""
        row, col = anchor
        last_row, last_col = row, col
        while self.rows(row, last_row) < height:
            last_row += 1
        while self.columns(col, last_col) < width:
            last_col += 1
        return Box(name, anchor, (last_row, last_col))


def boxes(sheet: SheetSpec, measure: Measure) -> list[Box]:
    """The sheet's charts, pictures and reserved picture places."""
    found = [measure.box(c.name, c.anchor, c.width, c.height) for c in sheet.charts]
    found += [measure.box(p.name, p.anchor, p.width, p.height) for p in sheet.pictures]
    found += [measure.box(f"place at {where}", where, w, h) for where, w, h in sheet.printing.keep]
    return found


def drawn_corner(sheet: SheetSpec) -> Ref:
    """The lowest row and the rightmost column that a chart, picture or reserved place covers."""
    found = boxes(sheet, Measure(sheet))
    return max(box.last[0] for box in found), max(box.last[1] for box in found)


def print_area(sheet: SheetSpec, measure: Measure | None = None) -> tuple[Ref, Ref]:
    """The printed block: the setup's ``area``, else every cell and drawing of the sheet."""
    if sheet.printing.area:
        return sheet.printing.area
    measure = measure or Measure(sheet)
    corners = [*sheet.cells, *(box.last for box in boxes(sheet, measure))]
    return (0, 0), (max(r for r, _ in corners), max(c for _, c in corners))


def spans(first: int, last: int, breaks: list[int]) -> list[tuple[int, int]]:
    """``first``..``last`` cut before each break inside it."""
    cuts = [b for b in sorted(breaks) if first < b <= last]
    starts = [first, *cuts]
    return list(zip(starts, [b - 1 for b in cuts] + [last], strict=True))


@dataclass(frozen=True)
class Limit:
    """One constraint on the scale: ``what`` must fit ``size`` points into the page's ``room``."""

    what: str
    size: float
    room: float

    @property
    def scale(self) -> float:
        return 100.0 * self.room / self.size


def limits(sheet: SheetSpec) -> Iterator[Limit]:
    """Every constraint the sheet's print setup puts on the scale (see the module docstring)."""
    setup, measure = sheet.printing, Measure(sheet)
    page_width, page_height = PAGE_POINTS[setup.landscape]
    (top, left), (bottom, right) = print_area(sheet, measure)
    blocks = spans(left, right, setup.column_breaks)
    bands = spans(top, bottom, setup.row_breaks)
    repeat_cols, repeat_rows = setup.repeat_columns, setup.repeat_rows
    for first, last in blocks:
        extra = measure.columns(*repeat_cols) if repeat_cols and repeat_cols[1] < first else 0.0
        yield Limit(f"columns {first}..{last}", (measure.columns(first, last) + extra) * WIDER, page_width)
    for first, last in bands if setup.one_page else ():
        yield Limit(f"rows {first}..{last}", measure.rows(first, last), page_height)
    for box in boxes(sheet, measure):
        band = _containing(bands, box.first[0], box.last[0], box, "row")
        _containing(blocks, box.first[1], box.last[1], box, "column")
        extra = measure.rows(*repeat_rows) if repeat_rows and repeat_rows[1] < band[0] else 0.0
        yield Limit(box.name, measure.rows(band[0], box.last[0]) + extra, page_height)


def _containing(spans_: list[tuple[int, int]], first: int, last: int, box: Box, what: str) -> tuple[int, int]:
    for start, end in spans_:
        if start <= first and last <= end:
            return start, end
    raise ValueError(f"{box.name} ({what}s {first}..{last}) straddles a page break or the print area")


def page_scale(sheet: SheetSpec) -> int:
    """The print scale in percent: the largest that meets every limit, less ``SAFETY``."""
    scale = min([MAX_SCALE, *(limit.scale for limit in limits(sheet))])
    return max(10, math.floor(scale * SAFETY))


def one_page(sheet: SheetSpec) -> bool:
    """Whether the sheet prints as a single page (no breaks, one band): the renderer fits it to one page."""
    setup = sheet.printing
    return setup.one_page and not setup.row_breaks and not setup.column_breaks
