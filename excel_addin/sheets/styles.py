"""The workbook's named cell formats, defined once for every sheet and both renderers.

A ``Style`` says what a cell looks like in renderer-neutral terms; ``xlsx_render`` turns it into an
XlsxWriter format, ``book_render`` into xlwings Range writes. Cells refer to styles by name.
"""

from __future__ import annotations

from dataclasses import dataclass

NAVY = "#1F3864"
INPUT_FILL = "#FFF2CC"  # yellow: a cell the user edits
GRID_LINE = "#E0E0E0"
# chart series colours in order (Office's classic palette, spelled out so every renderer draws the same)
SERIES_COLORS = ("#4F81BD", "#C0504D", "#9BBB59", "#8064A2", "#4BACC6", "#F79646", "#2C4D75", "#772C2A")
# The Classify sheet's colour scales: the drawing grid from paper (0) to ink (1), probabilities 0 to 1
PAPER = "#FFFFFF"
INK = "#000000"
PROBABILITY = "#63BE7B"


@dataclass(frozen=True)
class Style:
    """Font, fill, number format, alignment and border of a cell. ``None``: the workbook's default."""

    bold: bool = False
    italic: bool = False
    size: float | None = None
    font: str | None = None
    color: str | None = None  # font colour
    fill: str | None = None
    number_format: str | None = None
    align: str | None = None  # "left" | "center" | "right"
    valign: str | None = None  # "top" | "center" | "bottom"
    wrap: bool = False
    border: str | None = None  # "box" (thin, all sides) | "bottom" (thin underline)
    border_color: str | None = None  # None: black


STYLES: dict[str, Style] = {
    "title": Style(bold=True, size=16, color=NAVY),
    "subtitle": Style(italic=True, color="#595959"),
    "section": Style(bold=True, color=NAVY, border="bottom"),
    "header": Style(bold=True, fill=NAVY, color="#FFFFFF", align="center", valign="center", wrap=True,
                    border="box"),
    "group": Style(bold=True, fill="#D9E1F2", align="center", border="box"),
    "label": Style(),
    "note": Style(italic=True, color="#7F7F7F"),
    "code": Style(font="Consolas", size=10),
    "input": Style(fill=INPUT_FILL, border="box", number_format="0.00##"),
    "input_text": Style(fill=INPUT_FILL, border="box", align="left"),
    "input_int": Style(fill=INPUT_FILL, border="box", number_format="0"),
    # text format: "8,16" stays text in any locale; a header row that a message can overflow (the first
    # cell left-aligned, no wrap, no borders between the cells, dark text: readable past the fill)
    "input_channels": Style(fill=INPUT_FILL, border="box", align="left", number_format="@"),
    "live_header": Style(bold=True, fill="#D9E1F2", border="bottom"),
    "live_head": Style(bold=True, fill="#D9E1F2", align="center", border="bottom"),
    "preset": Style(color="#404040", fill="#F2F2F2", border="box", align="left"),
    "preset_name": Style(bold=True, color=NAVY, fill="#D9E1F2", border="box", align="center"),
    "status": Style(bold=True),
    "percent": Style(number_format="0.0%"),
    "int": Style(number_format="0", align="center"),
    "text": Style(),
    "value": Style(number_format="0.000000"),
    "loss": Style(number_format="0.000000000"),
    "small": Style(number_format="0.000E+00"),
    "metric": Style(number_format="0.0000"),
    "metric_percent": Style(number_format="0.00%"),
    "seconds": Style(number_format="0.0"),
    "prob": Style(number_format="0.000"),
    "total": Style(bold=True, color=NAVY, border="bottom"),
    # the Derivation sheet: neurons as coloured boxes (name above value), arrows and weights as text
    "diagram_head": Style(italic=True, color="#595959", align="center"),
    "neuron_in": Style(bold=True, fill="#E2EFDA", border="box", align="center", number_format="0.0000"),
    "neuron_hidden": Style(bold=True, fill="#DDEBF7", border="box", align="center", number_format="0.0000"),
    "neuron_out": Style(bold=True, fill="#FCE4D6", border="box", align="center", number_format="0.0000"),
    "neuron_error": Style(bold=True, fill="#F8CBAD", border="box", align="center", number_format="0.000000"),
    "diagram_edge": Style(color="#7F7F7F", align="center"),
    "diagram_total": Style(bold=True, color=NAVY, align="right"),
    "diagram_weight": Style(bold=True, color="#C00000", align="center"),
    "diagram_value": Style(color="#C00000", align="center", number_format="0.00##"),
    "equation": Style(font="Cambria Math"),
    "equation_head": Style(bold=True, italic=True, color=NAVY),
    "worked_value": Style(number_format="0.000000000"),
    "worked_check": Style(color="#548235", align="center"),
    # the Classify sheet's drawing grid: a light frame per cell; the numbers hidden (the colour scale shows
    # them), so the cells read as a picture
    "pixel": Style(number_format=";;;", border="box", border_color=GRID_LINE),
    "status_wrapped": Style(bold=True, wrap=True, valign="top"),  # a status line that may take two lines
}  # fmt: skip
