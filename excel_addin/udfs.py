"""Excel cell functions (xlwings UDFs). Each one validates its cells, converts them, and calls ``ml``.

A docstring here is the function's help in Excel's Insert Function dialog, and each ``@xw.arg`` doc is the
help of one argument. Bad input never shows a traceback: the cell reads "#VALUE! <what is wrong>".
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import xlwings as xw

from ml import backprop
from ml.run_dir import DEFAULT_RUN_DIR, RunDir

ERROR_PREFIX = "#VALUE! "

_LR_DOC = "Learning rate: a positive number, e.g. 0.5."
_INPUTS_DOC = "Optional. Two cells: inputs i1, i2 (default 0.05, 0.1)."
_TARGETS_DOC = "Optional. Two cells: targets t1, t2 (default 0.5, 0.5)."
_WEIGHTS_DOC = "Optional. Eight cells: initial weights w1..w8 (default 0.15 .. 0.55)."
_BIASES_DOC = "Optional. Two cells: fixed hidden and output biases b1, b2 (default 0, 0)."
_OUTPUT_DOC = 'Optional. Output activation: "sigmoid" (squared error, default) or "softmax" (cross-entropy).'


def excel_error(error: Exception) -> str:
    """The text a cell shows for bad input: an Excel-style error tag and a readable reason."""
    return f"{ERROR_PREFIX}{error}"


def _in_cell(compute: Callable[[], Any], spill: bool = False) -> Any:
    """Run a cell's computation; bad input becomes a readable message instead of a traceback."""
    try:
        return compute()
    except (ValueError, TypeError, OSError) as error:
        return [[excel_error(error)]] if spill else excel_error(error)


def _cells(value: Any, name: str) -> list[Any] | None:
    """A range's values as one flat list (row, column or block), or None when the argument is omitted."""
    if value is None:
        return None
    if not isinstance(value, list | tuple):
        value = [value]
    flat: list[Any] = []
    for item in value:
        flat.extend(item if isinstance(item, list | tuple) else [item])
    if any(item is None or item == "" for item in flat):
        raise ValueError(f"{name}: a cell is empty ({len(flat)} cells given)")
    return flat


def finite_cells(values, table, lr) -> list[float | str]:
    """Numbers as cell values; a value that overflowed reads as the message saying where and why."""
    values = [float(v) for v in values]
    if all(math.isfinite(v) for v in values):
        return values
    message = excel_error(ValueError(backprop.overflow_message(table, backprop.validate_rate(lr))))
    return [v if math.isfinite(v) else message for v in values]


def network_from_cells(inputs=None, targets=None, weights=None, biases=None, output=None) -> backprop.Network:
    """A ``backprop.Network`` from optional cell values; whatever is omitted keeps its default."""
    defaults = backprop.Network()
    return backprop.Network(
        inputs=_cells(inputs, "inputs") or defaults.inputs,
        targets=_cells(targets, "targets") or defaults.targets,
        weights=_cells(weights, "weights") or defaults.weights,
        biases=_cells(biases, "biases") or defaults.biases,
        output=defaults.output if output in (None, "") else str(output),
    )


@xw.func
@xw.arg("lr", doc=_LR_DOC)
@xw.arg("epoch", doc="Number of weight updates: a whole number from 0 (the initial weights).")
@xw.arg("inputs", doc=_INPUTS_DOC)
@xw.arg("targets", doc=_TARGETS_DOC)
@xw.arg("weights", doc=_WEIGHTS_DOC)
@xw.arg("biases", doc=_BIASES_DOC)
@xw.arg("output", doc=_OUTPUT_DOC)
def BACKPROP_LOSS(lr, epoch, inputs=None, targets=None, weights=None, biases=None, output=None):
    """E_total of the 2-2-2 network after `epoch` weight updates at learning rate `lr`."""
    return _in_cell(
        lambda: backprop.loss_at(lr, epoch, network_from_cells(inputs, targets, weights, biases, output))
    )


@xw.func
@xw.arg("lr", doc=_LR_DOC)
@xw.arg("epochs", doc="Last epoch of the curve: a whole number; the column has epochs + 1 rows.")
@xw.arg("inputs", doc=_INPUTS_DOC)
@xw.arg("targets", doc=_TARGETS_DOC)
@xw.arg("weights", doc=_WEIGHTS_DOC)
@xw.arg("biases", doc=_BIASES_DOC)
@xw.arg("output", doc=_OUTPUT_DOC)
def BACKPROP_CURVE(lr, epochs, inputs=None, targets=None, weights=None, biases=None, output=None):
    """A column of E_total for epochs 0..epochs at learning rate `lr` (spills)."""

    def compute():
        network = network_from_cells(inputs, targets, weights, biases, output)
        last = backprop.validate_epochs(epochs)
        table = backprop.longest_cached_trajectory(lr, last, network)[: last + 1]
        losses = table[:, backprop.COLUMNS.index("E_total")]
        return [[cell] for cell in finite_cells(losses, table, lr)]

    return _in_cell(compute, spill=True)


@xw.func
@xw.arg("lr", doc=_LR_DOC)
@xw.arg("epochs", doc="Last epoch of the table: a whole number; the table has epochs + 1 rows of data.")
@xw.arg("inputs", doc=_INPUTS_DOC)
@xw.arg("targets", doc=_TARGETS_DOC)
@xw.arg("weights", doc=_WEIGHTS_DOC)
@xw.arg("biases", doc=_BIASES_DOC)
@xw.arg("output", doc=_OUTPUT_DOC)
def BACKPROP_TABLE(lr, epochs, inputs=None, targets=None, weights=None, biases=None, output=None):
    """The per-epoch table (weights, h1 .. E_total, dE/dw1..8) with a header row, at rate `lr` (spills)."""

    def compute():
        network = network_from_cells(inputs, targets, weights, biases, output)
        last = backprop.validate_epochs(epochs)
        table = backprop.longest_cached_trajectory(lr, last, network)[: last + 1]
        rows = [[int(row[0]), *finite_cells(row[1:], table, lr)] for row in table]
        return [list(backprop.COLUMNS), *rows]

    return _in_cell(compute, spill=True)


# ---- Classify: the trained CNN on image files ------------------------------------------------------

MODEL_ENV = "GRADSHEET_MODEL"  # environment variable or xlwings.conf key naming the model file

_PATH_DOC = "Image file (PNG, JPG, ...) of one digit: a full path, or relative to this workbook's folder."
_MODEL_DOC = (
    "Optional. Trained model file (model.pt). Default: GRADSHEET_MODEL (environment or xlwings.conf), "
    "else the run folder's model.pt, else the model shipped with gradsheet."
)
_OUT_DIR_DOC = (
    f"Optional. The Train sheet's output folder, whose model.pt is used when model_path is empty "
    f"(default {DEFAULT_RUN_DIR}, relative to this workbook's folder)."
)


def _book_folder(caller: Any) -> Path | None:
    """The calling workbook's folder (xlwings passes the calling cell as ``caller`` on Windows)."""
    try:
        fullname = Path(str(caller.sheet.book.fullname))
    except Exception:  # noqa: BLE001 - no caller (tests, macOS) or an unsaved workbook
        return None
    return fullname.parent if fullname.is_absolute() else None


def _resolve(path: Any, what: str, folder: Path | None) -> Path:
    if path is None or str(path).strip() == "":
        raise ValueError(f"{what} is empty: give the path of a file")
    resolved = Path(str(path).strip().strip('"')).expanduser()
    if not resolved.is_absolute() and folder is not None:
        resolved = folder / resolved
    return resolved


def _user_config_model() -> str | None:
    """GRADSHEET_MODEL from the user's xlwings.conf, read again only when the file changes.

    Every CLASSIFY_* cell asks, so a sheet of them would otherwise re-read the file once per cell.
    """
    conf = Path(xw.USER_CONFIG_FILE)
    try:
        stat = conf.stat()
    except OSError:
        return None
    return _read_config_model(str(conf), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4)
def _read_config_model(_path: str, _mtime_ns: int, _size: int) -> str | None:
    """The file's GRADSHEET_MODEL (the arguments are the cache key: the file and its version)."""
    from xlwings.utils import read_user_config

    return read_user_config().get(MODEL_ENV.lower())


def model_location(model_path: Any = None, folder: Path | None = None, out_dir: Any = None) -> Path:
    """Which model a CLASSIFY_* cell uses: the argument, else GRADSHEET_MODEL from the environment or the
    user's xlwings.conf, else the model of the run folder ``out_dir`` (the Train sheet's output folder,
    relative to the workbook), else the model shipped with the package."""
    if model_path not in (None, ""):
        return _resolve(model_path, "model_path", folder)
    configured = os.environ.get(MODEL_ENV) or _user_config_model()
    if configured:
        return _resolve(configured, MODEL_ENV, folder)
    run_dir = _resolve(DEFAULT_RUN_DIR if out_dir in (None, "") else out_dir, "out_dir", folder)
    checkpoint = RunDir(run_dir).checkpoint
    if checkpoint.is_file():
        return checkpoint
    from ml.predict import shipped_model_path

    return shipped_model_path()


def classify(path: Any, model_path: Any = None, out_dir: Any = None, caller: Any = None):
    """The ``ml.predict.Prediction`` for an image cell (model loaded once per file version, then reused)."""
    from ml.predict import load_classifier

    folder = _book_folder(caller)
    image = _resolve(path, "image path", folder)
    return load_classifier(model_location(model_path, folder, out_dir)).predict(image)


@xw.func
@xw.arg("path", doc=_PATH_DOC)
@xw.arg("model_path", doc=_MODEL_DOC)
@xw.arg("out_dir", doc=_OUT_DIR_DOC)
def CLASSIFY_IMAGE(path, model_path=None, out_dir=None, caller=None):
    """The digit (0-9) that the trained CNN sees in an image file."""
    return _in_cell(lambda: classify(path, model_path, out_dir, caller).digit)


@xw.func
@xw.arg("path", doc=_PATH_DOC)
@xw.arg("model_path", doc=_MODEL_DOC)
@xw.arg("out_dir", doc=_OUT_DIR_DOC)
def CLASSIFY_PROBS(path, model_path=None, out_dir=None, caller=None):
    """The probabilities of the digits 0..9 for an image file, as a row of 10 cells (spills)."""
    return _in_cell(lambda: [list(classify(path, model_path, out_dir, caller).probs)], spill=True)
