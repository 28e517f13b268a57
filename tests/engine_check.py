"""The check that a recalculated workbook's LR formula sheets equal ``ml.backprop``, for every rate and
epoch (shared by the template's and the set-up workbook's LibreOffice tests)."""

from __future__ import annotations

import numpy as np

from excel_addin.sheets import backprop_sheets as bs
from excel_addin.sheets import layout
from ml import backprop

TOLERANCE = 1e-12


def lr_column(rows: list[list], key: str) -> np.ndarray:
    """One quantity's column of a per-rate sheet (epochs 0..EPOCHS) from a sheet's rows of values."""
    first = bs.lr_first_data_row()
    col = bs.lr_col(key)
    return np.array([rows[first + e][col] for e in range(bs.EPOCHS + 1)], dtype=float)


def assert_sheets_match_engine(values: dict, rates, network: backprop.Network) -> float:
    """Every column of every LR sheet equals ml.backprop's trajectory; returns the largest difference."""
    worst = 0.0
    for sheet_lr, lr in zip(layout.DEFAULT_RATES, rates, strict=True):
        rows = values[layout.rate_sheet_name(sheet_lr)]
        table = backprop.trajectory(lr, bs.EPOCHS, network)
        for j, key in enumerate(backprop.COLUMNS):
            diff = np.max(np.abs(lr_column(rows, key) - table[:, j]))
            assert diff <= TOLERANCE, f"{layout.rate_sheet_name(sheet_lr)} {key}: off by {diff:.3g}"
            worst = max(worst, diff)
        deltas = bs.deltas(table, network)
        for j, key in enumerate(bs.DELTA_NAMES):
            assert np.max(np.abs(lr_column(rows, key) - deltas[:, j])) <= TOLERANCE, key
    return worst


def assert_derivation_matches_engine(values: dict, network: backprop.Network) -> None:
    """The Derivation sheet's worked example computes the first update of ``network`` at its rate, and
    every line's check says it agrees with the LR sheet."""
    from excel_addin.sheets import derivation_sheet as ds

    rows = values[layout.DERIVATION_SHEET]
    expected = ds._cached(network)
    cols = {name: bs.ref(f"{letter}1")[1] for name, letter in ds.WORKED_COLUMNS.items()}
    row = ds.section_tops()["worked"]
    checked = 0
    for _, lines in ds.worked_lines():
        row += 1
        for line in lines:
            row += 1
            value = rows[row][cols["value"]]
            assert abs(value - expected[line.symbol]) <= TOLERANCE * max(1, abs(expected[line.symbol])), (
                line.symbol,
                value,
                expected[line.symbol],
            )
            assert rows[row][cols["check"]] == "✓ the same", line.symbol
            checked += 1
    assert checked == 11 + 12 + 8
