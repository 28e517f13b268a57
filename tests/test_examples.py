"""The Classify sheet's example pictures exist beside the workbook and are classified right."""

from pathlib import Path

from excel_addin.classic.udfs import CLASSIFY_IMAGE
from excel_addin.sheets.classify_sheet import CLASSIFY_EXAMPLES
from ml.predict import shipped_model_path

ROOT = Path(__file__).resolve().parents[1]


def test_every_example_on_the_classify_sheet_is_shipped_and_read_as_its_digit():
    for relative in CLASSIFY_EXAMPLES:
        path = ROOT / relative
        assert path.is_file(), f"{relative} is missing: run python examples/make_digits.py"
        digit = int(path.stem)
        assert CLASSIFY_IMAGE(str(path), str(shipped_model_path())) == digit, relative
