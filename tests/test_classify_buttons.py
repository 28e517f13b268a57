"""The Classify sheet's buttons on real Books: Random test digit, Clear and What the network sees, as the
workbook's macros (xlwings' remote-engine Book fed the template's cells) and as the add-in's task-pane
buttons (custom scripts over HTTP, their actions applied to the workbook as the task pane would).

Real parts throughout: MNIST's test set, the shipped model, ml.explain's pictures (real PNGs in the
recorded picture actions) and the CLASSIFY_PIXELS cell function on what the grid holds afterwards.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from openpyxl.utils import get_column_letter
from PIL import Image
from server_app import Workbook

from excel_addin import buttons, cells
from excel_addin.classic.udfs import CLASSIFY_PIXELS
from excel_addin.sheets import classify_sheet, layout
from excel_addin.testing.remote_book import actions, make_book, picture_png, read
from ml.data import load_mnist
from ml.explain import explain
from ml.predict import load_classifier, shipped_model_path
from ml.user_pictures import user_style_png

ROOT = Path(__file__).resolve().parents[1]
SHEET = layout.CLASSIFY_SHEET
CAPTION = layout.CLASSIFY_GRID_CAPTION_CELL
STATUS = layout.CLASSIFY_EXPLAIN_STATUS_CELL
TARGET = layout.CLASSIFY_EXPLAIN_TARGET_CELL
SHIPPED = {"model_path": str(shipped_model_path())}  # whatever runs/ holds here, the shipped model
PNG = b"\x89PNG\r\n\x1a\n"
ROWS = "the row number of an image path in column A (5 to 15), or grid"


def grid(book) -> list[list]:
    """The grid's cells after the recorded writes, as CLASSIFY_PIXELS gets them."""
    return read(book, SHEET, layout.CLASSIFY_GRID_CELL, 28, 28)


def caption_of(book) -> tuple[int, int]:
    """(test digit number, label) named by the caption beside the grid."""
    match = re.fullmatch(r"MNIST test digit #(\d+), labelled (\d)", read(book, SHEET, CAPTION))
    assert match, read(book, SHEET, CAPTION)
    return int(match[1]), int(match[2])


def as_ink(cells_: list[list]) -> np.ndarray:
    return np.array([[0.0 if v in (None, "") else v for v in row] for row in cells_])


def status(book) -> str:
    return read(book, SHEET, STATUS)


# ---- Random test digit and Clear --------------------------------------------------------------------


def test_random_test_digit_writes_a_real_test_digit_and_names_it():
    book = make_book(SHIPPED)
    index = buttons.random_test_digit(book, seed=7)
    data = load_mnist()
    assert caption_of(book) == (index, int(data.test_y[index]))
    image = data.test_x[index].numpy()
    assert np.abs(as_ink(grid(book)) - image / 255.0).max() <= 0.005  # ink 0..1, to 2 decimals
    assert [[v is None for v in row] for row in grid(book)] == (image == 0).tolist()  # paper empty
    assert buttons.random_test_digit(make_book(SHIPPED), seed=7) == index  # the same seed, the same digit
    others = {buttons.random_test_digit(make_book(SHIPPED), seed=seed) for seed in range(8, 12)}
    assert index not in others and len(others) == 4


@pytest.mark.slow
def test_classify_pixels_on_the_grid_gives_the_label_of_digits_the_model_gets_right():
    classifier = load_classifier(shipped_model_path())
    data = load_mnist()
    checked = 0
    for seed in range(12):
        book = make_book(SHIPPED)
        index = buttons.random_test_digit(book, seed=seed)
        label = int(data.test_y[index])
        if classifier.predict_array(data.test_x[index].numpy(), bright_ink=True).digit != label:
            continue  # a test digit the model gets wrong (about 1 in 250) says nothing here
        assert CLASSIFY_PIXELS(grid(book), False, SHIPPED["model_path"]) == label, index
        probs = CLASSIFY_PIXELS(grid(book), True, SHIPPED["model_path"])[0]
        assert int(np.argmax(probs)) == label
        checked += 1
    assert checked >= 10


def test_clear_empties_the_grid_and_classify_pixels_says_it_is_empty():
    book = make_book(SHIPPED)
    assert CLASSIFY_PIXELS(grid(book), False, SHIPPED["model_path"]) == 5  # the template's test digit
    buttons.clear_grid(book)
    assert grid(book) == [[None] * 28 for _ in range(28)]
    assert read(book, SHEET, CAPTION) == classify_sheet.CLEARED
    assert CLASSIFY_PIXELS(grid(book)) == (
        "#VALUE! pixels: the grid is empty (every cell is 0): paint a digit with numbers greater than the "
        "paper's, e.g. 1 on empty cells"
    )


# ---- What the network sees ----------------------------------------------------------------------------


def picture_actions(book) -> list[dict]:
    return [a for a in book.json()["actions"] if a["func"] in ("addPicture", "updatePicture")]


@pytest.mark.slow
def test_what_the_network_sees_in_the_grid_draws_its_picture_and_replaces_it_in_place():
    book = make_book(SHIPPED)  # the template: "grid", and the shipped test digit in it
    pixels = read(book, SHEET, layout.CLASSIFY_GRID_CELL, 28, 28)
    expl = buttons.what_the_network_sees(book)
    assert expl is not None and expl.prediction.digit == 5
    # it explains exactly what CLASSIFY_PIXELS classifies
    assert np.array_equal(expl.image, cells.prepared_pixels(pixels))
    assert expl.prediction.probs == pytest.approx(
        CLASSIFY_PIXELS(pixels, True, SHIPPED["model_path"])[0], abs=1e-6
    )
    (added,) = picture_actions(book)
    png = picture_png(added)
    assert added["func"] == "addPicture" and png.startswith(PNG)
    with Image.open(io.BytesIO(png)) as picture:
        assert picture.width > 700 and 250 < picture.height < picture.width
    names = [a["args"] for a in actions(book, "setPictureName", SHEET)]
    assert names == [[0, classify_sheet.EXPLAIN_PICTURE]]
    assert read(book, SHEET, STATUS) == (
        f"Shows the drawing grid, seen as 5 (p = {expl.prediction.confidence:.3f}): the first layer's 8 "
        "filters and their feature maps, and each digit's evidence (its mean is the digit's score)."
    )
    buttons.what_the_network_sees(book)  # again: the same picture, replaced where it is
    assert [a["func"] for a in picture_actions(book)] == ["addPicture", "updatePicture"]
    assert picture_actions(book)[1]["args"][2] == classify_sheet.EXPLAIN_PICTURE


@pytest.mark.slow
def test_what_the_network_sees_in_an_image_row(tmp_path):
    data = load_mnist()
    digit = data.test_x[21].numpy()  # a 6
    picture = user_style_png(digit, tmp_path / "my six.png", style=1)
    book = make_book(SHIPPED, cells={SHEET: {"A9": str(picture), TARGET: 9}})
    expl = buttons.what_the_network_sees(book)
    assert expl.prediction.digit == int(data.test_y[21]) == 6
    expected = explain(load_classifier(shipped_model_path()), picture)
    assert np.array_equal(expl.evidence, expected.evidence) and np.array_equal(expl.image, expected.image)
    assert status(book).startswith(f"Shows row 9, {picture}, seen as 6 (p = ")
    assert picture_png(picture_actions(book)[0]).startswith(PNG)


@pytest.mark.slow
def test_a_template_row_is_found_from_the_workbooks_folder(monkeypatch):
    """Row 7 of the template holds examples/digits/2.png, relative to the workbook's folder (the current
    folder for a Book that was never saved, as here)."""
    monkeypatch.chdir(ROOT)
    book = make_book(SHIPPED, cells={SHEET: {TARGET: "7"}})
    assert buttons.what_the_network_sees(book).prediction.digit == 2
    assert status(book).startswith("Shows row 7, examples/digits/2.png, seen as 2")


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({TARGET: None}, f"B21 is empty: it takes {ROWS}"),
        ({TARGET: "seven"}, f"B21 takes {ROWS}; got 'seven'"),
        ({TARGET: 2.5}, f"B21 takes {ROWS}; got 2.5"),
        ({TARGET: 3}, f"row 3 holds no image path; B21 takes {ROWS}"),
        ({TARGET: 17}, f"row 17 holds no image path; B21 takes {ROWS}"),
        ({TARGET: 15}, "row 15 has no image path in column A: type one there, or another row (or grid) into"),
        ({TARGET: 6, "A6": "/no/such/digit.png"}, "image file not found: /no/such/digit.png"),
        ({TARGET: 6, "A6": str(ROOT / "README.md")}, f"{ROOT / 'README.md'} is not a readable image"),
    ],
)  # fmt: skip
def test_what_the_network_sees_says_what_is_wrong(given, message):
    book = make_book(SHIPPED, cells={SHEET: given})
    assert buttons.what_the_network_sees(book) is None
    assert status(book).startswith(f"Not drawn: {message}")
    assert not picture_actions(book)


def empty_grid() -> dict[str, None]:
    """Every cell of the grid, empty (address -> None)."""
    (top, left), (bottom, right) = classify_sheet.grid_block()
    return {
        f"{get_column_letter(c + 1)}{r + 1}": None
        for r in range(top, bottom + 1)
        for c in range(left, right + 1)
    }


def test_an_empty_grid_and_a_missing_model_are_said_too(tmp_path):
    book = make_book(SHIPPED, cells={SHEET: empty_grid()})
    assert buttons.what_the_network_sees(book) is None
    assert status(book).startswith("Not drawn: pixels: the grid is empty (every cell is 0)")
    missing = tmp_path / "model.pt"
    book = make_book({"model_path": str(missing)})
    assert buttons.what_the_network_sees(book) is None
    assert status(book).startswith(f"Not drawn: no trained model at {missing}: train one with")
    assert not picture_actions(book)


# ---- the add-in's task pane ---------------------------------------------------------------------------


@pytest.mark.slow
def test_the_task_panes_buttons_load_clear_and_explain_the_grid(client):
    book = Workbook(client, model_path=SHIPPED["model_path"])
    book.press("random_test_digit")
    index, label = caption_of(book.book)
    image = load_mnist().test_x[index].numpy()
    pixels = book.book.sheets[SHEET].range(classify_sheet.grid_range()).value
    assert np.abs(as_ink(pixels) - image / 255.0).max() <= 0.005

    book.press("what_the_network_sees")  # the grid ("grid" in B21) as the workbook now holds it
    (added,) = [a for a in book.actions if a["func"] == "addPicture"]
    assert picture_png(added).startswith(PNG)
    seen = CLASSIFY_PIXELS(pixels, False, SHIPPED["model_path"])
    assert book.cell(SHEET, STATUS).startswith(f"Shows the drawing grid, seen as {seen} (p = ")

    book.press("what_the_network_sees")  # again: the picture the workbook now holds is replaced in place
    assert [a["func"] for a in book.actions if "Picture" in a["func"]] == ["updatePicture"]

    book.press("clear_grid")
    assert book.book.sheets[SHEET].range(classify_sheet.grid_range()).value == [[None] * 28] * 28
    assert book.cell(SHEET, CAPTION) == classify_sheet.CLEARED
    book.press("what_the_network_sees")
    assert book.cell(SHEET, STATUS).startswith("Not drawn: pixels: the grid is empty")
    assert not [a for a in book.actions if a["func"] in ("addPicture", "updatePicture")]


def test_the_task_panes_buttons_need_the_classify_sheet(client):
    book = Workbook(client)
    book.payload["sheets"] = [s for s in book.payload["sheets"] if s["name"] != SHEET]
    for script in ("random_test_digit", "clear_grid", "what_the_network_sees"):
        response = book.press(script, expect=400)
        assert "has no Classify sheet: press Set up gradsheet first" in response.text
