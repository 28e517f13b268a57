"""A training run as a workbook, without Excel: ``python -m excel_addin.report RUN_DIR [--out FILE.xlsx]``.

Writes the Train sheet the Train button fills in Excel (the same writer, ``excel_addin.sheets.train_sheet``):
the settings, the final status, the model summary (and a custom model's stages as its table), the metrics
table with native charts bound to it, and the run's PNG charts as pictures. Everything comes from the run
folder's own files, found by name in the folder (``ml.run_dir.RunDir``), never through paths stored at
training time, so a moved or copied run folder makes the same report; a run trained headless (``python -m
ml.train``) or on CI can be opened in any spreadsheet program.

A broken run folder is named, not a traceback: a missing or malformed metrics.json or an unwritable
output fails with a message (exit code 2); NaN metrics become empty cells, an unknown model leaves the
summary empty and an unreadable PNG is left out, each with a warning.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image
from xlsxwriter.exceptions import XlsxWriterException

from excel_addin.sheets import layout
from excel_addin.sheets.spec import Picture
from excel_addin.sheets.train_sheet import TrainView, chart_picture, train_sheet
from excel_addin.sheets.xlsx_render import write_workbook
from excel_addin.status_line import end_status, unfinished_status
from ml.cli import Parser
from ml.events import RunEnded
from ml.run_dir import RunDir, atomic_path
from ml.spec import ModelSpecError
from ml.stages import Stage, parse_stages
from ml.summary_table import LayerRow
from ml.variants import CUSTOM

Warn = Callable[[str], None]


class ReportError(ValueError):
    """The run folder cannot make a report, or the report cannot be written (names the file)."""


def print_warning(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def load_record(run: RunDir) -> dict[str, Any]:
    """The run's record from metrics.json: {"run": {...}, "epochs": [rows with a numeric epoch]}."""
    path = run.metrics_json
    if not path.is_file():
        raise ReportError(
            f"no training run in {run.path}: {path.name} is missing (train with python -m ml.train)"
        )
    record = run.read_record()
    if record is None:
        raise ReportError(f"{path} is not a metrics file of ml.train (not JSON with 'run' and 'epochs')")
    for k, row in enumerate(record["epochs"], start=1):
        epoch = row.get("epoch") if isinstance(row, dict) else None
        if isinstance(epoch, bool) or not isinstance(epoch, int | float):
            raise ReportError(f"{path} is not a metrics file of ml.train (epoch row {k} has no epoch number)")
    return record


def model_summary(run: RunDir, model: Any, warn: Warn) -> list[LayerRow]:
    """The layers of the run's model: the spec its checkpoint stores, else the variant its settings
    name; [] (with a warning) when neither is usable."""
    from ml.checkpoint import CheckpointError, load_checkpoint, spec_of
    from ml.summary import layer_table
    from ml.variants import VARIANTS

    try:
        spec = spec_of(load_checkpoint(run.checkpoint), str(run.checkpoint))
    except (OSError, CheckpointError):
        spec = VARIANTS.get(model) if isinstance(model, str) else None
    if spec is None:
        warn(
            f"no model summary: {run.checkpoint.name} is missing or unreadable and {model!r} is not a model "
            f"variant ({', '.join(VARIANTS)})"
        )
        return []
    try:
        return layer_table(spec)
    except Exception as error:  # noqa: BLE001 - a spec that does not build: the report goes on without it
        warn(f"no model summary: the model of {run.path} does not build ({error})")
        return []


def custom_stages(config: dict[str, Any], warn: Warn) -> list[Stage] | None:
    """A custom run's stages, for the sheet's Custom model table; None for another model (no table), or
    (with a warning) when the recorded stages do not parse."""
    if config.get("model") != CUSTOM:
        return None
    try:
        return parse_stages(config.get("stages"))
    except ModelSpecError as error:
        warn(f"no custom model table: the run's stages do not parse ({error})")
        return None


def run_status(record: dict[str, Any], run: RunDir, epochs_done: int) -> tuple[str, float]:
    """The status line and progress: the run's end as recorded (files: this folder), or unfinished."""
    info = record["run"]
    end = info.get("end")
    total = info.get("epochs") if isinstance(info.get("epochs"), int) else epochs_done
    if not isinstance(end, dict):
        return unfinished_status(epochs_done, total)
    known = {f.name for f in dataclasses.fields(RunEnded)}
    try:
        ended = RunEnded(**{**{k: v for k, v in end.items() if k in known}, "out_dir": str(run.path)})
        text, progress = end_status(ended)
    except (TypeError, ValueError):
        return unfinished_status(epochs_done, total)
    return text, progress if progress is not None else epochs_done / max(total, 1)


def readable_pictures(run: RunDir, warn: Warn) -> list[Picture]:
    """The run's PNG charts that really are images; any other is left out with a warning."""
    pictures = []
    for name, path in run.charts().items():
        try:
            with Image.open(path) as image:
                image.load()
            pictures.append(chart_picture(name, path))
        except Exception as error:  # noqa: BLE001 - PIL raises many types for a broken file
            warn(f"left out {path}: not a readable PNG ({type(error).__name__}: {error})")
    return pictures


def _cell_value(value: Any) -> Any:
    """A setting as a cell holds it: numbers, text and flags as they are, anything else as text."""
    return value if value is None or isinstance(value, bool | int | float | str) else str(value)


def report_view(run_dir: str | Path, warn: Warn = print_warning) -> TrainView:
    """What the report's Train sheet shows of the run in ``run_dir``."""
    run = RunDir(run_dir)
    record = load_record(run)
    info, rows = record["run"], record["epochs"]
    config = info.get("config") if isinstance(info.get("config"), dict) else {}
    settings = {name: _cell_value(config.get(name)) for name in layout.TRAIN_SETTING_CELLS}
    settings["out_dir"] = str(run.path)  # where the files are now, not where training put them
    settings["model_path"] = str(run.checkpoint) if run.checkpoint.is_file() else None
    status, progress = run_status(record, run, len(rows))
    summary = model_summary(run, config.get("model"), warn)
    n_params = info.get("n_params")
    stages = custom_stages(config, warn)
    return TrainView(
        settings=settings,
        status=status,
        progress=progress,
        device=_cell_value(info.get("device")) or "",
        summary=summary,
        n_params=n_params if isinstance(n_params, int) else sum(int(r.params) for r in summary),
        metrics=rows,
        pictures=readable_pictures(run, warn),
        custom_stages=stages,
        title=f"Training report: {config.get('model', '?')} CNN on MNIST",
        subtitle=f"From the run folder {run.path} (python -m excel_addin.report)",
    )


def build_report(run_dir: str | Path, out: str | Path | None = None, warn: Warn = print_warning) -> Path:
    """Write the report workbook (default RUN_DIR/report.xlsx) and return its path."""
    view = report_view(run_dir, warn)
    out = Path(out) if out else RunDir(run_dir).report
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(out) as tmp:  # a failed write leaves no half-written report
            write_workbook([train_sheet(view, buttons=False)], tmp, active=layout.TRAIN_SHEET)
    except (OSError, XlsxWriterException) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise ReportError(f"cannot write the report {out}: {reason}") from None
    return out


def build_parser() -> Parser:
    parser = Parser(
        prog="python -m excel_addin.report",
        description="Write a training run (metrics, summary, charts) as a Train-sheet workbook; no Excel.",
    )
    parser.add_argument(
        "run_dir", metavar="RUN_DIR", help="the run's output folder (has metrics.json, model.pt, *.png)"
    )
    parser.add_argument("--out", metavar="FILE", help="the workbook to write (default: RUN_DIR/report.xlsx)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        out = build_report(args.run_dir, args.out)
    except ReportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
