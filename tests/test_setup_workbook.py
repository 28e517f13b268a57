"""Set up gradsheet on a blank workbook through the xlwings Book API, as the Office.js add-in will.

The Book is xlwings' remote engine with an Office.js client: every write is recorded as the action
xlwings Server sends Excel. The actions are replayed into a file (``book_replay``), LibreOffice
recalculates it, and the six LR formula sheets must equal ``ml.backprop`` for every rate and epoch; every
sheet must hold the template's labels, values and formulas, its names, notes, dropdowns, merges and
charts, so the template and a set-up workbook cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import openpyxl
import pytest
import xlwings as xw
from book_replay import replay
from engine_check import assert_sheets_match_engine
from openpyxl.worksheet.formula import ArrayFormula

from excel_addin.buttons import config_from_settings
from excel_addin.cells import FUNCTION_NAMESPACE, Files
from excel_addin.sheets import classify_sheet, layout, train_sheet
from excel_addin.sheets.setup import setup_workbook
from excel_addin.sheets.spec import offset, ref
from excel_addin.sheets.workbook import gradsheet_workbook
from excel_addin.sheets.xlsx_render import write_workbook
from excel_addin.testing import libreoffice
from excel_addin.testing.remote_book import actions
from ml import backprop
from ml.config import config_from_values
from ml.run_dir import DEFAULT_RUN_DIR

USER_SHEET = "My data"  # a sheet of the user's, which set-up must leave alone
ADDIN = gradsheet_workbook(predict_examples=False, addin=True)  # what Set up writes
GRADSHEET_SHEETS = [sheet.name for sheet in ADDIN.sheets]


def blank_book(sheets=("Sheet1",)) -> xw.Book:
    """A remote-engine Book as an Office.js client sends it: empty sheets, no names."""
    api = {"values": [[]], "pictures": [], "tables": [], "charts": [], "shapes": [], "notes": []}
    payload = {
        "client": "Office.js",
        "version": xw.__version__,
        "book": {"name": "Book1", "active_sheet_index": 0, "selection": "A1"},
        "names": [],
        "sheets": [
            {"name": name, **api, "visibility": "Visible", "print_area": None, "show_gridlines": True,
             "pivot_tables": []}
            for name in sheets
        ],
    }  # fmt: skip
    return xw.Book(json=payload)


@pytest.fixture(scope="module")
def set_up(tmp_path_factory):
    """(book, replay, path of the replayed file) of a blank workbook after set-up."""
    book = blank_book(("Sheet1", USER_SHEET))
    written = setup_workbook(book)
    assert written == GRADSHEET_SHEETS
    replayed = replay(["Sheet1", USER_SHEET], book.json()["actions"])
    path = tmp_path_factory.mktemp("setup") / "set_up.xlsx"
    replayed.book.save(path)
    return book, replayed, path


@pytest.fixture(scope="module")
def template_book(tmp_path_factory):
    """The add-in's workbook description rendered to a file by the template's renderer (XlsxWriter): the
    Book renderer must give the same cells (the template itself differs only as
    test_the_addins_sheets_are_the_templates_but_for_its_names_and_live_cells says)."""
    path = write_workbook(ADDIN.sheets, tmp_path_factory.mktemp("addin") / "addin.xlsx", ADDIN.names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # openpyxl: "extension is not supported" for data bars
        return openpyxl.load_workbook(path)


@pytest.mark.slow
def test_sheets_are_added_after_the_users_and_theirs_are_left_alone(set_up):
    book, replayed, _ = set_up
    assert [s.name for s in book.sheets] == ["Sheet1", USER_SHEET, *GRADSHEET_SHEETS]
    assert replayed.book.sheetnames == ["Sheet1", USER_SHEET, *GRADSHEET_SHEETS]
    assert not [a for a in book.json()["actions"] if a["sheet_position"] in (0, 1)]
    assert actions(book, "activateSheet")[-1]["args"] == [2]  # Backprop, as the template opens


@pytest.mark.slow
@pytest.mark.skipif(not libreoffice.available(), reason="LibreOffice (soffice) is not installed")
def test_formula_sheets_recalculate_to_the_engine_for_every_rate_and_epoch(set_up):
    _, _, path = set_up
    shown = libreoffice.shown(path, recalc=True)
    assert shown.error_count() == 0, {name: cells[:5] for name, cells in shown.errors.items() if cells}
    values = shown.values
    assert_sheets_match_engine(values, layout.DEFAULT_RATES, backprop.Network())
    graphs = values[layout.GRAPHS_SHEET]  # the table the Graphs charts plot follows the LR sheets
    row, col = openpyxl.utils.cell.coordinate_to_tuple(layout.GRAPHS_TABLE_HEADER_CELL)
    curve = [graphs[row + e][col] for e in range(layout.DEFAULT_EPOCHS + 1)]
    assert curve == pytest.approx(
        backprop.loss_curve(layout.DEFAULT_RATES[0], layout.DEFAULT_EPOCHS), abs=1e-12
    )
    # The Train sheet's settings come out of the preset table: the Train button would run the defaults.
    train = values[layout.TRAIN_SHEET]
    cells = {name: ref(cell) for name, cell in layout.TRAIN_SETTING_CELLS.items()}
    settings = {name: train[row][col] for name, (row, col) in cells.items()}
    folder = Path("/workbooks")
    expected = dataclasses.replace(config_from_values({}), out_dir=str(folder / DEFAULT_RUN_DIR))
    assert config_from_settings(settings, Files(folder)) == expected


def _spilled(sheet) -> set[str]:
    """Cells of the template's array formulas other than the formula's own (the file's cached results;
    in a Book the formula spills there)."""
    covered = set()
    for row in sheet.iter_rows():
        for cell in row:
            if isinstance(cell.value, ArrayFormula):
                block = sheet[cell.value.ref]
                covered |= {c.coordinate for line in block for c in line} - {cell.coordinate}
    return covered


def _content(cell) -> tuple[str, object]:
    """("formula", text) or ("value", value) of a cell."""
    if isinstance(cell.value, ArrayFormula):
        return "formula", cell.value.text
    return ("formula" if cell.data_type == "f" else "value"), cell.value


@pytest.mark.slow
@pytest.mark.parametrize("name", GRADSHEET_SHEETS)
def test_every_sheet_holds_the_templates_labels_values_and_formulas(set_up, template_book, name):
    _, replayed, _ = set_up
    expected, got = template_book[name], replayed.book[name]
    covered = _spilled(expected)
    cells = {c.coordinate: _content(c) for row in expected.iter_rows() for c in row if c.value is not None}
    cells = {k: v for k, v in cells.items() if k not in covered}
    assert cells, name
    for coordinate, value in cells.items():
        assert _content(got[coordinate]) == value, f"{name}!{coordinate}"
    filled = {c.coordinate for row in got.iter_rows() for c in row if c.value is not None}
    assert filled == set(cells), f"{name}: cells only set up: {sorted(filled - set(cells))[:5]}"


@pytest.mark.parametrize("name", GRADSHEET_SHEETS)
def test_every_sheet_has_the_templates_notes_dropdowns_merges_and_panes(set_up, template_book, name):
    _, replayed, _ = set_up
    expected, got = template_book[name], replayed.book[name]

    def notes(sheet):
        return {c.coordinate: c.comment.text for row in sheet.iter_rows() for c in row if c.comment}

    def rules(sheet):
        return sorted(
            (str(dv.sqref), dv.type, dv.operator or "between", dv.formula1, dv.formula2)
            for dv in sheet.data_validations.dataValidation
        )

    assert notes(got) == notes(expected)
    assert rules(got) == rules(expected)
    assert sorted(map(str, got.merged_cells.ranges)) == sorted(map(str, expected.merged_cells.ranges))
    assert got.freeze_panes == expected.freeze_panes
    for letter, dimension in expected.column_dimensions.items():
        if dimension.customWidth:
            assert got.column_dimensions[letter].width == pytest.approx(dimension.width, abs=0.15), letter


def test_defined_names_are_the_templates(set_up, template_book):
    _, replayed, _ = set_up
    expected = {name: dn.attr_text for name, dn in template_book.defined_names.items()}
    assert {name: dn.attr_text for name, dn in replayed.book.defined_names.items()} == expected


def _ref(ref: str) -> tuple[str, str]:
    """("Train", "$B$22:$B$121") of "Train!$B$22:$B$121" (sheet name unquoted)."""
    sheet, block = ref.rsplit("!", 1)
    return sheet.strip("'"), block


def test_charts_are_bound_to_the_templates_data(set_up, template_book):
    """Each chart of the template is in the set-up workbook with the same data: its series are one block
    of columns with their names in the row above, its x values the same cells. The log-scale chart is
    left out (the Book API has no logarithmic axis)."""
    _, replayed, _ = set_up
    for name in GRADSHEET_SHEETS:
        kept = replayed.kept[name]
        added = [a["args"] for a in kept if a["func"] == "addChart"]
        x_values = [a["args"][1:] for a in kept if a["func"] == "setChartXAxisValues"]
        charts = [c for c in template_book[name]._charts if not c.y_axis.scaling.logBase]
        assert len(added) == len(x_values) == len(charts), name
        for args, x, chart in zip(added, x_values, charts, strict=True):
            refs = [_ref((s.val or s.yVal).numRef.f) for s in chart.series]
            (sheet,) = {sheet for sheet, _ in refs}
            first = openpyxl.utils.cell.range_boundaries(refs[0][1].replace("$", ""))
            last = openpyxl.utils.cell.range_boundaries(refs[-1][1].replace("$", ""))
            source = openpyxl.utils.cell.get_column_letter(first[0]), first[1] - 1, last[2], last[3]
            expected = (
                f"${source[0]}${source[1]}:${openpyxl.utils.cell.get_column_letter(source[2])}${source[3]}"
            )
            assert (args[2], args[3]) == (sheet, expected), name
            assert len(refs) == last[2] - first[0] + 1, f"{name}: the series are not one block of columns"
            category = chart.series[0].xVal or chart.series[0].cat
            assert tuple(x) == _ref((category.numRef or category.strRef).f), name


@pytest.mark.slow
def test_setting_up_again_rewrites_in_place(set_up):
    """A second set-up adds no sheets and replaces the charts instead of stacking copies."""
    book = blank_book()
    setup_workbook(book)
    first = len(book.json()["actions"])
    setup_workbook(book)
    again = book.json()["actions"][first:]
    assert [s.name for s in book.sheets] == ["Sheet1", *GRADSHEET_SHEETS]
    assert not [a for a in again if a["func"] in ("addSheet", "namesAdd", "addNote")]
    added = [a for a in again if a["func"] == "addChart"]
    assert added and len([a for a in again if a["func"] == "deleteChart"]) == len(added)


def _last_write(book: xw.Book, sheet: str, address: str):
    """The last value or formula the recorded actions write into a cell (None: never written)."""
    row, col = (n - 1 for n in openpyxl.utils.cell.coordinate_to_tuple(address))
    position = [s.name for s in book.sheets].index(sheet)
    found = None
    for action in book.json()["actions"]:
        if action["func"] in ("setValues", "setFormula") and action["sheet_position"] == position:
            r, c = row - action["start_row"], col - action["start_column"]
            if 0 <= r < action["row_count"] and 0 <= c < action["column_count"]:
                found = action["values"][r][c]
    return found


@pytest.mark.slow
def test_setting_up_over_an_old_train_sheet_clears_its_run():
    """A Train sheet that holds a finished run's rows and summary comes back empty, its status live."""
    book = blank_book(("Train",))
    first_row = offset(layout.TRAIN_METRICS_HEADER_CELL, rows=1)
    setup_workbook(book)
    assert _last_write(book, "Train", first_row) == ""
    assert _last_write(book, "Train", offset(layout.TRAIN_SUMMARY_HEADER_CELL, rows=1)) == ""
    assert _last_write(book, "Train", layout.TRAIN_STATUS_CELL) == train_sheet.progress_formula("status")
    assert [s.name for s in book.sheets][0] == "Train"  # rewritten where it is, not added again


@pytest.mark.slow
def test_the_addins_sheets_are_the_templates_but_for_its_names_and_live_cells():
    """Set up writes the template's sheets, with three documented differences: the cell functions by their
    add-in names (GRADSHEET.*), the Train sheet's run cells as live TRAIN_PROGRESS formulas (and its
    subtitle pointing at the task pane), and no xlwings settings sheet (the add-in does not read it)."""
    template = {sheet.name: sheet for sheet in gradsheet_workbook(predict_examples=False).sheets}
    assert list(template) == [*GRADSHEET_SHEETS, layout.XLWINGS_CONF_SHEET]
    live = {
        ref(cell) for cell in (layout.TRAIN_STATUS_CELL, layout.TRAIN_PROGRESS_CELL, layout.TRAIN_DEVICE_CELL)
    }
    header = ref(layout.TRAIN_METRICS_HEADER_CELL)
    spill = {(header[0], header[1] + j) for j in range(len(layout.TRAIN_METRIC_COLUMNS))}
    summary = ref(layout.TRAIN_SUMMARY_HEADER_CELL)
    spill |= {(summary[0], summary[1] + j) for j in range(len(train_sheet.SUMMARY_HEADER))}
    namespaced = 0
    for sheet in ADDIN.sheets:
        for where, cell in template[sheet.name].cells.items():
            got = sheet.cells[where]
            if sheet.name == layout.TRAIN_SHEET and where in live | spill | {ref(layout.TRAIN_SUBTITLE_CELL)}:
                continue
            if cell.formula and got.formula != cell.formula:
                plain = got.formula.replace(f"{FUNCTION_NAMESPACE}.", "")
                plain = plain.replace(classify_sheet.addin_model_args(), classify_sheet.model_args())
                assert plain == cell.formula, (sheet.name, where)
                namespaced += 1
            else:
                assert got == cell, (sheet.name, where)
    # the grid, the LR sheets' engine column, Classify's examples and drawing grid, the live MODEL_SUMMARY
    assert namespaced == 6 * 101 + 6 * 101 + 2 * 10 + 2 + 1
    train = {sheet.name: sheet for sheet in ADDIN.sheets}[layout.TRAIN_SHEET]
    for part, cell in (("status", layout.TRAIN_STATUS_CELL), ("progress", layout.TRAIN_PROGRESS_CELL)):
        call = f'{FUNCTION_NAMESPACE}.TRAIN_PROGRESS(GRADSHEET_ID,"{part}")'
        assert train.cells[ref(cell)].formula == train_sheet.progress_formula(part)
        assert train.cells[ref(cell)].formula.startswith(f"=IFERROR({call},")  # where there is no add-in
    assert train.cells[header].formula == train_sheet.progress_formula("metrics")
