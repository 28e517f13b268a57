"""The Train sheet's native Loss and Accuracy line charts, bound to its metrics table.

The template (empty table, charts waiting for a run) and the headless report (a finished run's rows) draw
the same two charts, so both call this.
"""

from __future__ import annotations

from xlsxwriter.utility import xl_cell_to_rowcol

from excel_addin import layout
from ml.events import METRIC_COLUMNS

# chart name -> (title, y-axis name, plotted metrics, y number format, y-axis bounds)
CHART_SPECS = {
    "loss": ("Loss by epoch", "loss", ("train_loss", "test_loss"), "0.00", {"min": 0}),
    "accuracy": ("Accuracy by epoch", "accuracy", ("train_acc", "test_acc"), "0%", {"max": 1}),
}


def insert_metric_charts(wb, ws, last_row: int) -> None:
    """Add the charts at ``layout.TRAIN_CHART_CELLS``, plotting the metrics rows down to ``last_row``
    (0-based; the rows start just below ``layout.TRAIN_METRICS_HEADER_CELL``)."""
    header, c = xl_cell_to_rowcol(layout.TRAIN_METRICS_HEADER_CELL)
    first = header + 1
    col = {name: c + j for j, name in enumerate(METRIC_COLUMNS)}
    for name, anchor in layout.TRAIN_CHART_CELLS.items():
        title, axis, series, num_format, bounds = CHART_SPECS[name]
        chart = wb.add_chart({"type": "line"})
        for metric in series:
            chart.add_series(
                {
                    "name": [layout.TRAIN_SHEET, header, col[metric]],
                    "categories": [layout.TRAIN_SHEET, first, col["epoch"], last_row, col["epoch"]],
                    "values": [layout.TRAIN_SHEET, first, col[metric], last_row, col[metric]],
                    "marker": {"type": "circle", "size": 4},
                    "line": {"width": 2},
                }
            )
        chart.set_title({"name": title, "name_font": {"size": 12, "bold": True}})
        chart.set_x_axis({"name": "epoch"})
        chart.set_y_axis(
            {
                "name": axis,
                "num_format": num_format,
                **bounds,
                "major_gridlines": {"visible": True, "line": {"color": "#E0E0E0"}},
            }
        )
        chart.set_legend({"position": "bottom"})
        chart.show_blanks_as("gap")
        ws.insert_chart(anchor, chart, {"x_scale": 1.05, "y_scale": 1.2})
