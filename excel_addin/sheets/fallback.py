"""What a cell that calls gradsheet's Python shows where that Python does not run.

LibreOffice, Google Sheets, Numbers and Excel without gradsheet (macros disabled, macOS's missing classic
UDFs, no add-in) do not know ``BACKPROP_LOSS`` & co.: the call is an error there (``#NAME?``, ``Err:508``).
So every such call is written with its fallback, and no viewer shows an error cell:

* a value the formulas can give where there is one (the Backprop grid falls back to the LR sheets' own
  E_total, so its chart draws everywhere), else the short text ``NEEDS_PYTHON``;
* a call that returns a single value or a fixed-size row: ``IFERROR(call, fallback)``
  (``or_else``). A cell function's bad-input answer, ``#VALUE! reason``, is text, not an error value, so
  IFERROR passes it through unchanged;
* a call that spills a block of varying size (``MODEL_SUMMARY``): ``block_or_else``. IFERROR would lift
  over the two arrays element by element, so a one-cell ``#VALUE! reason`` would be repeated over the whole
  fallback block; the test of the first cell alone keeps each branch whole. The fallback is an array
  constant of the block's size as the file holds it (a spreadsheet without dynamic arrays, such as
  LibreOffice, keeps the block's size and would repeat a single text into every one of its cells).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

NEEDS_PYTHON = "needs Excel + gradsheet"


def literal(value: Any) -> str:
    """A constant as a formula spells it: text in double quotes (quotes doubled), numbers as they are."""
    if isinstance(value, str):
        return '"' + value.replace('"', '""') + '"'
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    return repr(value)


def or_else(call: str, fallback: str) -> str:
    """``IFERROR(call,fallback)``: ``fallback`` is a formula expression (a reference, ``literal(...)``)."""
    return f"IFERROR({call},{fallback})"


def array_constant(rows: Sequence[Sequence[Any]]) -> str:
    """``{"a","b";"c","d"}``: an array constant (columns split by commas, rows by semicolons)."""
    return "{" + ";".join(",".join(literal(value) for value in row) for row in rows) + "}"


def block_or_else(call: str, rows: Sequence[Sequence[Any]]) -> str:
    """A spilling call, or where it fails, the block ``rows`` (see the module docstring)."""
    return f"IF(ISERROR(INDEX({call},1,1)),{array_constant(rows)},{call})"


def text_block(first_rows: Sequence[Sequence[Any]], size: tuple[int, int]) -> list[list[Any]]:
    """A fallback block of ``size`` (rows, columns): ``first_rows`` at its top left, empty text elsewhere."""
    height, width = size
    block = [[""] * width for _ in range(height)]
    for i, row in enumerate(first_rows):
        block[i][: len(row)] = list(row)
    return block
