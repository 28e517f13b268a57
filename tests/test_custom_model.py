"""Design your own CNN in cells: the Train sheet's Custom model table, =MODEL_SUMMARY live beside it, and
Train training the design.

MODEL_SUMMARY is called with ranges as Excel passes them (rows of cells, floats for numbers, None or "" for
empty cells, TRUE/FALSE or yes/no) through all three doors: the shared function, the classic UDF and the
add-in's custom function over HTTP; its rows must be ``ml.summary.summary_rows`` of the same network. The
template is read back with openpyxl and recalculated by LibreOffice; the Train button trains a design from a
remote-engine Book for real (tiny).
"""

from __future__ import annotations

import re
import warnings
import zipfile

import openpyxl
import pytest
import torch
from openpyxl.worksheet.formula import ArrayFormula
from server_app import Workbook, call_body
from test_macros import QUICK, ThreadLauncher, status

from excel_addin import buttons, cells
from excel_addin.cells import Files
from excel_addin.classic import udfs
from excel_addin.report import build_report
from excel_addin.sheets import layout, train_sheet
from excel_addin.sheets.custom_model import stages_text, table_of
from excel_addin.sheets.spec import offset, ref
from excel_addin.sheets.train_sheet import live_summary_formula
from excel_addin.sheets.workbook import gradsheet_workbook
from excel_addin.testing import libreoffice
from excel_addin.testing.remote_book import make_book, read
from ml.model import MnistCNN, count_parameters
from ml.stages import custom_spec, format_stages, parse_stages
from ml.summary import summary_rows
from ml.variants import DEFAULT_STAGES, VARIANTS

CHANNELS = "channel counts are whole numbers from 1 to 512"
DEFAULT_TEXT = format_stages(DEFAULT_STAGES)  # "8,16 drop=0.05 | 16,24 drop=0.05 | 24,32"


pytestmark = pytest.mark.usefixtures("state_dir")  # run locks in a folder of the test's own (conftest.py)


def expected_summary(network) -> list[list]:
    """What MODEL_SUMMARY must spill for a network, straight from ml.summary: header, layers, total."""
    rows = [[r.layer, r.shape, r.params, r.jump, r.rf] for r in summary_rows(network)]
    return [list(train_sheet.SUMMARY_HEADER), *rows, ["Total", "", count_parameters(network), "", ""]]


def message(result) -> str:
    """The text of a one-cell error result."""
    assert isinstance(result, list) and len(result) == 1 and len(result[0]) == 1, result
    return result[0][0]


# ---- the table as Excel passes it ------------------------------------------------------------------------

TABLES = [
    # the template's own table: texts, "no", floats, and empty rows of None and ""
    (
        [
            ["8, 16", "no", 0.05],
            ["16, 24", "no", 0.05],
            ["24, 32", "no", 0.0],
            [None] * 3,
            [""] * 3,
            [None] * 3,
        ],
        DEFAULT_TEXT,
    ),
    # a number for a single convolution, TRUE/FALSE, other separators, capitals, an empty dropout
    ([[16.0, True, 0.1], ["32;32", "YES", ""], [" 48 ", False, None]], "16 sep drop=0.1 | 32,32 sep | 48"),
    # what Office.js sends: whole numbers as ints, empty cells as ""
    ([[12, "", 0], ["24 32", "yes", 0.25], ["", "", ""]], "12 | 24,32 sep drop=0.25"),
    # the residual column (the fourth), and rows of three cells beside rows of four (an older workbook)
    (
        [["12", "no", 0, "no"], ["12,12,12", "yes", 0.05, "yes"], ["20, 20", "yes", None, True]],
        "12 | 12,12,12 sep res drop=0.05 | 20,20 sep res",
    ),
    ([["8, 16", "no", 0.05], ["16, 16", None, None, "YES"]], "8,16 drop=0.05 | 16,16 res"),
]


@pytest.mark.parametrize(("table", "text"), TABLES)
def test_a_table_is_its_stages_and_model_summary_is_ml_models_table(table, text):
    assert stages_text(table) == text
    assert cells.MODEL_SUMMARY(table) == expected_summary(MnistCNN(custom_spec(text)))
    assert udfs.MODEL_SUMMARY(table) == cells.MODEL_SUMMARY(table)


def test_the_template_table_of_gradsheets_default_is_the_default_model():
    table = table_of(DEFAULT_STAGES)
    assert len(table) == 6 and table[3:] == [[None] * 4] * 3
    assert [row[3] for row in table[:3]] == ["no"] * 3
    assert custom_spec(stages_text(table)).layers == VARIANTS["default"].layers
    assert cells.MODEL_SUMMARY(table) == expected_summary(MnistCNN(VARIANTS["default"]))


@pytest.mark.slow
def test_a_variant_name_or_a_stages_text_names_a_model_too():
    assert cells.MODEL_SUMMARY("s6") == expected_summary(MnistCNN(VARIANTS["s6"]))
    assert cells.MODEL_SUMMARY([["Default"]]) == expected_summary(MnistCNN(VARIANTS["default"]))
    assert cells.MODEL_SUMMARY("8,16 | 16 sep") == expected_summary(MnistCNN(custom_spec("8,16 | 16 sep")))
    assert cells.MODEL_SUMMARY("s6")[-1] == ["Total", "", 16_976, "", ""]


def test_the_argument_help_names_a_real_model():
    (example,) = re.findall(r"e\.g\. (\w+)\)", cells.MODEL_SUMMARY.cell_arguments["spec"].doc)
    assert example in VARIANTS  # the full list is in an unknown name's message (tested below)


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ([["8", "no", "lots"]], "stage 1: dropout is a probability from 0 to below 1, got 'lots'"),
        ([["8", None, None], ["eight", None, None]], f"stage 2: {CHANNELS}, got 'eight'"),
        ([[-8.0, None, None]], f"stage 1: {CHANNELS}, got '-8'"),
        ([["8", None, None], [12.5, None, None]], f"stage 2: {CHANNELS}, got '12.5'"),
        ([["8", "maybe", None]], "stage 1: separable must be yes or no (TRUE/FALSE), got 'maybe'"),
        ([["8", None, -0.1]], "stage 1: dropout is a probability from 0 to below 1, got '-0.1'"),
        ([["8", None, True]], "stage 1: dropout is a probability from 0 to below 1, got 'True'"),
        ([["8"], [None], ["16"]], "stage 2 is empty: give its channel counts"),
        ([["64, 128"], ["256, 512"]], "stage 2: the model has more than 1,000,000 parameters (at layer 12)"),
        ([["8"]] * 6, "stage 5: layer 22 (maxpool): a 2x2 window does not fit the 1x1 map"),
        ([["8"]] * 7, "a custom model has at most 6 stages, got 7"),
        ([["1,2,3,4,5,6,7"]], "stage 1 has 7 convolutions; at most 6"),
        ([[None] * 3] * 6, "the custom model's table is empty: give stage 1 its channels"),
        ([[""] * 3] * 6, "the custom model's table is empty"),
        (None, "the custom model's table is empty"),
        ([["8", "no", 0, "x"]], "stage 1: residual must be yes or no (TRUE/FALSE), got 'x'"),
        ([["8", "no", 0, "no", 1]], "a custom model table has 4 columns (channels, separable, dropout, re"),
        ([["8, 16", None, None, "yes"]], "stage 1: residual connections need a convolution that keeps its"),
        ([["8"], ["16, 24", None, None, "yes"]], "stage 2: residual connections need"),
        ("defualt", f"spec: unknown model 'defualt'; give a model ({', '.join(VARIANTS)})"),
        ("custom", "spec: for the custom model give its table of stages"),
        ("8,16 | 16 turbo", "stage 2: unknown option 'turbo'"),
    ],
)  # fmt: skip
def test_a_bad_design_gets_a_message_naming_what_is_wrong(spec, reason):
    got = message(cells.MODEL_SUMMARY(spec))
    assert got.startswith(cells.ERROR_PREFIX + reason), got
    assert message(udfs.MODEL_SUMMARY(spec)) == got


# ---- the add-in's custom function over HTTP --------------------------------------------------------------


def call(client, *args) -> list[list]:
    """MODEL_SUMMARY as Excel calls the add-in: each argument a 2-D array, empty cells as ""."""
    sent = [[["" if v is None else v for v in row] for row in arg] if isinstance(arg, list) else [[arg]]
            for arg in args]  # fmt: skip
    response = client.post("/xlwings/custom-functions-call", json=call_body("MODEL_SUMMARY", sent))
    assert response.status_code == 200, response.text
    return response.json()["result"]


def test_the_addin_function_gives_the_same_table_and_messages(client):
    for table, _ in TABLES:
        assert call(client, table) == cells.MODEL_SUMMARY(table)
    assert call(client, "s6") == cells.MODEL_SUMMARY("s6")
    assert call(client, [["8", None, None], ["x", None, None]]) == cells.MODEL_SUMMARY([["8"], ["x"]])
    assert message(call(client, [[None] * 3] * 6)).startswith("#VALUE! the custom model's table is empty")


@pytest.mark.slow
def test_the_addins_train_reads_the_table(client):
    """The task pane's Train reads the Custom model table on the server: a bad row stops it, named."""
    book = Workbook(client, document="https://school.example/dana.xlsx", model="custom")
    bad = {"J4": "8, 16", "K4": "no", "J5": "16, x"}
    book.payload = _with_table(book.payload, bad)
    book.press("train")
    assert book.status == (
        "Not started: check the settings: stage 2: channel counts are whole numbers from 1 to 512, got 'x'"
    )


def _with_table(payload: dict, table_cells: dict) -> dict:
    """The payload with the Train sheet's custom table cleared and then given ``table_cells``."""
    sheet = next(s for s in payload["sheets"] if s["name"] == layout.TRAIN_SHEET)
    first, last = layout.TRAIN_CUSTOM_CELLS.split(":")
    (r0, c0), (r1, c1) = ref(first), ref(last)
    given = {ref(address): value for address, value in table_cells.items()}
    for r in range(r0, r1 + 1):
        for c in range(c0, c1 + 1):
            sheet["values"][r][c] = given.get((r, c))
    return payload


# ---- the Train sheet: table, live summary, template --------------------------------------------------------


def _load(path, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # openpyxl: "extension is not supported" for data bars
        return openpyxl.load_workbook(path, **options)


def _table(sheet) -> list[list]:
    return [[cell.value for cell in row] for row in sheet[layout.TRAIN_CUSTOM_CELLS]]


@pytest.mark.slow
def test_the_template_starts_the_custom_model_as_gradsheets_default(built):
    ws = _load(built)[layout.TRAIN_SHEET]
    table = _table(ws)
    assert table == table_of(DEFAULT_STAGES)
    assert stages_text(table) == DEFAULT_TEXT
    head = ref(layout.TRAIN_CUSTOM_HEADER_CELL)
    header = [ws.cell(head[0] + 1, head[1] + 1 + j).value for j in range(6)]
    assert header == ["stage", "channels", "separable", "dropout", "residual", None]
    stages = [ws.cell(head[0] + 1 + k, head[1] + 1).value for k in range(1, 7)]
    assert stages == [1, 2, 3, 4, 5, 6]
    # yellow inputs, each with a note; channels formatted as text; separable and residual yes/no dropdowns
    inputs = [cell for row in ws[layout.TRAIN_CUSTOM_CELLS] for cell in row]
    assert all(cell.fill.fgColor.rgb.endswith("FFF2CC") and cell.comment for cell in inputs)
    assert "Stage 2: the output channels" in ws[offset(layout.TRAIN_CUSTOM_HEADER_CELL, 2, 1)].comment.text
    assert {row[0].number_format for row in ws[layout.TRAIN_CUSTOM_CELLS]} == {"@"}
    lists = {str(dv.sqref): dv.formula1 for dv in ws.data_validations.dataValidation}
    for k in range(1, 7):
        assert lists[offset(layout.TRAIN_CUSTOM_HEADER_CELL, k, 2)] == '"yes,no"'
        assert lists[offset(layout.TRAIN_CUSTOM_HEADER_CELL, k, 4)] == '"yes,no"'
    assert "residual connections" in ws[offset(layout.TRAIN_CUSTOM_HEADER_CELL, 1, 4)].comment.text


@pytest.mark.slow
def test_the_templates_cached_model_summary_is_the_functions_result(built):
    ws, values = _load(built)[layout.TRAIN_SHEET], _load(built, data_only=True)[layout.TRAIN_SHEET]
    formula = ws[layout.TRAIN_CUSTOM_SUMMARY_CELL].value
    assert isinstance(formula, ArrayFormula)
    assert formula.text == live_summary_formula((26, 5))  # and where the function is unknown, its fallback
    assert formula.text.count(f"MODEL_SUMMARY({layout.TRAIN_CUSTOM_CELLS})") == 2
    result = cells.MODEL_SUMMARY(_table(values))
    assert (
        formula.ref == f"{layout.TRAIN_CUSTOM_SUMMARY_CELL}:{offset(layout.TRAIN_CUSTOM_SUMMARY_CELL, 25, 4)}"
    )
    cached = [[cell.value for cell in row] for row in values[formula.ref]]
    assert cached == [[None if v == "" else v for v in row] for row in result]
    assert cached[-1] == ["Total", None, 19_650, None, None]
    # a dynamic array: Excel spills it as long as the student's design needs
    with zipfile.ZipFile(built) as z:
        sheets = [z.read(n).decode() for n in z.namelist() if n.startswith("xl/worksheets/sheet")]
        assert "xl/metadata.xml" in z.namelist()
    (train,) = [s for s in sheets if "MODEL_SUMMARY(" in s]
    assert re.search(rf'<c r="{layout.TRAIN_CUSTOM_SUMMARY_CELL}"[^>]* cm="1"', train)


def test_the_live_summary_has_room_to_spill_and_sits_between_presets_and_the_runs_summary():
    sheet = next(s for s in gradsheet_workbook(predict_examples=False).sheets if s.name == layout.TRAIN_SHEET)
    top, left = ref(layout.TRAIN_CUSTOM_SUMMARY_CELL)
    result = sheet.cells[(top, left)]
    below = [where for where, cell in sheet.cells.items() if left <= where[1] < left + 5 and where[0] >= top
             and (cell.value is not None or cell.formula)]  # fmt: skip
    assert below == [(top, left)] and result.dynamic and result.spill == (26, 5)
    assert ref(layout.TRAIN_CUSTOM_HEADER_CELL)[1] == left  # the summary right under the table
    presets_end = ref(f"{layout.TRAIN_PRESETS_FIRST_COLUMN}1")[1] + 4
    assert presets_end <= left and left + 5 < ref(layout.TRAIN_SUMMARY_HEADER_CELL)[1]
    assert ref(layout.TRAIN_SUMMARY_HEADER_CELL)[1] + 5 < min(
        ref(c)[1] for c in layout.TRAIN_CHART_CELLS.values()
    )


@pytest.mark.slow
def test_the_addins_sheet_calls_gradsheet_model_summary():
    addin = next(s for s in gradsheet_workbook(predict_examples=False, addin=True).sheets
                 if s.name == layout.TRAIN_SHEET)  # fmt: skip
    cell = addin.cells[ref(layout.TRAIN_CUSTOM_SUMMARY_CELL)]
    call = f"MODEL_SUMMARY({layout.TRAIN_CUSTOM_CELLS})"
    assert cell.formula == live_summary_formula(cell.spill).replace(call, f"GRADSHEET.{call}")
    assert cell.formula.count(f"GRADSHEET.{call}") == 2


@pytest.mark.slow
@pytest.mark.skipif(not libreoffice.available(), reason="LibreOffice (soffice) is not installed")
def test_libreoffice_recalculation_keeps_the_table_and_train_reads_it(shown_recalculated, tmp_path):
    values = shown_recalculated.values[layout.TRAIN_SHEET]
    (r0, c0), (r1, c1) = (ref(a) for a in layout.TRAIN_CUSTOM_CELLS.split(":"))
    table = [row[c0 : c1 + 1] for row in values[r0 : r1 + 1]]
    assert table == table_of(DEFAULT_STAGES)
    settings = {name: values[ref(a)[0]][ref(a)[1]] for name, a in layout.TRAIN_SETTING_CELLS.items()}
    config = buttons.config_from_settings({**settings, "model": "custom", "stages": table}, Files(tmp_path))
    assert config.stages == DEFAULT_TEXT and config.model_spec().layers == VARIANTS["default"].layers


# ---- Train: the settings read the table ------------------------------------------------------------------


def test_a_custom_model_takes_its_stages_from_the_table(tmp_path):
    table = [["6, 8", "no", 0.05], [12.0, True, None], [None] * 3]
    config = buttons.config_from_settings({"model": "custom", "stages": table}, Files(tmp_path))
    assert config.model == "custom" and config.stages == "6,8 drop=0.05 | 12 sep"
    assert config.model_spec().layers == custom_spec("6,8 drop=0.05 | 12 sep").layers


def test_a_bad_table_stops_only_a_custom_model(tmp_path):
    table = [["6, 8"], ["12", "perhaps"]]
    with pytest.raises(ValueError, match="stage 2: separable must be yes or no"):
        buttons.config_from_settings({"model": "custom", "stages": table}, Files(tmp_path))
    config = buttons.config_from_settings({"model": "small", "stages": table}, Files(tmp_path))
    assert config.model == "small" and config.stages == ""
    with pytest.raises(ValueError, match="the custom model's table is empty"):
        buttons.config_from_settings({"model": "custom"}, Files(tmp_path))


def test_train_with_a_bad_table_says_which_stage(tmp_path):
    book = make_book(
        {**QUICK, "model": "custom", "out_dir": str(tmp_path / "run")}, _table_cells([["8"], ["-3"]])
    )
    launcher = ThreadLauncher()
    assert buttons.train(book, launcher=launcher) is None and launcher.thread is None
    assert status(book) == (
        "Not started: check the settings: stage 2: channel counts are whole numbers from 1 to 512, got '-3'"
    )


def _table_cells(table: list[list]) -> dict[str, dict]:
    """The Train sheet's custom table cells for ``make_book``: ``table``'s rows, the rest of it empty."""
    head = layout.TRAIN_CUSTOM_HEADER_CELL
    rows = [list(row) + [None] * (4 - len(row)) for row in table]
    rows += [[None] * 4] * (6 - len(rows))
    found = {offset(head, k + 1, j + 1): value for k, row in enumerate(rows) for j, value in enumerate(row)}
    return {layout.TRAIN_SHEET: found}


@pytest.mark.slow
def test_train_trains_the_students_design_and_the_report_shows_it(tmp_path):
    table = [["6, 8", "no", 0.05], ["12, 12", "yes", None, "yes"], ["16"]]
    text = "6,8 drop=0.05 | 12,12 sep res | 16"
    out = tmp_path / "run"
    book = make_book({**QUICK, "model": "custom", "epochs": 1, "out_dir": str(out)}, _table_cells(table))
    launcher = ThreadLauncher()
    buttons.train(book, launcher=launcher)
    ended = launcher.join()
    assert ended.status == "completed" and ended.epochs_done == 1
    checkpoint = torch.load(out / "model.pt", weights_only=False)
    assert checkpoint["config"]["stages"] == text
    assert tuple(map(tuple, checkpoint["model"]["layers"])) == custom_spec(text).layers
    # the run's model summary, written by the sheet sink, is the design's MODEL_SUMMARY (with its RF column)
    expected = cells.MODEL_SUMMARY(table)
    written = read(book, layout.TRAIN_SHEET, layout.TRAIN_SUMMARY_HEADER_CELL, len(expected), 5)
    assert written == [[None if v == "" else v for v in row] for row in expected]
    # its receptive fields, derived by hand: 3x3 convolutions (and depthwise halves) add 2 x jump, a 2x2 pool
    # 1 x jump (and doubles the jump), 1x1 convolutions nothing, the global average pool over 7x7 adds 6 x 4;
    # the residual connection (12 -> 12, pooled) is a Shortcut row and an AddShortcut row, adding nothing
    windows = [(row[0], row[4]) for row in written[1:-1] if row[0].split("-")[0] in ("Conv2d", "MaxPool2d")]
    windows.append(tuple(written[-2][::4]))
    assert [rf for _, rf in windows] == [3, 5, 6, 10, 10, 14, 14, 16, 24, 24, 48]
    assert [row[0].split("-")[0] for row in written if "Shortcut" in row[0]] == ["Shortcut", "AddShortcut"]
    assert windows[-1][0].startswith("AdaptiveAvgPool2d")
    assert status(book).startswith("Completed: 1 epoch,")

    report = _load(build_report(out, tmp_path / "report.xlsx"))[layout.TRAIN_SHEET]
    assert _table(report) == table_of(parse_stages(text))
    assert report[offset(layout.TRAIN_CUSTOM_HEADER_CELL, -1)].value == train_sheet.CUSTOM_RUN_TITLE
    assert report[layout.TRAIN_CUSTOM_SUMMARY_CELL].value is None  # the run's summary is the sheet's one


def test_a_report_of_another_model_has_no_custom_table_only_a_title_saying_so():
    view = train_sheet.TrainView(settings={"model": "small"}, custom_stages=None)
    sheet = train_sheet.train_sheet(view, buttons=False)
    head = ref(layout.TRAIN_CUSTOM_HEADER_CELL)
    assert head not in sheet.cells and (head[0] + 1, head[1]) not in sheet.cells
    title = sheet.cells[(head[0] - 1, head[1])].value
    assert title == "Custom model: not used (this run trained model 'small')"
