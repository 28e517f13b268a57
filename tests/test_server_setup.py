"""Set up gradsheet through the add-in server, as Excel on the web sends it: a blank workbook (with a
sheet of the user's) becomes gradsheet, its functions by their add-in names, its Train sheet streaming
from the server, and the other buttons then work on it. (The sheets themselves are compared with the
template and recalculated by LibreOffice in test_setup_workbook.py.)"""

from __future__ import annotations

import json

import pytest
import xlwings as xw
from server_app import LOCAL, Workbook

from excel_addin.cells import FUNCTION_NAMESPACE
from excel_addin.server import workbook
from excel_addin.sheets import layout
from excel_addin.sheets.train_sheet import progress_formula
from ml import backprop
from ml.config import preset_values
from ml.run_dir import DEFAULT_RUN_DIR

USER_SHEET = "Budget"


def blank_workbook(client) -> Workbook:
    """A new workbook in Excel on the web, with one sheet of the user's holding values."""
    book = Workbook(client, document="https://school.example/alice/Book 1.xlsx")
    sheet = {"values": [["rent", 500], ["food", 200]], "pictures": [], "tables": [], "charts": [],
             "shapes": [], "notes": [], "visibility": "Visible", "print_area": None}  # fmt: skip
    book.payload = {
        "client": "Office.js",
        "version": xw.__version__,
        "book": {"name": "Book 1.xlsx", "active_sheet_index": 0, "selection": "A1"},
        "names": [],
        "sheets": [{"name": USER_SHEET, **sheet}],
    }
    return book


@pytest.fixture(scope="module")
def set_up(client):
    book = blank_workbook(client)
    response = book.press("setup_gradsheet")
    return book, response


@pytest.mark.slow
def test_set_up_names_the_workbook_first_then_writes_gradsheets_sheets(set_up):
    book, response = set_up
    actions = book.actions
    funcs = [a["func"] for a in actions]
    named = funcs.index("namesAdd")
    assert actions[named]["args"][0] == layout.WORKBOOK_ID_NAME and named < funcs.index("addSheet")
    names = [s["name"] for s in book.payload["sheets"]]
    assert names[0] == USER_SHEET and layout.BACKPROP_SHEET in names and layout.TRAIN_SHEET in names
    assert layout.XLWINGS_CONF_SHEET not in names  # the add-in does not read it
    assert book.payload["sheets"][0]["values"] == [["rent", 500], ["food", 200]]  # the user's sheet
    assert not [a for a in actions if a["sheet_position"] == 0 and a["func"] not in ("addSheet",)]
    assert len(response.content) < 5 * 2**20  # small enough for Excel on the web


def test_set_up_calls_the_functions_by_their_add_in_names(set_up):
    book, _ = set_up
    formulas = [
        value
        for a in book.actions
        if a["func"] == "setFormula" and isinstance(a["values"], list)
        for row in a["values"]
        for value in row
        if isinstance(value, str)
    ]
    grid = [f for f in formulas if "BACKPROP_LOSS(" in f and f.startswith("=")]  # not the "'=..." note
    assert len(grid) == 2 * 6 * 101  # the Backprop grid and every LR sheet's engine column
    assert all(f"{FUNCTION_NAMESPACE}.BACKPROP_LOSS(" in f for f in grid)
    assert all(f"{FUNCTION_NAMESPACE}.CLASSIFY_" in f for f in formulas if "CLASSIFY_" in f)
    train = book.book.sheets[layout.TRAIN_SHEET]
    assert train[layout.TRAIN_STATUS_CELL].value == progress_formula("status")
    assert train[layout.TRAIN_METRICS_HEADER_CELL].value == progress_formula("metrics")
    assert json.dumps(formulas).count("TRAIN_PROGRESS(GRADSHEET_ID,") == 5  # status, progress, device, tables


@pytest.mark.slow
def test_the_other_buttons_work_on_a_set_up_workbook(set_up):
    book, _ = set_up
    book.press("refresh_backprop")
    assert book.cell(layout.BACKPROP_SHEET, layout.BACKPROP_STATUS_CELL) == (
        "Refreshed: 6 rates x 100 epochs, sigmoid output"
    )
    sheet = layout.rate_sheet_name(layout.DEFAULT_RATES[0])
    letters = layout.LR_REFRESH_HEADER_CELL.rstrip("0123456789")
    first = int(layout.LR_REFRESH_HEADER_CELL[len(letters) :]) + 1
    column = [book.cell(sheet, f"{letters}{first + e}") for e in range(101)]
    assert column == list(backprop.loss_curve(layout.DEFAULT_RATES[0], 100))
    train = book.payload["sheets"][[s["name"] for s in book.payload["sheets"]].index(layout.TRAIN_SHEET)]
    for name, value in preset_values("standard").items():  # what Excel computes and sends for the
        _put(train, layout.TRAIN_SETTING_CELLS[name], value)  # preset formulas of the settings
    book.press("stop")
    assert book.status == f"No training is running for {DEFAULT_RUN_DIR}."  # no path of the server
    assert not [a for a in book.actions if a["func"] == "setValues"]  # said by the stream, not the cell


@pytest.mark.slow
def test_setting_up_again_keeps_the_workbook_id(set_up, client):
    book, _ = set_up
    first = book.id
    book.press("setup_gradsheet")
    assert book.id == first
    assert not [a for a in book.actions if a["func"] == "addSheet"]
    assert [a["args"][0] for a in book.actions if a["func"] == "namesAdd"].count(layout.WORKBOOK_ID_NAME) == 0


def _put(sheet: dict, address: str, value) -> None:
    """A value into a sheet of a task-pane payload (as Excel sends a formula's result)."""
    from openpyxl.utils.cell import coordinate_to_tuple

    row, col = (n - 1 for n in coordinate_to_tuple(address))
    grid = sheet["values"]
    while len(grid) <= row:
        grid.append([None] * len(grid[0]))
    grid[row] += [None] * (col + 1 - len(grid[row]))
    grid[row][col] = value


def test_the_add_ins_classify_cells_use_the_model_this_workbook_trained(set_up, client):
    """Set up's CLASSIFY_* cells prefix the Train sheet's output folder with the workbook's id: on the
    server relative paths start in its runs folder, and this workbook's runs are in <runs>/<id>."""
    import shutil

    import numpy as np
    from server_app import call_body

    from excel_addin.sheets.classify_sheet import shipped_grid
    from ml.model import build_model
    from ml.predict import Classifier, shipped_model_path

    book, _ = set_up
    run = workbook.folder(LOCAL, book.id) / DEFAULT_RUN_DIR
    run.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shipped_model_path(), run / "model.pt")
    grid = [list(row) for row in shipped_grid()]
    out_dir = f"{book.id}/{DEFAULT_RUN_DIR}"  # what the formula's GRADSHEET_ID&"/"&Train!out_dir gives
    body = call_body("CLASSIFY_PIXELS", [grid, [[True]], [[""]], [[out_dir]]])
    probs = client.post("/xlwings/custom-functions-call", json=body).json()["result"][0]
    assert np.argmax(probs) == 5  # the shipped test digit #15, by the model in the workbook's folder
    elsewhere = call_body("CLASSIFY_PIXELS", [grid, [[True]], [[""]], [["nobody/runs/mnist"]]])
    assert (
        client.post("/xlwings/custom-functions-call", json=elsewhere).json()["result"][0] == probs
    )  # shipped
    untrained = Classifier(build_model("default").eval(), 0.1307, 0.3081)
    (run / "model.pt").unlink()
    torch_save_untrained(untrained, run / "model.pt")
    changed = client.post("/xlwings/custom-functions-call", json=body).json()["result"][0]
    assert changed != probs  # the workbook's own model file is the one read


def torch_save_untrained(classifier, path) -> None:
    from ml.checkpoint import save_checkpoint
    from ml.variants import VARIANTS

    save_checkpoint(
        path, {"model": VARIANTS["default"].to_dict(), "state_dict": classifier.model.state_dict()}
    )
