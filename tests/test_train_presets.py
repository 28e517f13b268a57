"""The Train sheet's presets: a spreadsheet engine (LibreOffice, recalculating) fills the setting cells
from the chosen preset's column of the presets table, a typed value overrides its cell, and the Train
macro's settings parsing turns the recalculated cells into exactly the preset's TrainConfig.

Today ml.config has one preset; a second one ("fast") is added for the test, as a new preset would be.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import openpyxl
import pytest

from excel_addin.buttons import config_from_settings
from excel_addin.cells import Files
from excel_addin.sheets import layout
from excel_addin.sheets.spec import ref
from excel_addin.sheets.train_sheet import TrainView, train_sheet
from excel_addin.sheets.xlsx_render import write_workbook
from excel_addin.testing import libreoffice
from ml import config

pytestmark = pytest.mark.skipif(not libreoffice.available(), reason="LibreOffice (soffice) is not installed")
FAST = {"model": "small", "epochs": 3, "batch_size": 256, "subset": 5000, "out_dir": "runs/fast"}
FOLDER = Path("/workbooks")  # the workbook's folder: relative output folders are resolved against it


@pytest.fixture
def two_presets(monkeypatch):
    monkeypatch.setitem(config.PRESETS, "fast", FAST)
    return tuple(config.PRESETS)


def _recalculated_settings(tmp_path: Path, choices: dict[str, dict]) -> dict[str, dict]:
    """Sheet name -> the setting cells' values after LibreOffice recalculated a workbook holding one
    template Train sheet per entry of ``choices`` (sheet name -> {setting: typed value})."""
    sheet = train_sheet(TrainView(), buttons=False)
    sheets = [dataclasses.replace(sheet, name=name, charts=[]) for name in choices]  # charts name "Train"
    path = write_workbook(sheets, tmp_path / "presets.xlsx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # openpyxl: data bars' extension
        book = openpyxl.load_workbook(path)
    for name, typed in choices.items():
        for setting, value in typed.items():
            book[name][layout.TRAIN_SETTING_CELLS[setting]] = value
    edited = tmp_path / "edited.xlsx"
    book.save(edited)
    values = libreoffice.recalculated_values(edited)
    return {
        name: {
            setting: values[name][ref(cell)[0]][ref(cell)[1]]
            for setting, cell in layout.TRAIN_SETTING_CELLS.items()
        }
        for name in choices
    }


def _expected(preset: str, **typed) -> config.TrainConfig:
    """The config the Train button runs with: the preset's, typed values on top, output beside the book."""
    expected = config.config_from_values({"preset": preset, **typed})
    return dataclasses.replace(expected, out_dir=str(FOLDER / expected.out_dir))


@pytest.mark.slow
def test_the_preset_cell_fills_the_settings_and_typing_overrides(tmp_path, two_presets):
    assert two_presets == ("standard", "fast")
    settings = _recalculated_settings(
        tmp_path,
        {
            "standard": {"preset": "standard"},
            "fast": {"preset": "fast"},
            "fast, 7 epochs": {"preset": "fast", "epochs": 7},
        },
    )
    for name, value in FAST.items():
        assert settings["fast"][name] == value, name
    assert settings["standard"]["epochs"] == config.default_of("epochs") != FAST["epochs"]
    assert config_from_settings(settings["standard"], Files(FOLDER)) == _expected("standard")
    assert config_from_settings(settings["fast"], Files(FOLDER)) == _expected("fast")
    assert config_from_settings(settings["fast, 7 epochs"], Files(FOLDER)) == _expected("fast", epochs=7)
