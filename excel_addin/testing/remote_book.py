"""Real xlwings Books without Excel: the remote engine, fed the payload an xlwings client sends.

``xw.Book(json=payload)`` is xlwings' own implementation of the Book/Sheet/Range/Picture API for its
remote clients: reads come from the payload's cell values, and every write is applied to the payload and
recorded as an action (``book.json()["actions"]``). The payload is built from the real workbook template
when it exists (its cached cell values, read with openpyxl), else from ``excel_addin.sheets.layout``'s
cells with the template's default settings.
"""

from __future__ import annotations

import base64
import copy
import functools
import io
from pathlib import Path
from typing import Any

import xlwings as xw
from openpyxl.utils.cell import column_index_from_string, coordinate_from_string, get_column_letter

from excel_addin.sheets import layout
from excel_addin.sheets.backprop_sheets import network_cell_values

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "workbook_template.xlsm"
BOOK_NAME = "workbook_template.xlsm"

DEFAULT_TRAIN_SETTINGS = {
    "epochs": 1,
    "batch_size": 128,
    "lr": 0.01,
    "model": "small",
    "device": "cpu",
    "seed": 1,
    "subset": 2000,
    "out_dir": "",
    "model_path": "",
}


def _grid(cells: dict[str, Any]) -> list[list[Any]]:
    """A rectangular values array from A1 covering every given cell (None elsewhere)."""
    if not cells:
        return [[]]
    positions = {}
    for address, value in cells.items():
        letters, row = coordinate_from_string(address)
        positions[(row - 1, column_index_from_string(letters) - 1)] = value
    rows = max(r for r, _ in positions) + 1
    columns = max(c for _, c in positions) + 1
    grid = [[None] * columns for _ in range(rows)]
    for (r, c), value in positions.items():
        grid[r][c] = value
    return grid


def _sheet(name: str, cells: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "values": _grid(cells),
        "pictures": [],
        "tables": [],
        "charts": [],
        "shapes": [],
        "notes": [],
        "visibility": "Visible",
        "print_area": None,
    }


def layout_sheets(train_settings: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Sheet name -> {address: value}: the cells the macros read, as the template fills them."""
    settings = {**DEFAULT_TRAIN_SETTINGS, **(train_settings or {})}
    train = {layout.TRAIN_SETTING_CELLS[k]: v for k, v in settings.items()}
    backprop = {layout.BACKPROP_INPUT_CELLS[k]: v for k, v in network_cell_values().items()}
    backprop.update(dict(zip(layout.BACKPROP_RATE_CELLS, layout.DEFAULT_RATES, strict=True)))
    backprop[layout.BACKPROP_EPOCHS_CELL] = layout.DEFAULT_EPOCHS
    sheets = {layout.BACKPROP_SHEET: backprop}
    sheets.update({layout.rate_sheet_name(lr): {"A1": "epoch"} for lr in layout.DEFAULT_RATES})
    sheets[layout.GRAPHS_SHEET] = {"A1": "Graphs"}
    sheets[layout.TRAIN_SHEET] = train
    sheets[layout.CLASSIFY_SHEET] = {"A1": "Classify"}
    return sheets


def template_sheets(path: Path = TEMPLATE) -> dict[str, dict[str, Any]]:
    """Sheet name -> {address: cached value} of every non-empty cell of the built template (a fresh copy)."""
    return copy.deepcopy(_template_sheets(str(path), path.stat().st_mtime_ns))


@functools.lru_cache(maxsize=2)
def _template_sheets(path: str, mtime_ns: int) -> dict[str, dict[str, Any]]:
    from openpyxl import load_workbook

    workbook = load_workbook(io.BytesIO(Path(path).read_bytes()), data_only=True)
    return {
        sheet.title: {
            cell.coordinate: cell.value for row in sheet.iter_rows() for cell in row if cell.value is not None
        }
        for sheet in workbook.worksheets
    }


def book_payload(
    train_settings: dict[str, Any] | None = None,
    cells: dict[str, dict[str, Any]] | None = None,
    use_template: bool = True,
    client: str = "VBA",
    name: str = BOOK_NAME,
) -> dict[str, Any]:
    """What an xlwings client sends for a workbook shaped like the template, with the given Train settings
    and cells (``client="Office.js"``: what the add-in's task pane sends to a custom script)."""
    if use_template and TEMPLATE.exists():
        sheets = template_sheets()
        for key, value in {**DEFAULT_TRAIN_SETTINGS, **(train_settings or {})}.items():
            sheets[layout.TRAIN_SHEET][layout.TRAIN_SETTING_CELLS[key]] = value
    else:
        sheets = layout_sheets(train_settings)
    for sheet, values in (cells or {}).items():
        sheets[sheet].update(values)
    return {
        "client": client,
        "version": xw.__version__,
        "book": {"name": name, "active_sheet_index": 0, "selection": "A1"},
        "names": [],
        "sheets": [_sheet(sheet, values) for sheet, values in sheets.items()],
    }


def make_book(
    train_settings: dict[str, Any] | None = None,
    cells: dict[str, dict[str, Any]] | None = None,
    use_template: bool = True,
) -> xw.Book:
    """A remote-engine Book shaped like the workbook template, with the given Train settings and cells."""
    return xw.Book(json=book_payload(train_settings, cells, use_template))


def only_sheets(payload: dict[str, Any], include: str | None) -> dict[str, Any]:
    """The payload as the task pane sends it for a script with ``include`` (comma-separated sheet names):
    the other sheets arrive without values and pictures."""
    if not include:
        return copy.deepcopy(payload)
    names = [name.strip() for name in include.split(",")]
    sent = copy.deepcopy(payload)
    for sheet in sent["sheets"]:
        if sheet["name"] not in names:
            sheet["values"], sheet["pictures"] = [[]], []
    return sent


def apply_actions(payload: dict[str, Any], actions: list[dict[str, Any]]) -> dict[str, Any]:
    """The workbook after Excel applied a script's actions (new sheets, values, formulas (their text stands
    for the value Excel would compute), defined names and added pictures (by name); other actions, such as
    formats, leave the cells as they are): what the task pane would send next."""
    after = copy.deepcopy(payload)
    for action in actions:
        if action["func"] == "addSheet":
            position, name = action["args"][0], action["args"][1]
            after["sheets"].insert(position, _sheet(name, {}))
        elif action["func"] in ("setValues", "setFormula") and isinstance(action["values"], list):
            _set_values(after["sheets"][action["sheet_position"]], action)
        elif action["func"] == "addPicture":
            after["sheets"][action["sheet_position"]]["pictures"].append(_picture("Image"))
        elif action["func"] == "setPictureName":
            index, name = action["args"]
            after["sheets"][action["sheet_position"]]["pictures"][index]["name"] = name
        elif action["func"] in ("namesAdd", "setNameRefersTo"):
            name, refers_to = action["args"][0], action["args"][-1]
            others = [n for n in after["names"] if n["name"] != name]
            after["names"] = [*others, defined_name(name, refers_to)]
    return after


def _set_values(sheet: dict[str, Any], action: dict[str, Any]) -> None:
    grid = sheet["values"] if sheet["values"] != [[]] else []
    rows = action["start_row"] + len(action["values"])
    columns = action["start_column"] + max(len(row) for row in action["values"])
    width = max([columns] + [len(row) for row in grid])
    grid = [row + [None] * (width - len(row)) for row in grid]
    grid += [[None] * width for _ in range(rows - len(grid))]
    for r, row in enumerate(action["values"]):
        for c, value in enumerate(row):
            grid[action["start_row"] + r][action["start_column"] + c] = value
    sheet["values"] = grid


def _picture(name: str) -> dict[str, Any]:
    """A picture as the task pane sends it (its size and place are Excel's)."""
    return {"name": name, "width": None, "height": None, "left": 0, "top": 0, "lock_aspect_ratio": None}


def defined_name(name: str, refers_to: str) -> dict[str, Any]:
    """A workbook-level defined name as the task pane reads it (named-items.js)."""
    return {
        "name": name,
        "refers_to": refers_to,
        "type": "String",
        "sheet_index": None,
        "address": None,
        "scope_sheet_name": None,
        "scope_sheet_index": None,
        "book_scope": True,
    }


def actions(book: xw.Book, func: str | None = None, sheet: str | None = None) -> list[dict[str, Any]]:
    """The recorded write actions, optionally only those of one kind and/or one sheet."""
    names = [s.name for s in book.sheets]
    found = []
    for action in book.json()["actions"]:
        if func is not None and action["func"] != func:
            continue
        if sheet is not None and names[action["sheet_position"]] != sheet:
            continue
        found.append(action)
    return found


def picture_png(action: dict[str, Any]) -> bytes:
    """The PNG bytes an addPicture/updatePicture action carries."""
    return base64.b64decode(action["args"][0])


def sheet_state(book: xw.Book, sheet: str) -> dict[str, Any]:
    """{address: value} of a sheet after its recorded writes, replayed in order as a client applies them.

    The remote engine reads from the payload it was given and records writes as actions for the client
    (Excel) to apply; this replays the value writes on top of the payload's cells.
    """
    index = [s.name for s in book.sheets].index(sheet)
    cells: dict[str, Any] = {}
    for r, row in enumerate(book.sheets[sheet].api["values"]):
        for c, value in enumerate(row):
            if value is not None:
                cells[f"{get_column_letter(c + 1)}{r + 1}"] = value
    for action in book.json()["actions"]:
        if action["sheet_position"] != index or action["func"] != "setValues":
            continue
        for dr, row in enumerate(action["values"]):
            for dc, value in enumerate(row):
                address = (
                    f"{get_column_letter(action['start_column'] + dc + 1)}{action['start_row'] + dr + 1}"
                )
                if value is None or value == "":
                    cells.pop(address, None)
                else:
                    cells[address] = value
    return cells


def read(book: xw.Book, sheet: str, address: str, rows: int = 1, columns: int = 1) -> Any:
    """A cell's value after the recorded writes, or a block's as a list of rows."""
    state = sheet_state(book, sheet)
    letters, row = coordinate_from_string(address)
    first = column_index_from_string(letters)
    block = [
        [state.get(f"{get_column_letter(first + c)}{row + r}") for c in range(columns)] for r in range(rows)
    ]
    return block[0][0] if rows == columns == 1 else block
