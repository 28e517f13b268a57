"""The Train sheet's Custom model table: a student's CNN as cells, one row per stage.

A row holds a stage's channels (the output channels of its 3x3 convolutions, as text such as ``8, 16``),
whether they are separable (yes/no), the dropout after its pooling and whether it has residual connections
(yes/no): what ``ml.stages.Stage`` holds. The residual column comes last so that a table from an older
workbook (three columns) still reads the same. The table becomes the stages text of
``ml.stages.parse_stages`` (``"8,16 drop=0.05 | 16,24,24 res | 24,32 sep"``), so
a table, the command line's ``--stages`` and a checkpoint describe a design the same way and every message
comes from ``ml.stages``, naming the stage (the table's row).

Cells arrive as Excel passes them: rows of values, numbers as floats, TRUE/FALSE as bools, empty cells as
None or "". The stages end at the last row whose channels are filled; an empty row above it is an error.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ml import values
from ml.spec import ModelSpec, ModelSpecError
from ml.stages import MAX_STAGES, STAGE_FLAGS, Stage, custom_spec, format_stages, parse_stages
from ml.variants import CUSTOM, VARIANTS

COLUMNS = ("channels", "separable", "dropout", "residual")  # the columns, left to right: Stage fields
YES_NO = ("yes", "no")  # the choices of the yes/no columns (ml.stages.STAGE_FLAGS: named as Stage's fields)


def stages_text(table: Any) -> str:
    """The stages text of a table (rows of up to four cells: COLUMNS), checked by
    ``parse_stages``; ModelSpecError naming the stage when a row is unusable. A text is taken as a stages
    text already."""
    if isinstance(table, str):
        return format_stages(parse_stages(table))
    rows = table_rows(table)
    used = max((k + 1 for k, row in enumerate(rows) if not _empty(row[0])), default=0)
    if not used:
        raise ModelSpecError("the custom model's table is empty: give stage 1 its channels, e.g. 8, 16")
    pieces = [_stage_text(row, k + 1) for k, row in enumerate(rows[:used])]
    return format_stages(parse_stages(" | ".join(pieces)))


def table_rows(table: Any) -> list[list[Any]]:
    """The table as rows of exactly len(COLUMNS) cells (a single value is one row, a flat list one column;
    shorter rows, such as an older workbook's three columns, are filled with empty cells)."""
    rows = table if isinstance(table, list | tuple) else [[table]]
    rows = [list(row) if isinstance(row, list | tuple) else [row] for row in rows]
    if any(len(row) > len(COLUMNS) for row in rows):
        width = max(len(row) for row in rows)
        raise ModelSpecError(
            f"a custom model table has {len(COLUMNS)} columns ({', '.join(COLUMNS)}), got {width}"
        )
    return [row + [None] * (len(COLUMNS) - len(row)) for row in rows]


def _empty(cell: Any) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def _stage_text(row: list[Any], number: int) -> str:
    """One row as a stage of the stages text ("8,16 sep res drop=0.05"); "" for a row without channels."""
    cell = dict(zip(COLUMNS, row, strict=True))
    if _empty(cell["channels"]):
        return ""  # parse_stages: "stage N is empty"
    words = [_channels_word(cell["channels"])]
    for column, word in STAGE_FLAGS.items():
        try:
            words += [word] if not _empty(cell[column]) and values.as_flag(cell[column], column) else []
        except ValueError as error:
            raise ModelSpecError(f"stage {number}: {error}") from None
    dropout = cell["dropout"]
    if not _empty(dropout):
        words.append(f"drop={_number_word(dropout)}")
    return " ".join(words)


def _channels_word(cell: Any) -> str:
    """Channel counts as one word ("8,16"): a cell's text split at commas, semicolons or spaces, or its
    number; what is not a whole number stays as typed, for parse_stages to name."""
    if isinstance(cell, str):
        return ",".join(part for part in re.split(r"[\s,;|]+", cell.strip()) if part)
    return _number_word(cell)


def _number_word(cell: Any) -> str:
    """A cell as one word: a whole float as an integer (Excel's 16.0 is 16), text without spaces."""
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return re.sub(r"[\s|]+", "", str(cell))


def table_of(stages: Sequence[Stage]) -> list[list[Any]]:
    """The table's MAX_STAGES rows for ``stages`` (a cell per COLUMNS); empty rows below."""
    rows: list[list[Any]] = [[_cell_of(stage, column) for column in COLUMNS] for stage in stages]
    return rows + [[None] * len(COLUMNS) for _ in range(MAX_STAGES - len(rows))]


def _cell_of(stage: Stage, column: str) -> Any:
    """A stage's cell in a column (named as Stage's field): channels as text, yes/no for a flag."""
    value = getattr(stage, column)
    if column == "channels":
        return ", ".join(map(str, value))
    if column in STAGE_FLAGS:
        return YES_NO[0] if value else YES_NO[1]
    return value


def spec_from_cells(spec: Any) -> ModelSpec:
    """The network that MODEL_SUMMARY's ``spec`` names: a Custom model table, or one cell holding a model
    variant's name or a stages text. ModelSpecError (a ValueError) says what is wrong."""
    rows = table_rows(spec)
    first = rows[0][0] if len(rows) == 1 else None
    if isinstance(first, str) and first.strip() and all(_empty(cell) for cell in rows[0][1:]):
        return _named_spec(first)
    return custom_spec(stages_text(rows))


def _named_spec(text: str) -> ModelSpec:
    """A variant by its name, or a stages text (it has channel counts, so digits)."""
    name = text.strip().lower()
    if name in VARIANTS:
        return VARIANTS[name]
    if any(ch.isdigit() for ch in name):
        return custom_spec(text)
    if name == CUSTOM:
        raise ModelSpecError("spec: for the custom model give its table of stages (or its stages text)")
    raise ModelSpecError(
        f"spec: unknown model {text!r}; give a model ({', '.join(VARIANTS)}), a stages text such as "
        "'8,16 | 16,24 | 24,32 sep', or a table of stages"
    )
