"""A training run as a workbook, without Excel: ``python -m excel_addin.report RUN_DIR [--out FILE.xlsx]``.

Builds, with XlsxWriter, the same Train sheet the Train button fills in Excel (same cells, from
``excel_addin.layout``): the settings, the final status, the model summary, the metrics table with native
line charts bound to it, and the run's PNG charts as pictures. Everything comes from the run folder's
files (metrics.json, the PNGs), so a run trained headless (``python -m ml.train``) or on CI can be opened
in any spreadsheet program.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import xlsxwriter
from PIL import Image
from xlsxwriter.utility import xl_cell_to_rowcol

from excel_addin import layout
from excel_addin.metric_charts import insert_metric_charts
from excel_addin.sheet_sink import SUMMARY_HEADER, picture_size, summary_cells
from excel_addin.status_line import end_status
from ml.config import label_of
from ml.events import METRIC_COLUMNS, RunEnded
from ml.run_dir import RunDir


def setting_label(name: str) -> str:
    """A Train-sheet setting's label: the training spec's, or the sheet's own for its extra settings."""
    extra = layout.TRAIN_EXTRA_SETTINGS.get(name)
    return extra[0] if extra else label_of(name)


class ReportError(ValueError):
    """The run folder cannot make a report (names the missing or broken file)."""


def load_run(run_dir: str | Path) -> dict[str, Any]:
    """The run's record from RUN_DIR/metrics.json: {"run": {...}, "epochs": [rows]}."""
    path = Path(run_dir) / "metrics.json"
    if not path.is_file():
        raise ReportError(
            f"no training run in {run_dir}: {path.name} is missing (train with python -m ml.train)"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        rows = data["epochs"]
        if not isinstance(data["run"], dict):
            raise TypeError("'run' is not a record")
        for row in rows:
            [float(row[c]) for c in METRIC_COLUMNS]
    except (ValueError, KeyError, TypeError) as error:
        raise ReportError(f"{path} is not a metrics file of ml.train ({error!r})") from None
    return data


def summary_rows(run_dir: Path, model: str | None) -> list[list]:
    """The model summary (sheet cells) of the run's model: the spec its checkpoint stores, else the
    variant it names; [] when neither is usable."""
    from ml.checkpoint import CheckpointError, load_checkpoint, spec_of
    from ml.model import VARIANTS, layer_table

    try:
        spec = spec_of(load_checkpoint(RunDir(run_dir).checkpoint))
    except (OSError, CheckpointError):
        spec = VARIANTS.get(model) if isinstance(model, str) else None
    return [summary_cells(row) for row in layer_table(spec)] if spec else []


def _status(run: dict[str, Any], epochs_done: int) -> tuple[str, float]:
    end = run.get("end")
    total = max(int(run.get("epochs") or 1), 1)
    if end:
        known = {f.name for f in dataclasses.fields(RunEnded)}
        fields = {k: v for k, v in end.items() if k in known}
        text, progress = end_status(RunEnded(**fields))
        return text, progress if progress is not None else epochs_done / total
    return f"Running (or interrupted) after {epochs_done} epoch(s)", epochs_done / total


def _picture_scale(path: Path) -> float:
    """The scale that fits a PNG into the sheet's picture box (XlsxWriter honours the PNG's own DPI)."""
    with Image.open(path) as image:
        width = image.width
        dpi = float((image.info.get("dpi") or (96, 96))[0]) or 96.0
    shown_points = width * 72.0 / dpi
    return picture_size(path)[0] / shown_points


def build_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the report workbook (default RUN_DIR/report.xlsx) and return its path."""
    run_dir = Path(run_dir)
    data = load_run(run_dir)
    run, rows = data["run"], data["epochs"]
    config = run.get("config", {})
    out = Path(out) if out else run_dir / "report.xlsx"
    out.parent.mkdir(parents=True, exist_ok=True)

    wb = xlsxwriter.Workbook(str(out))
    ws = wb.add_worksheet(layout.TRAIN_SHEET)
    bold = {"bold": True, "font_color": "#1F3864"}
    title = wb.add_format({"bold": True, "font_size": 14, "font_color": "#1F3864"})
    section = wb.add_format({**bold, "bottom": 1})
    header = wb.add_format({**bold, "bg_color": "#DDEBF7", "border": 1, "align": "center"})
    label = wb.add_format({"font_color": "#404040"})
    value = wb.add_format({"bg_color": "#F2F2F2", "align": "left"})
    formats = {
        "epoch": wb.add_format({"num_format": "0", "border": 1}),
        "train_acc": wb.add_format({"num_format": "0.00%", "border": 1}),
        "test_acc": wb.add_format({"num_format": "0.00%", "border": 1}),
        "lr": wb.add_format({"num_format": "0.0000", "border": 1}),
        "seconds": wb.add_format({"num_format": "0.0", "border": 1}),
    }
    number = wb.add_format({"num_format": "0.0000", "border": 1})
    percent = wb.add_format({"num_format": "0%", "bg_color": "#F2F2F2", "align": "left"})
    ws.set_column("A:A", 9)
    ws.set_column("B:B", 19)
    ws.set_column("C:C", 30)
    ws.set_column("D:G", 11)
    ws.set_column("I:I", 16)
    ws.set_column("J:J", 18)
    ws.set_column("K:K", 9)

    ws.write("A1", f"Training report: {config.get('model', '?')} CNN on MNIST", title)
    ws.write("A2", f"From the run folder {run_dir.resolve()} (python -m excel_addin.report)", label)

    # Settings, status
    first = xl_cell_to_rowcol(layout.TRAIN_SETTING_CELLS["epochs"])[0]
    ws.write(first - 1, 1, "Settings", section)
    settings = {**config, "model_path": str(RunDir(run_dir).checkpoint)}
    settings["subset"] = config.get("subset") or "all 60,000"
    settings["device"] = f"{config.get('device', '?')} (ran on {run.get('device', '?')})"
    for key, cell in layout.TRAIN_SETTING_CELLS.items():
        r, c = xl_cell_to_rowcol(cell)
        ws.write(r, c - 1, setting_label(key), label)
        ws.write(r, c, settings.get(key, ""), value)
    text, progress = _status(run, len(rows))
    for name, cell, content, fmt in (
        ("status", layout.TRAIN_STATUS_CELL, text, value),
        ("progress", layout.TRAIN_PROGRESS_CELL, progress, percent),
        ("device", layout.TRAIN_DEVICE_CELL, run.get("device", ""), value),
    ):
        r, c = xl_cell_to_rowcol(cell)
        ws.write(r, c - 1, name, label)
        ws.write(r, c, content, fmt)

    # Model summary
    r, c = xl_cell_to_rowcol(layout.TRAIN_SUMMARY_HEADER_CELL)
    ws.write(r - 1, c, "Model summary", section)
    ws.write_row(r, c, SUMMARY_HEADER, header)
    summary = summary_rows(run_dir, config.get("model"))
    for k, cells in enumerate(summary, start=1):
        ws.write_row(r + k, c, cells)
    if summary:
        ws.write_row(r + len(summary) + 1, c, ("Total", "", int(run.get("n_params", 0))), section)

    # Metrics table and native charts bound to it
    r, c = xl_cell_to_rowcol(layout.TRAIN_METRICS_HEADER_CELL)
    ws.write(r - 1, c, "Metrics, one row per epoch", section)
    ws.write_row(r, c, METRIC_COLUMNS, header)
    for k, row in enumerate(rows[: layout.TRAIN_METRICS_MAX_ROWS], start=1):
        for j, name in enumerate(METRIC_COLUMNS):
            ws.write_number(r + k, c + j, float(row[name]), formats.get(name, number))
    insert_metric_charts(wb, ws, last_row=r + max(len(rows), 1))

    # The run's matplotlib charts as pictures, where the Train button puts them
    for name, path in RunDir(run_dir).charts().items():
        scale = _picture_scale(path)
        ws.insert_image(
            layout.TRAIN_PICTURE_CELLS[name],
            str(path),
            {"x_scale": scale, "y_scale": scale, "object_position": 1, "description": name},
        )
    ws.set_landscape()
    ws.fit_to_pages(1, 0)
    ws.activate()
    wb.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m excel_addin.report",
        description="Write a training run (metrics, summary, charts) as a Train-sheet workbook; no Excel.",
    )
    parser.add_argument("run_dir", help="the run's output folder (has metrics.json, model.pt, *.png)")
    parser.add_argument("--out", help="the workbook to write (default: RUN_DIR/report.xlsx)")
    args = parser.parse_args(argv)
    try:
        out = build_report(args.run_dir, args.out)
    except ReportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
