"""What TRAIN_PROGRESS streams and the task pane shows of a run: its status line, fraction done, queue
position, device, model summary and one metric row per finished epoch (``Progress``).

Where a run stands is decided by the run book (``excel_addin.server.runs``); this is only its view, with
the parts a set-up workbook's Train sheet shows in its cells (``PARTS``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from excel_addin.sheets import layout
from excel_addin.sheets.train_sheet import summary_table

LABELS = ("status", "progress", "queue")  # the first column of the rows above the metrics table
# TRAIN_PROGRESS(workbook, part): the whole table, or one part of it (what the Train sheet of a set-up
# workbook shows in its status, progress and device cells and its metrics table)
PARTS = ("all", "status", "progress", "queue", "device", "metrics", "summary")


@dataclass(frozen=True)
class Progress:
    """A run's status line, fraction done (None: unknown), queue position (None: not waiting), device
    and its metric rows (as the Train sheet orders them: layout.TRAIN_METRIC_COLUMNS)."""

    status: str
    progress: float | None = None
    queue: int | None = None
    rows: tuple[tuple[float, ...], ...] = ()
    device: str = ""
    layers: tuple[tuple, ...] = ()  # the run's model summary rows (ml.summary_table.LayerRow)
    n_params: int | None = None

    def table(self) -> list[list[Any]]:
        """The spill of TRAIN_PROGRESS: a status, a progress and a queue row, then the metrics table
        (header and one row per epoch; native charts can be bound to its columns)."""
        width = len(layout.TRAIN_METRIC_COLUMNS)
        values = (self.status, self.progress, self.queue)
        top = [
            [label, "" if value is None else value] + [""] * (width - 2)
            for label, value in zip(LABELS, values, strict=True)
        ]
        return [*top, *self.metrics()]

    def metrics(self) -> list[list[Any]]:
        """The metrics table alone: its header and one row per epoch."""
        return [list(layout.TRAIN_METRIC_COLUMNS), *(list(row) for row in self.rows)]

    def part(self, name: str) -> list[list[Any]]:
        """What TRAIN_PROGRESS(workbook, part) shows: one of PARTS (a single value, or a table)."""
        single = {"status": self.status, "progress": self.progress, "queue": self.queue}
        single["device"] = self.device
        if name in single:
            value = single[name]
            return [["" if value is None else value]]
        if name == "summary":
            return summary_table(self.layers, self.n_params, empty="")
        return self.metrics() if name == "metrics" else self.table()

    def summary(self) -> dict[str, Any]:
        """The task pane's short status."""
        return {
            "status": self.status,
            "progress": self.progress,
            "queue": self.queue,
            "epochs": len(self.rows),
        }
