"""CLASSIFY_PIXELS: a 28 x 28 range of numbers (ink greater than paper, any scale) gives the digit.

Checked on real MNIST test digits as cells (0-255, 0-1, a 0-9 painting scale, with empty cells for paper)
and on real digit pictures turned into 28 x 28 grids the way a student would copy them into a sheet; and
every bad range gives its message, as the classic UDF (the add-in server's face is tested against it in
test_server_http.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from excel_addin.cells import ERROR_PREFIX, pixel_grid
from excel_addin.classic.udfs import CLASSIFY_PIXELS
from ml.data import load_mnist
from ml.predict import load_classifier, shipped_model_path
from ml.user_pictures import user_style_png

ROOT = Path(__file__).resolve().parents[1]
N_DIGITS = 30


@pytest.fixture(scope="module")
def mnist_digits() -> list[tuple[np.ndarray, int]]:
    """Test-set digits (never trained on): uint8 28x28, white ink on black, with their labels."""
    data = load_mnist()
    picked = np.random.default_rng(1).choice(len(data.test_x), N_DIGITS, replace=False)
    return [(data.test_x[i].numpy(), int(data.test_y[i])) for i in picked]


def cells_of(grid: np.ndarray, empty_paper: bool = False) -> list[list]:
    """A grid as Excel hands a range over: rows of Python numbers, empty cells as None."""
    return [[None if (empty_paper and v == 0) else v.item() for v in row] for row in grid]


def picture_as_grid(path: Path) -> np.ndarray:
    """A digit picture (dark ink on light paper) copied into 28 x 28 cells: resized, ink = 255 - gray."""
    gray = Image.open(path).convert("L").resize((28, 28), Image.Resampling.BOX)
    return 255 - np.asarray(gray, dtype=np.int64)


@pytest.mark.slow
def test_mnist_digits_as_cells_give_their_labels_on_any_scale(mnist_digits):
    scales = {
        "0-255": lambda g: cells_of(g.astype(np.int64)),
        "0-1": lambda g: cells_of(g / 255.0),
        "0-9, paper left empty": lambda g: cells_of(
            np.rint(g / 255.0 * 9).astype(np.int64), empty_paper=True
        ),
    }
    for scale, to_cells in scales.items():
        predicted = [CLASSIFY_PIXELS(to_cells(g)) for g, _ in mnist_digits]
        right = sum(p == label for p, (_, label) in zip(predicted, mnist_digits, strict=True))
        assert right >= N_DIGITS - 1, f"{scale}: {right}/{N_DIGITS}: {predicted}"


def test_probabilities_agree_with_the_digit_and_with_ml_predict(mnist_digits):
    model = str(shipped_model_path())  # explicitly: runs/ may hold a model of the user's
    classifier = load_classifier(model)
    for grid, _ in mnist_digits[:5]:
        cells = cells_of(grid.astype(np.int64))
        probs = CLASSIFY_PIXELS(cells, True, model)
        assert len(probs) == 1 and len(probs[0]) == 10
        assert sum(probs[0]) == pytest.approx(1.0, abs=1e-5)
        assert (
            int(np.argmax(probs[0]))
            == CLASSIFY_PIXELS(cells, None, model)
            == CLASSIFY_PIXELS(cells, False, model)
        )
        expected = classifier.predict_array(pixel_grid(cells), source="pixels", bright_ink=True)
        assert probs[0] == pytest.approx(expected.probs, abs=1e-6)


@pytest.mark.slow
def test_digit_pictures_turned_into_grids(mnist_digits, tmp_path):
    """The shipped example pictures and user-style drawings of test digits, copied into 28 x 28 cells."""
    for digit in range(10):
        grid = picture_as_grid(ROOT / "examples" / "digits" / f"{digit}.png")
        assert CLASSIFY_PIXELS(cells_of(grid)) == digit
    right = 0
    for k, (img, label) in enumerate(mnist_digits[:12]):
        path = user_style_png(img, tmp_path / f"{k}.png", style=k)
        right += CLASSIFY_PIXELS(cells_of(picture_as_grid(path))) == label
    assert right >= 11, f"{right}/12 user-style pictures right"


TEXT_IN_ROW_6 = [[0] * 28] * 5 + [[0] * 4 + ["x"] + [0] * 23] + [[0] * 28] * 22


@pytest.mark.parametrize(
    ("pixels", "message"),
    [
        (None, "pixels is empty: give a 28 x 28 range of numbers"),
        (5, "pixels must be 28 x 28 cells (rows x columns), got 1 x 1"),
        ([[0] * 28] * 27, "pixels must be 28 x 28 cells (rows x columns), got 27 x 28"),
        ([[0] * 27] * 28, "pixels must be 28 x 28 cells (rows x columns), got 28 x 27"),
        ([0] * 28, "pixels must be 28 x 28 cells (rows x columns), got 28 x 1"),
        ([[None] * 28] * 28, "pixels: the grid is empty (every cell is 0): paint a digit"),
        ([[3] * 28] * 28, "pixels: the grid is empty (every cell is 3)"),
        (TEXT_IN_ROW_6, "pixels: the cell in row 6, column 5 must be a number or empty, got 'x'"),
        ([[True] * 28] * 28, "pixels: the cell in row 1, column 1 must be a number or empty, got True"),
        ([[float("inf")] * 28] * 28, "pixels: the cell in row 1, column 1 must be a finite number"),
    ],
)  # fmt: skip
def test_bad_ranges_give_a_message(pixels, message):
    assert CLASSIFY_PIXELS(pixels).startswith(ERROR_PREFIX + message)


def test_bad_probabilities_flag_and_model(mnist_digits, tmp_path):
    cells = cells_of(mnist_digits[0][0].astype(np.int64))
    assert (
        CLASSIFY_PIXELS(cells, "maybe")
        == ERROR_PREFIX + "probabilities must be yes or no (TRUE/FALSE), got 'maybe'"
    )
    missing = tmp_path / "model.pt"
    assert CLASSIFY_PIXELS(cells, None, str(missing)).startswith(
        ERROR_PREFIX + f"no trained model at {missing}"
    )
