"""The Classify sheet's drawing grid as the template and Set up write it: a real MNIST test digit in 28 x 28
square cells shaded by a colour scale, =CLASSIFY_PIXELS over it with the shipped model's answer cached.

LibreOffice recalculates the template and draws it: the grid's values survive, and its cells come out
black where the digit has ink and white where it has none. Real digit pictures copied into the grid's
cells (as a student would paste them) read back through a Book give their digits.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import openpyxl
import pytest
from PIL import Image
from test_classify_pixels import picture_as_grid
from test_setup_workbook import blank_book

from excel_addin.cells import FUNCTION_NAMESPACE
from excel_addin.classic.udfs import CLASSIFY_PIXELS
from excel_addin.sheets import classify_sheet, layout
from excel_addin.sheets.book_render import column_width_points
from excel_addin.sheets.fallback import NEEDS_PYTHON
from excel_addin.sheets.setup import setup_workbook
from excel_addin.sheets.spec import ref
from excel_addin.sheets.styles import INK, PAPER
from excel_addin.testing import libreoffice
from excel_addin.testing.remote_book import make_book
from ml.data import load_mnist
from ml.predict import load_classifier, shipped_model_path

ROOT = Path(__file__).resolve().parents[1]
GRID = classify_sheet.grid_range()
(TOP, LEFT), (BOTTOM, RIGHT) = classify_sheet.grid_block()
RESULT = layout.CLASSIFY_GRID_RESULT_ROW
MODEL_ARGS = classify_sheet.model_args()  # the Train sheet's model file and output folder


def shipped_digit() -> tuple[np.ndarray, int]:
    data = load_mnist()
    index = classify_sheet.SHIPPED_TEST_DIGIT
    return data.test_x[index].numpy(), int(data.test_y[index])


def grid_values(ws) -> list[list]:
    return [[ws.cell(TOP + 1 + r, LEFT + 1 + c).value for c in range(28)] for r in range(28)]


@pytest.mark.slow
def test_the_grid_ships_a_real_test_digit_as_ink_from_0_to_1(formulas):
    ws = formulas[layout.CLASSIFY_SHEET]
    assert GRID == "N5:AO32" and ws[layout.CLASSIFY_GRID_CELL].coordinate == "N5"
    image, label = shipped_digit()
    grid = grid_values(ws)
    ink = np.array([[0.0 if v is None else v for v in row] for row in grid])
    assert np.abs(ink - image / 255.0).max() <= 0.005  # 2 decimals
    assert [[v is None for v in row] for row in grid] == (image == 0).tolist()  # paper is empty
    caption = ws[layout.CLASSIFY_GRID_CAPTION_CELL].value
    assert caption == f"MNIST test digit #{classify_sheet.SHIPPED_TEST_DIGIT}, labelled {label}"
    assert ws.cell(TOP + 1, LEFT + 1).number_format == ";;;"  # the shading shows the numbers
    assert "0 or empty = paper, 1 = ink" in ws.cell(TOP + 1, LEFT + 1).comment.text


def test_the_grids_cells_are_square(formulas):
    """19 x 19 pixels in Excel: the columns' character width as pixels equals the rows' height."""
    ws = formulas[layout.CLASSIFY_SHEET]
    for col in range(LEFT + 1, RIGHT + 2):
        (width,) = [d.width for d in ws.column_dimensions.values() if d.min <= col <= d.max]
        assert width == pytest.approx(19 / 7, abs=0.01), col  # what the file stores: characters + padding
    for row in range(TOP + 1, BOTTOM + 2):
        assert ws.row_dimensions[row].height == 14.25, row
    assert column_width_points(classify_sheet.GRID_COLUMN_WIDTH) == classify_sheet.GRID_ROW_HEIGHT


def _extent(sizes: dict[int, float], first: int, length: float, default: float) -> list[int]:
    """The rows (or columns) a length in points covers from ``first`` on, given their sizes."""
    covered, at = [], first
    while length > 0.5:
        covered.append(at)
        length -= sizes.get(at, default)
        at += 1
    return covered


def test_the_buttons_cover_no_cell_that_holds_something():
    sheet = classify_sheet.classify_sheet()
    widths = {col: column_width_points(c.width) for c in sheet.columns for col in range(c.first, c.last + 1)}
    assert (
        {b.macro for b in sheet.buttons} == set(layout.CLASSIFY_BUTTON_CELLS) == set(classify_sheet.BUTTONS)
    )
    for button in sheet.buttons:
        rows = _extent(sheet.row_heights, button.anchor[0], button.height, 15.0)
        cols = _extent(widths, button.anchor[1], button.width, 48.0)
        cells = [sheet.cells[(r, c)] for r in rows for c in cols if (r, c) in sheet.cells]
        assert not [cell for cell in cells if cell.value is not None or cell.formula], button.macro
        assert not set(rows) & set(range(TOP, BOTTOM + 1)) or all(
            sheet.row_heights[r] == classify_sheet.GRID_ROW_HEIGHT for r in rows
        ), button.macro  # a button beside the grid leaves its rows' height alone


def test_classify_pixels_reads_the_grid_with_the_shipped_models_answer_cached(formulas, cached):
    ws, values = formulas[layout.CLASSIFY_SHEET], cached[layout.CLASSIFY_SHEET]
    _, label = shipped_digit()
    digit, probs = f"B{RESULT}", f"C{RESULT}"
    assert ws[digit].value == f'=IFERROR(CLASSIFY_PIXELS($N$5:$AO$32,FALSE,{MODEL_ARGS}),"{NEEDS_PYTHON}")'
    assert ws[probs].value.ref == f"C{RESULT}:L{RESULT}"
    assert ws[probs].value.text == f'=IFERROR(CLASSIFY_PIXELS($N$5:$AO$32,TRUE,{MODEL_ARGS}),"-")'
    assert values[digit].value == label
    cached_probs = [values.cell(RESULT, 3 + d).value for d in range(10)]
    assert int(np.argmax(cached_probs)) == label and sum(cached_probs) == pytest.approx(1, abs=0.01)
    # the cached answer is the function's on the grid's cells, with the model the template ships
    model = str(shipped_model_path())
    assert CLASSIFY_PIXELS(grid_values(ws), False, model) == label
    assert CLASSIFY_PIXELS(grid_values(ws), True, model)[0] == pytest.approx(cached_probs, abs=0.0005)
    header = [ws.cell(RESULT - 1, 1 + c).value for c in range(12)]
    assert header == ["drawing grid", "predicted digit", *(f"p({d})" for d in range(10))]


def _scales(ws) -> dict[str, tuple]:
    """Range -> (start type, start value, start colour, end type, end value, end colour) of each 2-colour
    scale."""
    found = {}
    for cf in ws.conditional_formatting:
        for rule in cf.rules:
            if rule.type == "colorScale":
                start, end = rule.colorScale.cfvo
                low, high = (c.rgb[-6:].upper() for c in rule.colorScale.color)
                found[str(cf.sqref)] = (start.type, start.val, low, end.type, end.val, high)
    return found


def test_the_grid_and_its_probabilities_are_shaded_from_0_to_1(formulas):
    scales = _scales(formulas[layout.CLASSIFY_SHEET])
    paper, ink = PAPER.lstrip("#"), INK.lstrip("#")
    assert scales[GRID] == ("num", 0, paper, "num", 1, ink)
    assert scales[f"C{RESULT}:L{RESULT}"][:2] == ("num", 0)
    assert scales[f"C{RESULT}:L{RESULT}"][3:5] == ("num", 1)


# ---- LibreOffice ------------------------------------------------------------------------------------


def _classify_page(pdf: Path, out: Path, dpi: int) -> np.ndarray:
    """The PDF page that shows the drawing grid, as an RGB array."""
    pages = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    count = int(next(line.split()[-1] for line in pages.splitlines() if line.startswith("Pages:")))
    for page in range(1, count + 1):
        text = subprocess.run(
            ["pdftotext", "-f", str(page), "-l", str(page), str(pdf), "-"], capture_output=True, text=True
        ).stdout
        if "Draw a digit" in text:
            break
    else:
        raise AssertionError("no page shows the drawing grid")
    args = ["pdftoppm", "-png", "-r", str(dpi), "-f", str(page), "-l", str(page), "-singlefile"]
    subprocess.run([*args, str(pdf), str(out / "classify")], check=True)
    return np.asarray(Image.open(out / "classify.png").convert("RGB"), dtype=np.int16)


def _lattice(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x and y of the grid's cell borders (light grey lines, 29 each way)."""
    grey = (np.abs(image - 224) <= 20).all(axis=2)
    xs = np.nonzero(grey.sum(axis=0) > 100)[0]
    block = grey[:, xs[0] : xs[-1] + 1]
    ys = np.nonzero(block.sum(axis=1) > 0.5 * block.shape[1])[0]
    return xs, ys


@pytest.mark.slow
@pytest.mark.skipif(not libreoffice.available(), reason="LibreOffice (soffice) is not installed")
def test_libreoffice_recalculates_and_draws_the_grid_black_on_white(
    built, shown_recalculated, printed, tmp_path
):
    image, _ = shipped_digit()
    values = shown_recalculated.values[layout.CLASSIFY_SHEET]
    recalculated = [row[LEFT : RIGHT + 1] for row in values[TOP : BOTTOM + 1]]
    assert recalculated == grid_values(openpyxl.load_workbook(built)[layout.CLASSIFY_SHEET])

    page = _classify_page(printed, tmp_path, dpi=100)
    xs, ys = _lattice(page)
    assert len(xs) == len(ys) == 29, (xs, ys)  # 28 x 28 cells with their borders
    centres = [
        [page[(ys[r] + ys[r + 1]) // 2, (xs[c] + xs[c + 1]) // 2] for c in range(28)] for r in range(28)
    ]
    brightness = np.array([[int(rgb.mean()) for rgb in row] for row in centres])
    ink = image / 255.0
    assert (brightness[ink >= 0.95] < 40).all()  # ink: black
    assert (brightness[ink == 0] > 245).all()  # paper: white
    middle = (ink > 0.4) & (ink < 0.6)  # half ink: grey
    assert middle.any() and ((brightness[middle] > 80) & (brightness[middle] < 180)).all()


@pytest.mark.slow
@pytest.mark.skipif(not libreoffice.available(), reason="LibreOffice (soffice) is not installed")
def test_a_viewer_sees_the_cached_digits_and_dashes_not_errors(shown_as_opened, cached):
    """As LibreOffice opens the file, the digits keep the shipped model's cached answers; the probabilities,
    array formulas that LibreOffice recalculates on load whatever it is told, show a dash each (they need
    gradsheet's Python), never an error value."""
    shown = shown_as_opened.values[layout.CLASSIFY_SHEET]
    values = cached[layout.CLASSIFY_SHEET]
    for row in (layout.CLASSIFY_FIRST_ROW, RESULT):
        digit = values.cell(row, 2).value
        assert isinstance(digit, int) and shown[row - 1][1:12] == [
            digit,
            *[classify_sheet.NO_PROBABILITY] * 10,
        ], row
    assert shown_as_opened.errors[layout.CLASSIFY_SHEET] == []


# ---- CLASSIFY_PIXELS on grids made from real digit pictures -------------------------------------------


def _cells_at_grid(grid: np.ndarray, scale: float) -> dict[str, float | None]:
    """A 28 x 28 array as the grid's cells (address -> value), paper left empty, ink scaled to 0..1."""
    cells = {}
    for r in range(28):
        for c in range(28):
            address = f"{openpyxl.utils.get_column_letter(LEFT + 1 + c)}{TOP + 1 + r}"
            cells[address] = round(float(grid[r, c]) / scale, 2) if grid[r, c] > 0 else None
    return cells


def test_digit_pictures_copied_into_the_grid_read_back_as_their_digits():
    """Each example picture, turned into 28 x 28 cells (ink = 255 - gray, scaled to 0..1) and written into
    the sheet's grid, is read back through a Book as =CLASSIFY_PIXELS gets it: the picture's digit."""
    for digit in range(10):
        grid = picture_as_grid(ROOT / "examples" / "digits" / f"{digit}.png")
        book = make_book(cells={layout.CLASSIFY_SHEET: _cells_at_grid(grid, 255)})
        pixels = book.sheets[layout.CLASSIFY_SHEET].range(GRID).value
        assert CLASSIFY_PIXELS(pixels, False, str(shipped_model_path())) == digit


def test_the_shipped_model_gets_the_shipped_digit_right_with_confidence():
    image, label = shipped_digit()
    prediction = load_classifier(shipped_model_path()).predict_array(image, bright_ink=True)
    assert prediction.digit == label and prediction.confidence > 0.9


# ---- Set up (the add-in) ----------------------------------------------------------------------------


@pytest.mark.slow
def test_set_up_writes_the_grid_its_shading_and_the_addins_function(tmp_path):
    from book_replay import replay

    book = blank_book()
    setup_workbook(book)
    replayed = replay(["Sheet1"], book.json()["actions"]).book
    ws = replayed[layout.CLASSIFY_SHEET]
    image, _ = shipped_digit()
    ink = np.array([[0.0 if v in (None, "") else v for v in row] for row in grid_values(ws)])
    assert np.abs(ink - image / 255.0).max() <= 0.005
    digit = ws.cell(RESULT, 2).value
    addin_args = classify_sheet.addin_model_args()  # the model inside the workbook's folder on the server
    assert (
        digit
        == f'=IFERROR({FUNCTION_NAMESPACE}.CLASSIFY_PIXELS($N$5:$AO$32,FALSE,{addin_args}),"{NEEDS_PYTHON}")'
    )
    assert _scales(ws)[GRID] == ("num", 0, PAPER.lstrip("#"), "num", 1, INK.lstrip("#"))  # as written
    assert ws.cell(TOP + 1, LEFT + 1).number_format == ";;;"
    assert ws.row_dimensions[TOP + 1].height == 14.25
    assert ref(layout.CLASSIFY_GRID_CELL) == (TOP, LEFT)
