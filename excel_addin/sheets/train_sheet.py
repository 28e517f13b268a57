"""The Train sheet, written by one piece of code for its three writers.

* the template (``train_sheet(TrainView(), buttons=True)``): settings from the preset table, the Custom
  model table (gradsheet's default design) with its live ``=MODEL_SUMMARY``, an empty run, the native
  charts waiting for metric rows;
* the headless report (``excel_addin.report``): a finished run's settings, status, summary (a custom
  run's stages in the Custom model table), metric rows and PNG charts, as a description rendered to a
  file;
* the live sheet sink (``excel_addin.sheets.sheet_sink``): the same cells, written into an open Book while a
  run goes (``status_cells``, ``summary_block``, ``metric_cells``, ``chart_picture``, the status texts).

So which cell holds what, and how a run's state becomes cell values, is decided here and nowhere else.
The settings rows, labels, notes and dropdowns come from ``ml.config`` (plus
``layout.TRAIN_EXTRA_SETTINGS``). Presets: a small table lists each preset's values (``ml.config
.preset_values``) beside the settings; the preset cell is a dropdown, and every other setting cell of
the template holds a formula that looks its value up in the table by the chosen preset, so typing a value
over it overrides the preset.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from excel_addin import status_line
from excel_addin.cells import FUNCTION_NAMESPACE, MODEL_SUMMARY
from excel_addin.sheets import custom_model, layout, print_layout
from excel_addin.sheets.fallback import NEEDS_PYTHON, block_or_else, literal, or_else, text_block
from excel_addin.sheets.spec import (
    Axis,
    Button,
    Chart,
    DataBar,
    Picture,
    PrintSetup,
    SheetSpec,
    a1,
    a1_range,
    offset,
    ref,
)
from ml import config
from ml.stages import MAX_CONVS_PER_STAGE, MAX_STAGE_CHANNELS, MAX_STAGES, STAGE_FLAGS, Stage
from ml.summary_table import SUMMARY_HEADER, LayerRow, summary_table
from ml.variants import DEFAULT_STAGES

SUMMARY_WIDTHS = (22, 16, 9, 7, 7)  # characters, one per SUMMARY_HEADER column
# Each PNG chart fits a box of this size in points (its anchor cell is 20 rows below the one above).
PICTURE_BOX = (380.0, 285.0)
METRIC_STYLES = {
    "epoch": "int",
    "train_acc": "metric_percent",
    "test_acc": "metric_percent",
    "lr": "small",
    "seconds": "seconds",
}  # the others: "metric"
# chart name -> (title, y-axis title, y number format, y-axis bounds); series: layout.TRAIN_CHART_SERIES
CHART_SPECS = {
    "loss": ("Loss by epoch", "loss", "0.00", {"minimum": 0}),
    "accuracy": ("Accuracy by epoch", "accuracy", "0%", {"maximum": 1}),
}
CHART_SIZE = (480 * 1.05 * 0.75, 288 * 1.2 * 0.75)  # points
BUTTONS = {"Train": "Train", "StopTraining": "Stop"}  # macro -> caption
# the metrics table's columns, which the settings' labels (B) and values (C) and the presets table share
# (E:H also hold the title, which must end before the printed page does, at column I)
COLUMN_WIDTHS = {"A": 9, "B": 16, "C": 14, "D": 11, "E": 13, "F": 13, "G": 13, "H": 13}


@dataclass(frozen=True)
class TrainView:
    """What the Train sheet shows of a run: the defaults are the template's (no run yet).

    ``settings`` None: the preset formulas (the template); else each setting's value as run.
    ``custom_stages``: the template's starting design (gradsheet's default), a custom run's stages, or
    None for a run of another model (no Custom model table).
    """

    settings: Mapping[str, Any] | None = None
    status: str = status_line.NOT_STARTED_TEXT
    progress: float = 0.0
    device: str = ""
    summary: Sequence[LayerRow] = ()
    n_params: int | None = None
    metrics: Sequence[Mapping[str, Any]] = ()
    pictures: Sequence[Picture] = ()
    custom_stages: Sequence[Stage] | None = DEFAULT_STAGES  # the Custom model table's (None: no table)
    title: str = "Train a CNN on MNIST's handwritten digits"
    subtitle: str = "Pick a preset or fill in the yellow settings, then press Train."


# ---- which cell holds what ---------------------------------------------------------------------------


def setting_label(name: str) -> str:
    """A Train-sheet setting's label: the training spec's, or the sheet's own for its extra settings."""
    extra = layout.TRAIN_EXTRA_SETTINGS.get(name)
    return extra[0] if extra else config.label_of(name)


PRESET_NOTE = "The preset's value (its column on the right) unless you type your own."


def setting_note(name: str) -> str:
    """A setting cell's note: what it means (from ml.config), and where its value comes from."""
    extra = layout.TRAIN_EXTRA_SETTINGS.get(name)
    if extra:
        return extra[1]
    help_text = config.spec_of(name).help
    return f"{help_text}. {PRESET_NOTE}" if name in preset_dependent() else help_text


def preset_dependent() -> tuple[str, ...]:
    """The settings a preset fills (the table's rows): every sheet setting but the preset itself."""
    return tuple(name for name in config.sheet_settings() if name != "preset")


def preset_columns() -> dict[str, int]:
    """Preset name -> its 0-based column in the presets table."""
    first = ref(f"{layout.TRAIN_PRESETS_FIRST_COLUMN}1")[1]
    return {name: first + k for k, name in enumerate(config.PRESETS)}


def preset_formula(name: str) -> str:
    """The template's formula of a setting: its value in the chosen preset's column of the table."""
    row = ref(layout.TRAIN_SETTING_CELLS[name])[0]
    names_row = ref(layout.TRAIN_SETTING_CELLS["preset"])[0]
    cols = list(preset_columns().values())
    values = a1_range((row, cols[0]), (row, cols[-1]), absolute=True)
    names = a1_range((names_row, cols[0]), (names_row, cols[-1]), absolute=True)
    preset = a1(layout.TRAIN_SETTING_CELLS["preset"], absolute=True)
    return f"=INDEX({values},MATCH({preset},{names},0))"


def status_cells(text: str, progress: float | None = None) -> dict[str, Any]:
    """The status line and (unless None) the progress, 0..1."""
    cells: dict[str, Any] = {layout.TRAIN_STATUS_CELL: text}
    if progress is not None:
        cells[layout.TRAIN_PROGRESS_CELL] = round(min(max(progress, 0.0), 1.0), 4)
    return cells


def summary_block(summary: Sequence[Any], n_params: int | None) -> list[list[Any]]:
    """The summary from its header down: ``summary_table``, then blank rows to the end of the reserved
    area (so a shorter model's summary leaves nothing of a longer one)."""
    rows = summary_table(summary, n_params)
    rows += [[None] * len(SUMMARY_HEADER)] * max(0, layout.TRAIN_SUMMARY_MAX_ROWS + 1 - len(rows))
    return rows


def metric_cells(row: Mapping[str, Any]) -> list[Any]:
    """One epoch's metrics in the sheet's column order; a missing or non-finite value is an empty cell
    (metrics.json writes NaN as null)."""
    cells = []
    for name in layout.TRAIN_METRIC_COLUMNS:
        value = row.get(name)
        number = float(value) if isinstance(value, int | float) else math.nan
        cells.append(None if not math.isfinite(number) else int(number) if name == "epoch" else number)
    return cells


def metric_row_cell(epoch: int) -> str:
    """The first cell of an epoch's metrics row (epoch 1 right under the header)."""
    return offset(layout.TRAIN_METRICS_HEADER_CELL, rows=epoch)


def picture_size(path: str | os.PathLike, box: tuple[float, float] = PICTURE_BOX) -> tuple[float, float]:
    """Width and height in points that fit the PNG into ``box``, keeping its aspect ratio."""
    from PIL import Image

    with Image.open(path) as image:
        width, height = image.size
    scale = min(box[0] / width, box[1] / height)
    return round(width * scale, 1), round(height * scale, 1)


def chart_picture(name: str, path: str | os.PathLike) -> Picture:
    """A run's PNG chart as the sheet shows it: at its anchor cell, fitted into the picture box."""
    width, height = picture_size(path)
    return Picture(name, ref(layout.TRAIN_PICTURE_CELLS[name]), Path(path), width, height)


# ---- the whole sheet ---------------------------------------------------------------------------------


ADDIN_SUBTITLE = "Pick a preset or fill in the yellow settings, then press Train in the gradsheet task pane."


# what each live cell of the add-in's sheet shows where the add-in does not run (``fallback``): a single
# value each, so a table's one-cell message stays one cell in Excel
STREAM_FALLBACKS = {
    "status": NEEDS_PYTHON,
    "progress": 0,
    "device": "",
    "metrics": layout.TRAIN_METRIC_COLUMNS[0],
    "summary": SUMMARY_HEADER[0],
}


def progress_formula(part: str) -> str:
    """The add-in's live view of this workbook's run: ``=GRADSHEET.TRAIN_PROGRESS(GRADSHEET_ID,"status")``
    (a streaming function: the server pushes each change into the cell), with its fallback."""
    call = f'{FUNCTION_NAMESPACE}.TRAIN_PROGRESS({layout.WORKBOOK_ID_NAME},"{part}")'
    return "=" + or_else(call, literal(STREAM_FALLBACKS[part]))


def train_sheet(view: TrainView, buttons: bool, stream: bool = False) -> SheetSpec:
    """The Train sheet showing ``view``; ``buttons``: the Train/Stop macro buttons (template only);
    ``stream``: the add-in's sheet, whose status, progress, device and metrics table are live
    TRAIN_PROGRESS formulas (its training runs on the server, which cannot write into the sheet)."""
    sheet = SheetSpec(layout.TRAIN_SHEET)
    for col, width in COLUMN_WIDTHS.items():
        sheet.column_width(col, width)
    if buttons:
        sheet.row_height(0, 26)
        for macro, cell in layout.TRAIN_BUTTON_CELLS.items():
            sheet.buttons.append(Button(ref(cell), macro, BUTTONS[macro], 110, 26))
    sheet.write(layout.TRAIN_TITLE_CELL, view.title, "title")
    sheet.write(layout.TRAIN_SUBTITLE_CELL, view.subtitle, "subtitle")
    _settings(sheet, view.settings)
    _presets_table(sheet)
    _run(sheet, view)
    _custom_model(sheet, view)
    _summary(sheet, view)
    _metrics(sheet, view)
    if stream:
        _stream(sheet, view)
    _charts(sheet, len(view.metrics))
    sheet.pictures.extend(view.pictures)
    sheet.printing = _printing(sheet, view)
    return sheet


def _printing(sheet: SheetSpec, view: TrainView) -> PrintSetup:
    """Three columns of pages (settings and metrics | custom model and summaries | charts and pictures),
    two bands (the charts' rows | the pictures' rows and the metrics below), printed band by band, through
    the last picture place or metrics row, whichever is lower."""
    places = [(ref(cell), *PICTURE_BOX) for cell in layout.TRAIN_PICTURE_CELLS.values()]
    drawn = print_layout.drawn_corner(replace(sheet, printing=PrintSetup(keep=places)))
    bottom, right = max(drawn[0], ref(metric_row_cell(len(view.metrics)))[0]), drawn[1]
    return PrintSetup(
        area=((0, 0), (bottom, right)),
        column_breaks=[
            ref(layout.TRAIN_CUSTOM_HEADER_CELL)[1],
            min(ref(c)[1] for c in layout.TRAIN_CHART_CELLS.values()),
        ],
        row_breaks=[min(ref(cell)[0] for cell in layout.TRAIN_PICTURE_CELLS.values())],
        across=True,
        keep=places,
    )


def _settings(sheet: SheetSpec, settings: Mapping[str, Any] | None) -> None:
    first_row = min(ref(cell)[0] for cell in layout.TRAIN_SETTING_CELLS.values())
    sheet.write_row((first_row - 1, 1), ("Settings", "value"), "section")
    dependent = preset_dependent()
    for name, cell in layout.TRAIN_SETTING_CELLS.items():
        row, col = ref(cell)
        sheet.write((row, col - 1), setting_label(name), "label")
        default = config.default_of(name) if name in config.FIELDS else ""
        style = _input_style(default)
        if settings is not None:
            sheet.write(cell, settings.get(name), style)
        elif name in dependent:
            standard = config.preset_values(config.default_of("preset"))[name]
            sheet.formula(cell, preset_formula(name), standard, style)
        else:
            sheet.write(cell, default if default != "" else None, style)
        sheet.note(cell, setting_note(name))
        choices = config.choices_of(name) if name in config.FIELDS else None
        if choices:
            sheet.validate_list(cell, choices)


def _input_style(default: Any) -> str:
    if isinstance(default, str):
        return "input_text"
    return "input" if isinstance(default, float) else "input_int"


def _presets_table(sheet: SheetSpec) -> None:
    """Each preset's value of every setting it fills, in that setting's row."""
    names_row = ref(layout.TRAIN_SETTING_CELLS["preset"])[0]
    columns = preset_columns()
    first_col = min(columns.values())
    sheet.write((names_row - 1, first_col), "Presets", "section")
    for preset, col in columns.items():
        sheet.write((names_row, col), preset, "preset_name")
        values = config.preset_values(preset)
        for name in preset_dependent():
            sheet.write((ref(layout.TRAIN_SETTING_CELLS[name])[0], col), values[name], "preset")


def _run(sheet: SheetSpec, view: TrainView) -> None:
    row, col = ref(layout.TRAIN_STATUS_CELL)
    sheet.write_row((row - 1, col - 1), ("Run", None), "section")
    cells = {**status_cells(view.status, view.progress), layout.TRAIN_DEVICE_CELL: view.device}
    styles = {layout.TRAIN_STATUS_CELL: "status", layout.TRAIN_PROGRESS_CELL: "percent"}
    for (cell, value), label in zip(cells.items(), ("status", "progress", "device"), strict=True):
        r, c = ref(cell)
        sheet.write((r, c - 1), label, "label")
        sheet.write(cell, None if value == "" else value, styles.get(cell, "text"))
    progress = ref(layout.TRAIN_PROGRESS_CELL)
    sheet.conditional_formats.append(DataBar(progress, progress, "#5B9BD5", 0, 1))


# ---- the custom model: a student's design as cells, and its layers live -------------------------------

CUSTOM_TITLE = "Custom model: design your own CNN (train it with model = custom)"
CUSTOM_RUN_TITLE = "Custom model: this run's stages"
CUSTOM_UNUSED_TITLE = "Custom model: not used (this run trained model {model!r})"
CUSTOM_NOTES = {
    "channels": "Stage {k}: the output channels of its 3x3 convolutions, one number per convolution, e.g. "
    f"8, 16 (1 to {MAX_STAGE_CHANNELS} each, at most {MAX_CONVS_PER_STAGE}). Leave the rows below your "
    "last stage empty. After each stage but the last: 2x2 max-pooling (the map halves).",
    "separable": "Stage {k}: yes = depthwise-separable convolutions (a 3x3 filter per channel, then a 1x1 "
    "mix across channels): far fewer parameters. Empty = no.",
    "dropout": "Stage {k}: channel dropout (Dropout2d) after the stage's pooling, 0 to below 1, e.g. 0.05. "
    "Empty = 0; unused in the last stage (no pooling after it).",
    "residual": "Stage {k}: yes = residual connections: each convolution that keeps its channel count (the "
    "second 16 of 16, 16) gets its input added back after its BatchNorm, as in ResNet. No parameters; lets "
    "a deeper stage train well. Empty = no.",
}
CUSTOM_STYLES = {
    "channels": "input_channels",
    "separable": "input_text",
    "dropout": "input",
    "residual": "input_text",
}
LIVE_SUMMARY_NOTE = (
    "MODEL_SUMMARY computes the custom model's layers from the table as you edit it, before training: "
    "output shape, parameters, jump (input pixels between neighbouring outputs) and receptive field (RF: "
    "the input square one output sees). A design that does not work shows #VALUE! and the reason."
)


def live_summary_formula(size: tuple[int, int]) -> str:
    """The Train sheet's =MODEL_SUMMARY of its Custom model table; where gradsheet's Python does not run, a
    block of ``size`` (the file's spill) with the summary's header and ``NEEDS_PYTHON`` under it."""
    call = f"MODEL_SUMMARY({layout.TRAIN_CUSTOM_CELLS})"
    return "=" + block_or_else(call, text_block((SUMMARY_HEADER, (NEEDS_PYTHON,)), size))


def _custom_model(sheet: SheetSpec, view: TrainView) -> None:
    """The Custom model table: yellow inputs and their live summary below (the template), or a custom
    run's stages (the report); for a run of another model, only a title saying so (the block would
    otherwise read as something missing)."""
    row, col = ref(layout.TRAIN_CUSTOM_HEADER_CELL)
    if view.custom_stages is None:
        model = (view.settings or {}).get("model")
        sheet.write((row - 1, col), CUSTOM_UNUSED_TITLE.format(model=model), "section")
        return
    live = view.settings is None
    for k, width in enumerate(SUMMARY_WIDTHS):
        sheet.column_width(col + k, width)
    sheet.write((row - 1, col), CUSTOM_TITLE if live else CUSTOM_RUN_TITLE, "section")
    sheet.write_row((row, col), ("stage", *custom_model.COLUMNS), "header")
    styles = [CUSTOM_STYLES[name] if live else "preset" for name in custom_model.COLUMNS]
    for k, cells in enumerate(custom_model.table_of(view.custom_stages), start=1):
        sheet.write((row + k, col), k, "int")
        sheet.write_row((row + k, col + 1), cells, styles)
    if live:
        _custom_inputs(sheet)
        _live_summary(sheet, view.custom_stages)


def _custom_inputs(sheet: SheetSpec) -> None:
    """Each input cell's note, and the yes/no columns' dropdowns."""
    row, col = ref(layout.TRAIN_CUSTOM_HEADER_CELL)
    for k in range(1, MAX_STAGES + 1):
        for j, name in enumerate(custom_model.COLUMNS, start=1):
            sheet.note((row + k, col + j), CUSTOM_NOTES[name].format(k=k))
            if name in STAGE_FLAGS:
                sheet.validate_list((row + k, col + j), custom_model.YES_NO)


def _live_summary(sheet: SheetSpec, stages: Sequence[Stage]) -> None:
    """=MODEL_SUMMARY of the table, caching its result for ``stages`` (what the sheet shows before it
    recalculates); a dynamic array, so it spills as long as the student's design needs."""
    row, col = ref(layout.TRAIN_CUSTOM_SUMMARY_CELL)
    sheet.write((row - 1, col), "Its layers, live as you edit the table (MODEL_SUMMARY)", "section")
    table = MODEL_SUMMARY(custom_model.table_of(stages))
    for i, cells in enumerate(table):  # the result's header row styled as one, the rest plain
        for j in range(len(cells)):
            sheet.write((row + i, col + j), None, "live_head" if i == 0 else "text")
    spill = (len(table), len(table[0]))
    sheet.formula((row, col), live_summary_formula(spill), table, "live_header", spill=spill, dynamic=True)
    sheet.note((row, col), LIVE_SUMMARY_NOTE)


def _summary(sheet: SheetSpec, view: TrainView) -> None:
    row, col = ref(layout.TRAIN_SUMMARY_HEADER_CELL)
    for k, width in enumerate(SUMMARY_WIDTHS):
        sheet.column_width(col + k, width)
    waiting = " (filled in when a run starts)" if view.settings is None else ""
    sheet.write((row - 1, col), f"Model summary{waiting}", "section")
    block = summary_block(view.summary, view.n_params)
    sheet.write_row((row, col), block[0], "header")
    for k, cells in enumerate(block[1:], start=1):
        style = "total" if cells[0] == "Total" else None
        sheet.write_row((row + k, col), cells, style)


def _metrics(sheet: SheetSpec, view: TrainView) -> None:
    header = layout.TRAIN_METRICS_HEADER_CELL
    row, col = ref(header)
    waiting = " (filled in during a run)" if view.settings is None else ""
    sheet.write((row - 1, col), f"Metrics, one row per epoch{waiting}", "section")
    rows = view.metrics
    sheet.write_row(header, layout.TRAIN_METRIC_COLUMNS, "header")
    styles = [METRIC_STYLES.get(name, "metric") for name in layout.TRAIN_METRIC_COLUMNS]
    by_epoch = {int(r["epoch"]): metric_cells(r) for r in rows if isinstance(r.get("epoch"), int | float)}
    for epoch in range(1, layout.TRAIN_METRICS_MAX_ROWS + 1):
        values = by_epoch.get(epoch, [None] * len(styles))
        sheet.write_row(metric_row_cell(epoch), values, styles)


def _stream(sheet: SheetSpec, view: TrainView) -> None:
    """The run's cells as live formulas; the metrics formula spills its header and rows where the
    table's are, so the native charts bound to that block follow the run."""
    cells = {
        layout.TRAIN_STATUS_CELL: ("status", view.status),
        layout.TRAIN_PROGRESS_CELL: ("progress", view.progress),
        layout.TRAIN_DEVICE_CELL: ("device", view.device),
    }
    for cell, (part, cached) in cells.items():
        sheet.formula(cell, progress_formula(part), cached, sheet.cells[ref(cell)].style)
    tables = {
        layout.TRAIN_METRICS_HEADER_CELL: ("metrics", layout.TRAIN_METRIC_COLUMNS),
        layout.TRAIN_SUMMARY_HEADER_CELL: ("summary", SUMMARY_HEADER),
    }
    for header, (part, columns) in tables.items():
        sheet.formula(header, progress_formula(part), columns[0], sheet.cells[ref(header)].style)
        row, col = ref(header)
        for j in range(1, len(columns)):  # the spill's place: no constants in its way
            sheet.write((row, col + j), None, sheet.cells[(row, col + j)].style)


def _charts(sheet: SheetSpec, epochs: int) -> None:
    """The native Loss and Accuracy charts, bound to the whole reserved metrics area (rows fill in).
    With ``epochs`` rows known, the epoch axis ticks whole epochs (spreadsheets pick halves for a few)."""
    ticks = max(1, math.ceil(epochs / 10)) if epochs else None
    header, first_col = ref(layout.TRAIN_METRICS_HEADER_CELL)
    col = {name: first_col + j for j, name in enumerate(layout.TRAIN_METRIC_COLUMNS)}
    for name, anchor in layout.TRAIN_CHART_CELLS.items():
        title, axis, number_format, bounds = CHART_SPECS[name]
        series = layout.TRAIN_CHART_SERIES[name]
        assert col[series[-1]] - col[series[0]] == len(series) - 1, f"{name}: its metrics are not adjacent"
        sheet.charts.append(
            Chart(
                name=f"{name}_by_epoch",
                anchor=ref(anchor),
                width=CHART_SIZE[0],
                height=CHART_SIZE[1],
                title=title,
                data_sheet=layout.TRAIN_SHEET,
                header_row=header,
                last_row=header + layout.TRAIN_METRICS_MAX_ROWS,
                x_col=col["epoch"],
                y_first=col[series[0]],
                y_last=col[series[-1]],
                x_axis=Axis("epoch", minimum=0, major_unit=ticks),
                y_axis=Axis(axis, number_format=number_format, **bounds),
                markers=True,
                legend="bottom",
                title_size=12,
            )
        )
