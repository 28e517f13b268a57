"""The Classify sheet: image paths in column A, ``=CLASSIFY_IMAGE`` and ``=CLASSIFY_PROBS`` beside them; a
28 x 28 drawing grid on the right, its ``=CLASSIFY_PIXELS`` row under the image table; and "What the
network sees" (a chosen image's filters, feature maps and class evidence, as a picture) below that.

The example paths point at ``examples/digits`` beside the workbook and the grid holds a real MNIST test
digit; the cached results are what the shipped model says of them (computed at build time, when asked
for). Which cell holds what and the texts the buttons write are decided here; what the buttons do is
``excel_addin.drawing``'s (the Train sheet and its sink share their cells the same way).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from excel_addin.cells import PIXELS
from excel_addin.sheets import layout
from excel_addin.sheets.fallback import NEEDS_PYTHON, literal, or_else
from excel_addin.sheets.spec import (
    Button,
    ColorScale,
    Picture,
    PrintSetup,
    Ref,
    SheetSpec,
    a1,
    a1_range,
    ref,
    sheet_ref,
)
from excel_addin.sheets.styles import INK, PAPER, PROBABILITY
from excel_addin.sheets.train_sheet import picture_size
from ml.run_dir import DEFAULT_RUN_DIR

ROOT = Path(__file__).resolve().parents[2]
# The example images the Classify sheet points at (paths relative to the workbook's folder).
CLASSIFY_EXAMPLES = tuple(f"examples/digits/{digit}.png" for digit in range(10))
NO_MODEL_YET = "train first"
NO_PROBABILITY = "-"  # a probability cell's text where there is no answer (no model, no gradsheet)
RESULT_HEADER = ("predicted digit", *(f"p({d})" for d in range(10)))

Prediction = tuple[int, list[float]]


def example_predictions() -> list[Prediction | None]:
    """What the shipped model says of each Classify example, for the cells' cached values.

    Probabilities are rounded to 3 decimals (what the cells show), so the build stays byte-identical on
    CPUs whose last float bits differ. An example or model that is missing gives None ("train first").
    """
    from ml.predict import PredictionError, load_classifier, shipped_model_path

    try:
        classifier = load_classifier(shipped_model_path())
    except PredictionError:
        return [None] * len(CLASSIFY_EXAMPLES)
    results: list[Prediction | None] = []
    for path in CLASSIFY_EXAMPLES:
        try:
            prediction = classifier.predict(ROOT / path)
        except PredictionError:
            results.append(None)
            continue
        results.append(_rounded(prediction))
    return results


def _rounded(prediction) -> Prediction:
    return prediction.digit, [round(float(p), 3) for p in prediction.probs]


def classify_sheet(
    predictions: list[Prediction | None] | None = None, grid: Prediction | None = None
) -> SheetSpec:
    """The sheet; ``predictions`` (one per example, see ``example_predictions``) and ``grid`` (the drawing
    grid's, see ``grid_prediction``) are the formulas' cached values, "train first" where missing."""
    sheet = SheetSpec(layout.CLASSIFY_SHEET)
    sheet.column_width("A", 32)
    sheet.column_width("B", 21)  # room for NEEDS_PYTHON
    sheet.column_width("C", 8, last="L")
    sheet.write("A1", "Classify handwritten digits with the trained CNN", "title")
    sheet.write(
        "A2",
        "Put the path of a PNG/JPG image in column A (relative to this workbook's folder or "
        "absolute). Column B predicts the digit, C:L give the probability of each digit.",
        "subtitle",
    )
    sheet.write(
        "A3",
        "Model: the Train sheet's model file if set, else model.pt in its output folder (once "
        "trained), else the model shipped with gradsheet.",
        "note",
    )
    head = layout.CLASSIFY_FIRST_ROW - 2  # 0-based header row, just above the first path
    sheet.write_row((head, 0), ("image path", *RESULT_HEADER), "header")
    predictions = predictions or [None] * len(CLASSIFY_EXAMPLES)
    for k, (path, cached) in enumerate(zip(CLASSIFY_EXAMPLES, predictions, strict=True)):
        row = layout.CLASSIFY_FIRST_ROW - 1 + k
        path_ref = a1((row, 0))
        sheet.write((row, 0), path, "input_text")
        _results(
            sheet,
            row,
            f"CLASSIFY_IMAGE({path_ref},{model_args()})",
            f"CLASSIFY_PROBS({path_ref},{model_args()})",
            cached,
        )
    first = layout.CLASSIFY_FIRST_ROW - 1
    sheet.conditional_formats.append(
        ColorScale((first, 2), (first + len(CLASSIFY_EXAMPLES) - 1, 11), PAPER, PROBABILITY)
    )
    _drawing_grid(sheet, grid)
    _what_the_network_sees(sheet)
    _buttons(sheet)
    # one page, with room for What the network sees' picture
    sheet.printing = PrintSetup(
        one_page=True, keep=[(ref(layout.CLASSIFY_EXPLAIN_PICTURE_CELL), *EXPLAIN_BOX)]
    )
    return sheet


def _model_cells() -> tuple[str, str]:
    """The Train sheet's model file and output folder cells, as references from another sheet."""
    cells = layout.TRAIN_SETTING_CELLS
    return sheet_ref(layout.TRAIN_SHEET, cells["model_path"]), sheet_ref(layout.TRAIN_SHEET, cells["out_dir"])


def model_args() -> str:
    """The CLASSIFY_* functions' model arguments: the Train sheet's model file and output folder (empty
    cells arrive as None: the function's defaults)."""
    return ",".join(_model_cells())


def addin_model_args() -> str:
    """``model_args`` as the add-in's cells need them: on the server relative paths start in its runs
    folder, and this workbook's runs are in its own folder there (``<runs>/<GRADSHEET_ID>``), so the Train
    sheet's model file and output folder are prefixed with the workbook's id."""
    model, run_folder = _model_cells()
    wid = layout.WORKBOOK_ID_NAME
    return (
        f'IF({model}="","",{wid}&"/"&{model}),{wid}&"/"&IF({run_folder}="","{DEFAULT_RUN_DIR}",{run_folder})'
    )


def _results(sheet: SheetSpec, row: int, digit: str, probabilities: str, cached: Prediction | None) -> None:
    """A result row from column B: the digit's formula, then the probabilities' spilling into C:L; where
    gradsheet's Python does not run, ``NEEDS_PYTHON`` and a dash per probability."""
    value, probs = cached if cached else (NO_MODEL_YET, [NO_PROBABILITY] * 10)
    sheet.formula((row, 1), "=" + or_else(digit, literal(NEEDS_PYTHON)), value, "int")
    probabilities = or_else(probabilities, literal(NO_PROBABILITY))
    sheet.formula((row, 2), f"={probabilities}", [list(probs)], "prob", spill=(1, 10))


# ---- the drawing grid: which cells, what they hold -------------------------------------------------------

SHIPPED_TEST_DIGIT = 15  # the MNIST test digit the template's grid holds (a 5)
INK_DECIMALS = 2  # ink to 2 decimals: readable in the formula bar, and the same digit to the network
# Square cells of 19 pixels: a column of 2 characters (Calibri 11: 7 pixels each, plus 5 of padding) and
# rows of 14.25 points (not Excel's default 15: a file leaves default heights to the program, whose own
# default differs, e.g. LibreOffice's)
GRID_COLUMN_WIDTH = 2.0
GRID_ROW_HEIGHT = 14.25
CLEARED = "Cleared: type 1 into cells to draw a digit (0 or empty = paper), or press Random test digit."
GRID_NOTE = (
    "The drawing grid: 0 or empty = paper, 1 = ink, numbers between are grey. The numbers are hidden (the "
    "shading shows them): select a cell to see its number. CLASSIFY_PIXELS takes any scale (0-255 too: "
    "the highest number is ink), but the shading runs from 0 to 1."
)
PIXELS_NOTE = (
    "=CLASSIFY_PIXELS(grid): the digit the CNN sees in the drawing grid; =CLASSIFY_PIXELS(grid, TRUE) "
    "spills its ten probabilities into C:L. The grid is prepared like any picture: cropped to the ink, "
    "fitted into 20 x 20 cells and centred."
)


def grid_block() -> tuple[Ref, Ref]:
    """The grid's first and last cell, (row, column) 0-based."""
    row, col = ref(layout.CLASSIFY_GRID_CELL)
    return (row, col), (row + PIXELS - 1, col + PIXELS - 1)


def grid_range(absolute: bool = False) -> str:
    """The grid's A1 range, e.g. ``N5:AO32``."""
    return a1_range(*grid_block(), absolute=absolute)


def ink_cells(image: np.ndarray) -> list[list[float | None]]:
    """An MNIST digit (uint8 0..255, white ink on black) as the grid's cells: ink 0..1, paper empty."""
    ink = np.round(np.asarray(image, dtype=np.float64) / 255.0, INK_DECIMALS)
    return [[float(v) if v > 0 else None for v in row] for row in ink]


def mnist_test_digit(index: int) -> tuple[np.ndarray, int]:
    """MNIST test image number ``index`` (uint8 28 x 28, white ink on black) and its label."""
    from ml.data import load_mnist

    data = load_mnist()
    return data.test_x[index].numpy(), int(data.test_y[index])


def caption(index: int, label: int) -> str:
    """The caption beside the grid naming the test digit it holds."""
    return f"MNIST test digit #{index}, labelled {label}"


def shipped_grid() -> list[list[float | None]]:
    """The grid's cells as the template ships them: MNIST test digit SHIPPED_TEST_DIGIT."""
    return ink_cells(mnist_test_digit(SHIPPED_TEST_DIGIT)[0])


def grid_prediction() -> Prediction | None:
    """What the shipped model says of the grid's shipped digit (rounded like the examples'), or None
    when the model cannot be read."""
    from excel_addin.cells import classify_pixels
    from ml.predict import shipped_model_path

    try:
        return _rounded(classify_pixels(shipped_grid(), str(shipped_model_path())))
    except (ValueError, OSError):
        return None


def _drawing_grid(sheet: SheetSpec, cached: Prediction | None) -> None:
    """The 28 x 28 grid shaded from paper to ink, its title and caption above it, its =CLASSIFY_PIXELS row
    under the image table."""
    (top, left), (bottom, right) = grid_block()
    sheet.column_width(left - 1, 3)  # a narrow gap after the image table
    sheet.column_width(left, GRID_COLUMN_WIDTH, last=right)
    for row in range(top, bottom + 1):
        sheet.row_height(row, GRID_ROW_HEIGHT)
    title_row = ref(layout.CLASSIFY_GRID_TITLE_CELL)[0]
    sheet.write(layout.CLASSIFY_GRID_TITLE_CELL, "Draw a digit", "title")
    sheet.write(
        (title_row + 1, left),
        "28 x 28 cells: type 1 for ink, 0 or nothing for paper (0.5 is grey). What the CNN sees in it: "
        f"row {layout.CLASSIFY_GRID_RESULT_ROW}.",
        "subtitle",
    )
    label = mnist_test_digit(SHIPPED_TEST_DIGIT)[1]
    sheet.write(layout.CLASSIFY_GRID_CAPTION_CELL, caption(SHIPPED_TEST_DIGIT, label), "status")
    for r, row in enumerate(shipped_grid()):
        for c, ink in enumerate(row):
            sheet.write((top + r, left + c), ink, "pixel")
    sheet.note((top, left), GRID_NOTE)
    sheet.conditional_formats.append(ColorScale((top, left), (bottom, right), PAPER, INK, 0, 1))
    _grid_results(sheet, cached)


def _grid_results(sheet: SheetSpec, cached: Prediction | None) -> None:
    """Under the image table: a header, then the grid's digit and probabilities (=CLASSIFY_PIXELS)."""
    row = layout.CLASSIFY_GRID_RESULT_ROW - 1
    sheet.write_row((row - 1, 0), ("drawing grid", *RESULT_HEADER), "header")
    sheet.write((row, 0), f"the grid on the right ({grid_range()})", "text")
    grid = grid_range(absolute=True)
    digit = f"CLASSIFY_PIXELS({grid},FALSE,{model_args()})"
    _results(sheet, row, digit, f"CLASSIFY_PIXELS({grid},TRUE,{model_args()})", cached)
    sheet.note((row, 1), PIXELS_NOTE)
    sheet.conditional_formats.append(ColorScale((row, 2), (row, 11), PAPER, PROBABILITY, 0, 1))


# ---- what the network sees -------------------------------------------------------------------------------

GRID_TARGET = "grid"  # the target cell's word for the drawing grid
GRID_SOURCE = "the drawing grid"  # its name in the picture's title and the status line
EXPLAIN_PICTURE = "what_the_network_sees"  # the picture's name: replaced in place on every press
EXPLAIN_BOX = (700.0, 330.0)  # points: the picture fits under the image table (columns A:L)
EXPLAIN_WAITING = (
    "Press What the network sees: its picture of the chosen image (filters, feature maps, evidence) "
    "appears below."
)
TARGET_NOTE = (
    "Which image What the network sees draws: the row number of an image path in column A (e.g. "
    f"{layout.CLASSIFY_FIRST_ROW}), or {GRID_TARGET} for the drawing grid."
)


def image_rows() -> range:
    """The sheet rows (1-based) whose column A may hold an image path: from the table's first down to
    the row above the grid's header."""
    return range(layout.CLASSIFY_FIRST_ROW, layout.CLASSIFY_GRID_RESULT_ROW - 1)


def explain_picture(path: str | os.PathLike) -> Picture:
    """An explanation's PNG as the sheet shows it: under the status line, fitted into EXPLAIN_BOX."""
    width, height = picture_size(path, EXPLAIN_BOX)
    return Picture(EXPLAIN_PICTURE, ref(layout.CLASSIFY_EXPLAIN_PICTURE_CELL), Path(path), width, height)


def _what_the_network_sees(sheet: SheetSpec) -> None:
    """The section's title, the cell naming the image, the status line; the picture goes under them
    (CLASSIFY_EXPLAIN_PICTURE_CELL) when the button is pressed."""
    row, col = ref(layout.CLASSIFY_EXPLAIN_TARGET_CELL)
    sheet.write_row((row - 1, 0), ["What the network sees", *[None] * 11], "section")
    sheet.write((row, col - 1), f"image: a row number above, or {GRID_TARGET}", "label")
    sheet.write((row, col), GRID_TARGET, "input_text")
    sheet.note((row, col), TARGET_NOTE)
    status_row, _ = ref(layout.CLASSIFY_EXPLAIN_STATUS_CELL)
    sheet.merge(layout.CLASSIFY_EXPLAIN_STATUS_CELL, (status_row + 1, 11), EXPLAIN_WAITING, "status_wrapped")


# ---- buttons ---------------------------------------------------------------------------------------------

BUTTONS = {  # macro -> (caption, width, height in points)
    "RandomTestDigit": ("Random test digit", 112.0, 22.0),
    "ClearGrid": ("Clear", 60.0, 22.0),
    "WhatTheNetworkSees": ("What the network sees", 150.0, 2 * GRID_ROW_HEIGHT - 2),  # over two grid rows
}
GRID_BUTTONS = ("RandomTestDigit", "ClearGrid")  # above the grid, in a row of their own height
BUTTON_ROW_HEIGHT = 25.0  # points


def _buttons(sheet: SheetSpec) -> None:
    """The sheet's macro buttons (the template's; the add-in has them in its task pane)."""
    for macro, cell in layout.CLASSIFY_BUTTON_CELLS.items():
        caption_text, width, height = BUTTONS[macro]
        sheet.buttons.append(Button(ref(cell), macro, caption_text, width, height))
        if macro in GRID_BUTTONS:
            sheet.row_height(ref(cell)[0], BUTTON_ROW_HEIGHT)
