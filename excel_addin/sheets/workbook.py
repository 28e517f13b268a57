"""gradsheet's workbook as one description: every sheet in order, the defined names, the active sheet.

The template (``template.build``) and "Set up gradsheet" (``setup.setup_workbook``) both render this, so
they hold the same sheets, cells and formulas.
"""

from __future__ import annotations

from dataclasses import replace

from excel_addin.cells import in_namespace
from excel_addin.sheets import layout
from excel_addin.sheets.backprop_sheets import backprop_sheet, input_names, rate_sheet
from excel_addin.sheets.classify_sheet import (
    addin_model_args,
    classify_sheet,
    example_predictions,
    grid_prediction,
    model_args,
)
from excel_addin.sheets.conf_sheet import conf_sheet
from excel_addin.sheets.derivation_sheet import derivation_sheet
from excel_addin.sheets.graphs_sheet import graphs_sheet
from excel_addin.sheets.spec import WorkbookSpec
from excel_addin.sheets.train_sheet import ADDIN_SUBTITLE, TrainView, train_sheet


def gradsheet_workbook(predict_examples: bool = True, addin: bool = False) -> WorkbookSpec:
    """All of gradsheet's sheets. ``predict_examples``: cache the shipped model's answers for the Classify
    examples and drawing grid (the file shows them before Python runs; a Book computes them itself).
    ``addin``: the sheets as the Office.js add-in's Set up writes them: cell functions by their add-in names
    (GRADSHEET.*), a Train sheet whose run cells stream from the server, no xlwings settings sheet."""
    predictions = example_predictions() if predict_examples else None
    grid = grid_prediction() if predict_examples else None
    train = TrainView(subtitle=ADDIN_SUBTITLE) if addin else TrainView()
    sheets = [
        backprop_sheet(),
        derivation_sheet(),
        *(rate_sheet(k, lr) for k, lr in enumerate(layout.DEFAULT_RATES)),
        graphs_sheet(),
        train_sheet(train, buttons=not addin, stream=addin),
        classify_sheet(predictions, grid),
        *(() if addin else (conf_sheet(),)),
    ]
    if addin:
        for sheet in sheets:
            sheet.cells = {
                where: replace(cell, formula=_addin_formula(cell.formula)) if cell.formula else cell
                for where, cell in sheet.cells.items()
            }
    return WorkbookSpec(sheets, names=input_names(), active=layout.BACKPROP_SHEET)


def _addin_formula(formula: str) -> str:
    """A formula as the add-in needs it: its functions' add-in names, the Classify cells' model paths
    inside the workbook's own folder on the server."""
    return in_namespace(formula.replace(model_args(), addin_model_args()))
