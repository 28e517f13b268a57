"""The BACKPROP_* cell functions: values equal the engine, bad cells read as messages, trajectories cached."""

import pytest

from excel_addin import cells
from excel_addin.classic.udfs import BACKPROP_CURVE, BACKPROP_LOSS, BACKPROP_TABLE
from ml import backprop

RATES = (0.1, 0.2, 0.5, 0.8, 1.0, 2.0)


def test_loss_curve_and_table_agree_with_the_engine():
    for lr in RATES:
        curve = BACKPROP_CURVE(lr, 100.0)  # Excel passes numbers as floats
        assert len(curve) == 101 and all(len(row) == 1 for row in curve)
        expected = backprop.loss_curve(lr, 100)
        assert [row[0] for row in curve] == list(expected)
        assert BACKPROP_LOSS(lr, 37.0) == expected[37]
    table = BACKPROP_TABLE(0.5, 10)
    assert table[0] == list(backprop.COLUMNS)
    assert len(table) == 12
    assert table[11][0] == 10 and isinstance(table[11][0], int)
    assert table[11][backprop.COLUMNS.index("E_total")] == BACKPROP_LOSS(0.5, 10)


def test_ranges_of_cells_configure_the_network():
    """Optional arguments point at editable cells: columns, rows and blocks all work."""
    worked = BACKPROP_LOSS(
        0.5,
        0,
        inputs=[[0.05], [0.1]],
        targets=[0.01, 0.99],
        weights=[[0.15, 0.2, 0.25, 0.3], [0.4, 0.45, 0.5, 0.55]],
        biases=[0.35, 0.6],
        output="sigmoid",
    )
    assert worked == pytest.approx(0.298371109, abs=1e-9)
    softmax = BACKPROP_LOSS(0.5, 3, output="Softmax")
    assert softmax == backprop.loss_at(0.5, 3, backprop.Network(output="softmax"))
    assert BACKPROP_LOSS(0.5, 3, None, None, None, None, "") == backprop.loss_at(0.5, 3)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: BACKPROP_LOSS(-1, 3), "#VALUE! learning rate must be a positive finite number, got -1"),
        (lambda: BACKPROP_LOSS("abc", 3), "#VALUE! learning rate must be a number, got 'abc'"),
        (lambda: BACKPROP_LOSS(None, 3), "#VALUE! learning rate must be a number, got None"),
        (lambda: BACKPROP_LOSS(True, 3), "#VALUE! learning rate must be a number, got True"),
        (lambda: BACKPROP_LOSS(0.5, -2), "#VALUE! epoch must not be negative, got -2"),
        (lambda: BACKPROP_LOSS(0.5, 2.5), "#VALUE! epoch must be a whole number, got 2.5"),
        (lambda: BACKPROP_LOSS(0.5, 1e12), "#VALUE! epoch must be at most 100,000"),
        (lambda: BACKPROP_LOSS(0.5, 3, weights=[1, 2, 3]), "#VALUE! weights must be 8 numbers, got 3"),
        (lambda: BACKPROP_LOSS(0.5, 3, weights=[1] * 7 + [None]), "#VALUE! weights: a cell is empty"),
        (lambda: BACKPROP_LOSS(0.5, 3, output="tanh"), "#VALUE! output activation must be 'sigmoid'"),
        (lambda: BACKPROP_LOSS(0.5, 3, inputs=["a", "b"]), "#VALUE! inputs must be 2 numbers"),
    ],
)
def test_bad_cells_read_as_a_message_not_a_traceback(call, message):
    assert call().startswith(message)


def test_spilling_functions_report_bad_input_in_their_first_cell():
    assert BACKPROP_CURVE(0.5, -1) == [["#VALUE! epochs must not be negative, got -1"]]
    assert BACKPROP_TABLE(0, 10) == [["#VALUE! learning rate must be a positive finite number, got 0"]]


def test_a_sheet_of_600_loss_cells_computes_six_trajectories():
    backprop.clear_cache()
    grid = [[BACKPROP_LOSS(lr, float(epoch)) for lr in RATES] for epoch in range(1, 101)]
    assert backprop.cache_info()["computed"] == len(RATES)
    for lr in RATES:  # curves reuse the same trajectories
        BACKPROP_CURVE(lr, 100)
    assert backprop.cache_info()["computed"] == len(RATES)
    assert grid[99][RATES.index(2.0)] == backprop.loss_curve(2.0, 100)[100]


def test_udfs_are_documented_for_excels_function_help():
    for function in (BACKPROP_LOSS, BACKPROP_CURVE, BACKPROP_TABLE):
        doc = function.__doc__
        assert doc and "\n" not in doc.strip(), function.__name__
    assert cells.excel_error(ValueError("x")) == "#VALUE! x"
