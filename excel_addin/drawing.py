"""The Classify sheet's drawing grid and "What the network sees", on any xlwings Book.

A digit drawn in cells: the grid (28 x 28 cells from ``layout.CLASSIFY_GRID_CELL``) holds ink from 0 (paper;
an empty cell is paper too) to 1, which the sheet's colour scale shades from white to black and
``=CLASSIFY_PIXELS(grid)`` classifies. Its buttons:

* **Random test digit** (``write_test_digit``): one of MNIST's 10,000 test digits (never trained on) into
  the grid, and which one into the caption cell ("MNIST test digit #15, labelled 5");
* **Clear** (``clear_grid``): an empty grid to draw in;
* **What the network sees** (``explain``): for the image the target cell names (a row number: the image
  path in column A of that row; or "grid"), ``ml.explain``'s picture (the first layer's filters and their
  feature maps, the class evidence maps before global average pooling) onto the sheet, replaced in place
  on every press, and a status line saying what it shows.

The workbook's macros (``excel_addin.macros``) and the add-in's task-pane buttons
(``excel_addin.server.buttons``) call these. Which cell holds what, and the texts the template shows
before a button is pressed, come from ``excel_addin.sheets.classify_sheet``. Nothing raises into Excel:
what went wrong is said in the caption or status cell.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from excel_addin import cells
from excel_addin.sheets import classify_sheet as sheet_cells
from excel_addin.sheets import layout
from ml import values

GRID = sheet_cells.GRID_TARGET

# ---- the grid -----------------------------------------------------------------------------------------


def random_index(seed: int | None = None) -> int:
    """A random test-image number (the same one for the same ``seed``; None: a fresh one each time)."""
    from ml.data import load_mnist

    return int(np.random.default_rng(seed).integers(len(load_mnist().test_x)))


def _sheet(book: Any) -> Any:
    return book.sheets[layout.CLASSIFY_SHEET]


def write_test_digit(book: Any, seed: int | None = None) -> int | None:
    """Random test digit: a random MNIST test digit into the grid and its caption; its number, or None
    (the caption says why) when the data set cannot be read."""
    sheet = _sheet(book)
    try:
        index = random_index(seed)
        image, label = sheet_cells.mnist_test_digit(index)
    except (OSError, ValueError, ImportError) as error:
        sheet[layout.CLASSIFY_GRID_CAPTION_CELL].value = f"No test digit: MNIST could not be read ({error})"
        return None
    sheet[layout.CLASSIFY_GRID_CELL].value = sheet_cells.ink_cells(image)
    sheet[layout.CLASSIFY_GRID_CAPTION_CELL].value = sheet_cells.caption(index, label)
    return index


def clear_grid(book: Any) -> None:
    """Clear: an empty grid (every cell paper), and a caption saying how to draw."""
    sheet = _sheet(book)
    sheet[layout.CLASSIFY_GRID_CELL].value = [[None] * cells.PIXELS for _ in range(cells.PIXELS)]
    sheet[layout.CLASSIFY_GRID_CAPTION_CELL].value = sheet_cells.CLEARED


# ---- what the network sees ------------------------------------------------------------------------------


def _rows_text() -> str:
    rows = sheet_cells.image_rows()
    return f"the row number of an image path in column A ({rows[0]} to {rows[-1]}), or {GRID}"


def target(value: Any) -> int | str:
    """The image the target cell names: a row number (int) or GRID; ValueError saying what to type."""
    cell = layout.CLASSIFY_EXPLAIN_TARGET_CELL
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError(f"{cell} is empty: it takes {_rows_text()}")
    if isinstance(value, str) and value.strip().lower() == GRID:
        return GRID
    try:
        row = values.as_whole(value.strip() if isinstance(value, str) else value, "row")
    except ValueError:
        raise ValueError(f"{cell} takes {_rows_text()}; got {value!r}") from None
    if row not in sheet_cells.image_rows():
        raise ValueError(f"row {row} holds no image path; {cell} takes {_rows_text()}")
    return row


def target_image(book: Any, chosen: int | str, files: cells.Files) -> tuple[np.ndarray, str]:
    """The chosen image as the network gets it (MNIST-style 28 x 28) and its source: the image path as
    the row gives it, or the grid's name."""
    sheet = _sheet(book)
    if chosen == GRID:
        pixels = sheet.range(sheet_cells.grid_range()).options(ndim=2).value
        return cells.prepared_pixels(pixels), sheet_cells.GRID_SOURCE
    from ml.preprocess import preprocess_file

    path = sheet[f"A{chosen}"].value
    if path is None or not str(path).strip():
        raise ValueError(
            f"row {chosen} has no image path in column A: type one there, or another row (or {GRID}) "
            f"into {layout.CLASSIFY_EXPLAIN_TARGET_CELL}"
        )
    return preprocess_file(files.resolve(path, "image path")), str(path).strip()


def classifier_of(book: Any, files: cells.Files):
    """The classifier the CLASSIFY_* cells use: the Train sheet's model file, else its run folder's model,
    ... (``cells.model_location``)."""
    from ml.predict import load_classifier

    train = book.sheets[layout.TRAIN_SHEET]
    model_path = train[layout.TRAIN_SETTING_CELLS["model_path"]].value
    out_dir = train[layout.TRAIN_SETTING_CELLS["out_dir"]].value
    return load_classifier(cells.model_location(model_path, files, out_dir))


def explained_text(chosen: int | str, expl: Any) -> str:
    """The status line of a drawn explanation of the ``chosen`` image."""
    what = expl.source if chosen == GRID else f"row {chosen}, {expl.source}"
    prediction = expl.prediction
    return (
        f"Shows {what}, seen as {prediction.digit} (p = {prediction.confidence:.3f}): the first layer's "
        f"{len(expl.filters)} filters and their feature maps, and each digit's evidence (its mean is the "
        "digit's score)."
    )


def explain(book: Any, files: cells.Files) -> Any | None:
    """What the network sees: the chosen image's ``ml.explain`` picture onto the sheet (replacing the
    previous one) and a status line; the Explanation, or None when the status line says what is wrong.
    ``files``: where relative image and model paths start, as for the CLASSIFY_* cells."""
    from excel_addin.sheets.book_render import put_picture
    from ml import explain as ml_explain

    sheet = _sheet(book)
    try:
        chosen = target(sheet[layout.CLASSIFY_EXPLAIN_TARGET_CELL].value)
        image, source = target_image(book, chosen, files)
        expl = ml_explain.explain(classifier_of(book, files), image, source=source)
    except (ValueError, TypeError, OSError) as error:
        sheet[layout.CLASSIFY_EXPLAIN_STATUS_CELL].value = f"Not drawn: {error}"
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = ml_explain.plot_explanation(expl, Path(tmp) / f"{sheet_cells.EXPLAIN_PICTURE}.png")
        put_picture(sheet, sheet_cells.explain_picture(path))
    sheet[layout.CLASSIFY_EXPLAIN_STATUS_CELL].value = explained_text(chosen, expl)
    return expl
