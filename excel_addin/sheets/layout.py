"""Where things live in the workbook: the one place that names sheets and cells.

The template builder writes these cells, the macros read and write them, and the tests check them, so a
layout change happens here and nowhere else.
"""

from __future__ import annotations

from xlsxwriter.utility import xl_cell_to_rowcol, xl_rowcol_to_cell

from excel_addin.sheets import custom_model
from ml.config import sheet_settings
from ml.run_dir import METRIC_COLUMNS
from ml.spec import MAX_LAYERS
from ml.stages import MAX_STAGES

# ---- Backprop sheet: the editable network and the six learning rates -------------------------------
BACKPROP_SHEET = "Backprop"
# parameter -> cell holding its value (column C; labels sit in column B)
BACKPROP_INPUT_CELLS = {
    "i1": "C5",
    "i2": "C6",
    "t1": "C7",
    "t2": "C8",
    "w1": "C9",
    "w2": "C10",
    "w3": "C11",
    "w4": "C12",
    "w5": "C13",
    "w6": "C14",
    "w7": "C15",
    "w8": "C16",
    "b1": "C17",  # fixed hidden bias, not trained (0 = no bias)
    "b2": "C18",  # fixed output bias, not trained (0 = no bias)
    "output": "C19",  # "sigmoid" or "softmax"
}
BACKPROP_RATE_CELLS = ("C22", "C23", "C24", "C25", "C26", "C27")  # the six learning rates
BACKPROP_EPOCHS_CELL = "C29"  # epochs shown per rate
DEFAULT_RATES = (2.0, 1.0, 0.8, 0.5, 0.2, 0.1)
DEFAULT_EPOCHS = 100
# Loss grid: "epoch" then one column per rate (=BACKPROP_LOSS(...)), epochs 0..DEFAULT_EPOCHS below the header
BACKPROP_GRID_HEADER_CELL = "E4"
BACKPROP_CHART_CELL = "M4"  # top-left of the loss-curves chart (bound to the grid)
BACKPROP_BUTTON_CELLS = {"RefreshBackprop": "B2"}  # macro name -> cell the button covers
BACKPROP_STATUS_CELL = "B3"  # one line written by the Refresh macro ("Refreshed 6 rates x 100 epochs ...")


# ---- Derivation sheet: the network drawn, the chain rule, a worked first update -----------------------
DERIVATION_SHEET = "Derivation"
DERIVATION_RATE_INDEX = 3  # the worked example follows the LR sheet of this rate (0.5 by default)


def rate_sheet_name(lr: float) -> str:
    """The per-rate sheet's name, e.g. 2.0 -> "LR 2.0", 0.25 -> "LR 0.25"."""
    text = repr(float(lr))
    return f"LR {text}"


# Per-rate sheets ("LR 2.0", ...): the rate (=Backprop!<rate cell>) and the formula table, one row per epoch
LR_RATE_CELL = "C3"
LR_TABLE_HEADER_CELL = "A6"
# Values written by the Refresh macro (the Python engine's E_total, epochs 0..epochs), a clearly separate
# column right of the formula table (A:AH) and its Python - formula check; header here, values below.
LR_REFRESH_HEADER_CELL = "AJ6"

GRAPHS_SHEET = "Graphs"
GRAPHS_CHART_CELL = "B2"  # the linear-scale chart; the log-scale one below it
GRAPHS_TABLE_HEADER_CELL = "B60"  # below the charts: epoch and each LR sheet's E_total, what the charts plot
GRAPHS_PICTURE_CELL = "R2"  # the Refresh macro's matplotlib picture of all six curves (right of the charts)

# ---- Train sheet: settings, buttons, status, metrics, summary, charts -------------------------------
TRAIN_SHEET = "Train"
# Settings: the training settings of ml.config (in its order, labels and choices from there), then the
# sheet's own: setting -> (label, note). Values in column C from row 4, labels in column B.
TRAIN_EXTRA_SETTINGS = {
    "model_path": ("model file", "the model the Classify sheet uses; empty = <output folder>/model.pt"),
}
TRAIN_FIRST_SETTING_ROW = 4
TRAIN_SETTING_CELLS = {
    name: f"C{TRAIN_FIRST_SETTING_ROW + k}"
    for k, name in enumerate((*sheet_settings(), *TRAIN_EXTRA_SETTINGS))
}
TRAIN_TITLE_CELL = "E1"  # right of the buttons
TRAIN_SUBTITLE_CELL = "B2"  # one line under the buttons (up to the summary's column)
# The presets table: the preset names from this column rightwards on the preset setting's row, each
# setting's value under a preset on that setting's row (columns E..H: up to 4 presets left of the summary).
TRAIN_PRESETS_FIRST_COLUMN = "E"
_AFTER_SETTINGS = TRAIN_FIRST_SETTING_ROW + len(TRAIN_SETTING_CELLS) + 1  # one blank row, then the run
TRAIN_STATUS_CELL = f"C{_AFTER_SETTINGS + 1}"  # "Training on cpu: epoch 3 of 15, ETA 1:20" / "Completed"
TRAIN_PROGRESS_CELL = f"C{_AFTER_SETTINGS + 2}"  # fraction done, 0..1 (formatted as a percentage)
TRAIN_DEVICE_CELL = f"C{_AFTER_SETTINGS + 3}"
TRAIN_METRICS_HEADER_CELL = (
    f"A{_AFTER_SETTINGS + 6}"  # header row of the metrics table (METRIC_COLUMNS), rows below it
)
TRAIN_METRICS_MAX_ROWS = 100  # rows reserved for the table (native charts are bound to this range)
# The native charts and the metrics they plot. A chart binds one block of adjacent columns (what Excel on
# the web can bind), so the sheet's table groups each chart's metrics: epoch, the charts' metrics, the rest.
TRAIN_CHART_SERIES = {"loss": ("train_loss", "test_loss"), "accuracy": ("train_acc", "test_acc")}
_CHARTED = tuple(m for series in TRAIN_CHART_SERIES.values() for m in series)
TRAIN_METRIC_COLUMNS = ("epoch", *_CHARTED, *(m for m in METRIC_COLUMNS if m not in ("epoch", *_CHARTED)))


def _cell(where: str, rows: int = 0, columns: int = 0) -> str:
    """The A1 address ``rows`` below and ``columns`` right of ``where``."""
    row, col = xl_cell_to_rowcol(where)
    return xl_rowcol_to_cell(row + rows, col + columns)


# The custom model's design (model "custom"), right of the settings and presets: a header row at
# TRAIN_CUSTOM_HEADER_CELL, below it one row per stage (ml.stages.MAX_STAGES): its number, then its
# custom_model.COLUMNS (the yellow TRAIN_CUSTOM_CELLS); under the table, its live
# =MODEL_SUMMARY(TRAIN_CUSTOM_CELLS) at TRAIN_CUSTOM_SUMMARY_CELL, spilling the layer table as the student
# edits (in columns as wide as the run's model summary's, so both read alike).
TRAIN_CUSTOM_HEADER_CELL = "I3"
_CUSTOM_LAST = _cell(TRAIN_CUSTOM_HEADER_CELL, MAX_STAGES, len(custom_model.COLUMNS))
TRAIN_CUSTOM_CELLS = f"{_cell(TRAIN_CUSTOM_HEADER_CELL, 1, 1)}:{_CUSTOM_LAST}"
TRAIN_CUSTOM_SUMMARY_CELL = _cell(TRAIN_CUSTOM_HEADER_CELL, MAX_STAGES + 3)  # its title in the row above
# model summary of a run: Layer | Output shape | Params | Jump | RF, one row per layer and a Total row; it
# sits right of the custom model and its live summary (5 columns and a spacer), and above nothing.
TRAIN_SUMMARY_HEADER_CELL = _cell(TRAIN_CUSTOM_HEADER_CELL, columns=6)
# rows reserved below the header, which a run's summary blanks where it is shorter: room for the longest
# model a spec allows (one row per layer, then the total), so no earlier run's rows are left behind
TRAIN_SUMMARY_MAX_ROWS = MAX_LAYERS + 1
# native line charts bound to the metrics table (live while a run fills it): name -> top-left anchor cell,
# right of the run's model summary at the top (5 columns and a spacer), each 8 columns wide
_CHARTS = _cell(TRAIN_SUMMARY_HEADER_CELL, columns=6)
TRAIN_CHART_CELLS = {"loss": _CHARTS, "accuracy": _cell(_CHARTS, columns=8)}
# matplotlib pictures written by a run: name -> top-left anchor cell (each ~8 columns wide, 20 rows tall):
# the final results under the charts, then the curves as pictures (for viewers without native charts)
TRAIN_PICTURE_CELLS = {
    "confusion_matrix": _cell(_CHARTS, 20),
    "misclassified": _cell(_CHARTS, 20, 8),
    "loss_curves": _cell(_CHARTS, 40),
    "accuracy_curves": _cell(_CHARTS, 40, 8),
}
TRAIN_BUTTON_CELLS = {"Train": "B1", "StopTraining": "C1"}  # macro name -> cell the button covers

# ---- Classify sheet ---------------------------------------------------------------------------------
CLASSIFY_SHEET = "Classify"
CLASSIFY_FIRST_ROW = 5  # image paths in column A from this row; =CLASSIFY_IMAGE(A5) in B, probs in C:L

# The drawing grid (a digit drawn in cells): 28 x 28 square cells right of the image table, shaded from
# paper (0 or empty) to ink (1); its title above it, the Random test digit and Clear buttons and a caption
# (which test digit it holds) in the row above the grid. =CLASSIFY_PIXELS(grid) gives its digit in the
# result row, under the image table: a label in A, the digit in B, the probabilities in C:L (header above).
CLASSIFY_GRID_CELL = "N5"  # the grid's top-left cell (N5:AO32)
CLASSIFY_GRID_TITLE_CELL = "N1"
CLASSIFY_GRID_CAPTION_CELL = "AA3"  # "MNIST test digit #15, labelled 5", "Cleared: ...", or what went wrong
CLASSIFY_GRID_RESULT_ROW = 17  # 1-based, like CLASSIFY_FIRST_ROW
# What the network sees: which image (a row number, its path in column A; or "grid") with the button
# beside it (two rows tall: these rows are the grid's, whose height stays), a status line under them (the
# top-left cell of a two-row box over the image table's columns, so a long line wraps instead of running
# over the grid), and the picture (ml.explain) under that, replaced in place on every press.
CLASSIFY_EXPLAIN_TARGET_CELL = "B21"
CLASSIFY_EXPLAIN_STATUS_CELL = "A23"
CLASSIFY_EXPLAIN_PICTURE_CELL = "A26"
CLASSIFY_BUTTON_CELLS = {  # macro name -> cell the button covers
    "RandomTestDigit": "N3",
    "ClearGrid": "V3",
    "WhatTheNetworkSees": "C21",
}

# ---- xlwings settings sheet (key in column A from A1, value in column B) -------------------------------
XLWINGS_CONF_SHEET = "xlwings.conf"

# ---- Macros the buttons call (VBA Sub name -> Python entry point in excel_addin.classic.macros) --------
# ("Stop" is a VBA statement, so it cannot name a Sub: the Stop button calls StopTraining.)
MACROS = {
    "Train": "train",
    "StopTraining": "stop",
    "RefreshBackprop": "refresh_backprop",
    # the Classify sheet's drawing grid and what the network sees
    "RandomTestDigit": "random_test_digit",
    "ClearGrid": "clear_grid",
    "WhatTheNetworkSees": "what_the_network_sees",
}

# ---- Defined names the add-in server keeps in a workbook (Formulas > Name Manager) ---------------------
# The workbook's id on the add-in server: its runs live in <runs>/<id>/, and
# =GRADSHEET.TRAIN_PROGRESS(GRADSHEET_ID) streams its training. Set up or the first Train writes it; a
# teacher may set it by hand (e.g. a student's name).
WORKBOOK_ID_NAME = "GRADSHEET_ID"
# A fingerprint of the file the id was given to: a copy of the workbook (another file) gets its own id.
WORKBOOK_FILE_NAME = "GRADSHEET_FILE"
