"""The macro-enabled workbook's face: each VBA Sub runs its entry point, which hands the calling workbook
(``xw.Book.caller()``) to the shared button; the UDFs resolve relative paths from the caller's folder."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import xlwings as xw

from excel_addin import buttons, cells
from excel_addin.classic import macros, udfs
from excel_addin.sheets import layout
from excel_addin.testing.remote_book import make_book, read


@pytest.fixture
def caller(monkeypatch, request):
    """A real remote-engine Book shaped like the template (Train settings: the test's ``settings`` mark),
    returned by xw.Book.caller()."""
    mark = request.node.get_closest_marker("settings")
    book = make_book(mark.args[0] if mark else None)
    monkeypatch.setattr(xw.Book, "caller", staticmethod(lambda: book))
    return book


def test_every_sub_calls_an_entry_point_of_the_same_button():
    subs = dict(
        re.findall(r'Sub (\w+)\(\)\n\s+RunPython "import [\w.]+ as m; m\.(\w+)\(\)"', macros.bas_source())
    )
    assert subs == layout.MACROS
    for function in subs.values():
        entry, button = getattr(macros, function), getattr(buttons, function)
        assert entry.__doc__ and f"' {entry.__doc__.strip()}\nSub " in macros.bas_source()
        assert callable(button)


def test_clear_grid_from_the_caller(caller):
    macros.clear_grid()
    assert read(caller, layout.CLASSIFY_SHEET, layout.CLASSIFY_GRID_CELL) is None


def test_refresh_backprop_from_the_caller(caller):
    macros.refresh_backprop()
    assert read(caller, layout.BACKPROP_SHEET, layout.BACKPROP_STATUS_CELL).startswith("Refreshed: 6 rates")


@pytest.mark.settings({"epochs": "many"})
def test_a_bad_setting_is_said_in_the_callers_status_cell(caller):
    macros.train()
    status = read(caller, layout.TRAIN_SHEET, layout.TRAIN_STATUS_CELL)
    assert status.startswith("Not started: check the settings: epochs")


def test_one_book_folder_for_every_caller(tmp_path):
    saved = SimpleNamespace(fullname=str(tmp_path / "book.xlsm"))
    assert cells.book_folder(saved) == tmp_path
    assert cells.book_folder(SimpleNamespace(fullname="Book1")) is None  # never saved
    assert cells.book_folder(None) is None
    assert udfs.caller_files(SimpleNamespace(sheet=SimpleNamespace(book=saved))) == cells.Files(tmp_path)
    assert udfs.caller_files(None) == cells.Files(None)
    assert buttons.files_of(saved) == cells.Files(tmp_path)
    assert cells.Files(None).resolve("x.png", "image path") == Path("x.png")
