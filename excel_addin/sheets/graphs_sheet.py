"""The Graphs sheet: the six loss curves of the formula sheets, linear and log scale, as native charts.

The charts plot a table on this sheet whose cells link to each LR sheet's E_total column (one block of
columns per chart is what Excel on the web can bind), so they follow every edit without Python.
"""

from __future__ import annotations

from excel_addin.sheets import layout, print_layout
from excel_addin.sheets.backprop_sheets import EPOCHS, loss_curves_chart, lr_col, lr_first_data_row
from excel_addin.sheets.spec import PrintSetup, SheetSpec, a1, quote_sheet, ref
from ml import backprop

CHART_SIZE = (480 * 1.9 * 0.75, 288 * 1.75 * 0.75)  # points
CHART_GAP_ROWS = 28  # the log-scale chart sits this many rows below the linear one


def graphs_sheet() -> SheetSpec:
    sheet = SheetSpec(layout.GRAPHS_SHEET)
    sheet.write("B1", "Loss curves from the formula sheets (plain Excel, no Python needed)", "title")
    head = head_row, head_col = _curve_table(sheet)
    row, col = ref(layout.GRAPHS_CHART_CELL)
    for log, below in ((False, 0), (True, CHART_GAP_ROWS)):
        title = "E_total by epoch for six learning rates" + (" (log scale)" if log else "")
        name = "loss_curves_log" if log else "loss_curves"
        chart = loss_curves_chart(name, (row + below, col), CHART_SIZE, title, layout.GRAPHS_SHEET, head, log)
        sheet.charts.append(chart)
    sheet.column_width(head_col, 7)
    sheet.column_width(head_col + 1, 12, last=head_col + len(layout.DEFAULT_RATES))
    # two pages, one chart each; the table under them (the LR sheets' numbers) and the Refresh picture
    # right of them (the same curves) are not printed
    right = print_layout.drawn_corner(sheet)[1]
    sheet.printing = PrintSetup(area=((0, 0), (head_row - 2, right)), row_breaks=[row + CHART_GAP_ROWS])
    return sheet


def _curve_table(sheet: SheetSpec) -> tuple[int, int]:
    """Epoch and each LR sheet's E_total (linked cells, cached values from ml.backprop); returns the
    header's (row, column)."""
    head_row, head_col = ref(layout.GRAPHS_TABLE_HEADER_CELL)
    sheet.write((head_row - 1, head_col), "The charts plot these cells: E_total of each LR sheet", "section")
    sheet.write((head_row, head_col), "epoch", "header")
    source_col, source_first = lr_col("E_total"), lr_first_data_row()
    for j, lr in enumerate(layout.DEFAULT_RATES, start=1):
        name = layout.rate_sheet_name(lr)
        sheet.write((head_row, head_col + j), name, "header")
        curve = backprop.loss_curve(lr, EPOCHS)
        for epoch in range(EPOCHS + 1):
            link = f"={quote_sheet(name)}!{a1((source_first + epoch, source_col))}"
            sheet.formula((head_row + 1 + epoch, head_col + j), link, float(curve[epoch]), "loss")
    for epoch in range(EPOCHS + 1):
        sheet.write((head_row + 1 + epoch, head_col), epoch, "int")
    return head_row, head_col
