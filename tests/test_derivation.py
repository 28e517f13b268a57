"""The Derivation sheet's mathematics: the chain rule written out as text is the engine's gradient.

The worked example's live formulas are checked by LibreOffice in test_template_libreoffice.py; here the
text a student reads is evaluated as a formula and compared with ml.backprop, for both output choices
and random networks, so a typo in an equation cannot pass.
"""

from __future__ import annotations

import random
import re

import pytest

from excel_addin.sheets import derivation_sheet as ds
from excel_addin.sheets import layout
from excel_addin.sheets.workbook import gradsheet_workbook
from ml import backprop


def evaluate(text: str, symbols: dict[str, float]) -> float:
    """A written-out formula (·, −, [ ], juxtaposition for products) evaluated with the given values."""
    expr = text.replace("−", "-").replace("·", "*").replace("[", "(").replace("]", ")")
    expr = re.sub(r"(\w|\))\s+(?=[\w(])", r"\1*", expr)  # "a_o1 (1 - a_o1)" -> "a_o1*(1 - a_o1)"
    return eval(expr, {"__builtins__": {}}, symbols)  # noqa: S307 - our own constant strings


def engine_symbols(network: backprop.Network) -> dict[str, float]:
    table = backprop.trajectory(0.5, 0, network)
    values = dict(zip(backprop.COLUMNS, table[0], strict=True))
    values.update(zip(("i1", "i2", "t1", "t2"), (*network.inputs, *network.targets), strict=True))
    return values


@pytest.mark.parametrize("output", backprop.OUTPUTS)
@pytest.mark.parametrize("seed", range(5))
def test_the_written_out_gradients_are_the_engines(output, seed):
    rng = random.Random(seed)
    network = backprop.Network(
        inputs=(rng.uniform(-1, 1), rng.uniform(-1, 1)),
        targets=(rng.uniform(0, 1), rng.uniform(0, 1)),
        weights=tuple(rng.uniform(-1, 1) for _ in range(8)),
        output=output,
        biases=(rng.uniform(-0.5, 0.5), rng.uniform(-0.5, 0.5)),
    )
    symbols = engine_symbols(network)
    choice = backprop.OUTPUTS.index(output)
    for k in range(1, 9):
        written = ds.written_out(k)[choice]
        assert evaluate(written, symbols) == pytest.approx(symbols[f"dE_dw{k}"], rel=1e-12, abs=1e-15), k


def test_the_worked_lines_cover_every_quantity_once_and_check_against_the_lr_sheet():
    symbols = [line.symbol for _, lines in ds.worked_lines() for line in lines]
    assert len(symbols) == len(set(symbols)) == 31
    checks = {line.check for _, lines in ds.worked_lines() for line in lines}
    assert {key for key, _ in checks} >= set(backprop.COLUMNS[1:]) - set(backprop.WEIGHT_NAMES) | {"d_o1"}
    assert {(f"w{k}", 1) for k in range(1, 9)} <= checks  # the update is checked against epoch 1


def test_the_sheet_comes_right_after_backprop_and_reads_only_gradsheets_cells():
    names = [sheet.name for sheet in gradsheet_workbook(predict_examples=False).sheets]
    assert names[:2] == [layout.BACKPROP_SHEET, layout.DERIVATION_SHEET]
    sheet = ds.derivation_sheet()
    formulas = [cell.formula for cell in sheet.cells.values() if cell.formula]
    assert formulas and all("!" not in f or f"'{ds.WORKED_SHEET}'!" in f for f in formulas)
