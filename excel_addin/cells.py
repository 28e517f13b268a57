"""gradsheet's cell functions, written once for both faces of the add-in.

The classic xlwings UDFs of the workbook (``excel_addin.classic.udfs``) and the Office.js custom functions
of the add-in server (``excel_addin.server.functions``) are thin adapters over the functions here. Each
function's Excel name, help text (its one-line docstring, shown by Insert Function), the help of each
argument and its converter options (``cell_function``), and every "#VALUE! <reason>" message are stated
here and nowhere else. Each validates its cells, converts them and calls ``ml``; bad input never shows a
traceback.

A function that reads files takes a keyword-only ``files`` (``Files``): where relative paths start. The
faces fill it in (the workbook's folder, the server's folder); Excel never sees it.
"""

from __future__ import annotations

import functools
import inspect
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ml import backprop, values
from ml.run_dir import DEFAULT_RUN_DIR, RunDir, is_inside

ERROR_PREFIX = "#VALUE! "
FUNCTION_NAMESPACE = "GRADSHEET"  # the add-in's functions are =GRADSHEET.<NAME>(...) in Excel
MODEL_ENV = "GRADSHEET_MODEL"  # environment variable or xlwings.conf key naming the model file
PIXELS = 28  # CLASSIFY_PIXELS takes a PIXELS x PIXELS range


# ---- declaring a cell function --------------------------------------------------------------------


@dataclass(frozen=True)
class Argument:
    """One argument of a cell function: its help in Excel and its xlwings converter options."""

    doc: str
    options: dict[str, Any] = field(default_factory=dict)


def cell_function(**arguments: str | Argument) -> Callable[[Callable], Callable]:
    """Declare a cell function with the help of each of its arguments (in signature order).

    The help texts go to ``fn.cell_arguments``; a missing or extra one is an error at import time, so an
    argument can never reach Excel undocumented.
    """

    def declare(fn: Callable) -> Callable:
        names = [p.name for p in excel_parameters(fn)]
        if list(arguments) != names:
            raise TypeError(f"{fn.__name__}: documented {list(arguments)}, but the arguments are {names}")
        fn.cell_arguments = {
            name: arg if isinstance(arg, Argument) else Argument(arg) for name, arg in arguments.items()
        }
        return fn

    return declare


def excel_parameters(fn: Callable) -> list[inspect.Parameter]:
    """The parameters Excel passes (the positional ones; keyword-only ones are the faces' to fill)."""
    return [
        p
        for p in inspect.signature(fn).parameters.values()
        if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    ]


def reads_files(fn: Callable) -> bool:
    """Whether a cell function resolves paths, i.e. takes ``files``."""
    return "files" in inspect.signature(fn).parameters


def register(adapter: Callable, fn: Callable, func: Callable, arg: Callable) -> Callable:
    """Apply a face's xlwings decorators (``func``, ``arg``) to its adapter of ``fn``, with ``fn``'s
    argument help and options (the help text is the adapter's docstring, copied from ``fn``)."""
    for name, argument in fn.cell_arguments.items():
        adapter = arg(name, doc=argument.doc, **argument.options)(adapter)
    return func(adapter)


# ---- messages -------------------------------------------------------------------------------------


def excel_error(error: Exception) -> str:
    """The text a cell shows for bad input: an Excel-style error tag and a readable reason."""
    return f"{ERROR_PREFIX}{error}"


def in_cell(compute: Callable[[], Any], spill: bool = False) -> Any:
    """Run a cell's computation; bad input becomes a readable message instead of a traceback."""
    try:
        return compute()
    except (ValueError, TypeError, OSError) as error:
        return [[excel_error(error)]] if spill else excel_error(error)


# ---- Backprop: the 2-2-2 network -------------------------------------------------------------------

_LR_DOC = "Learning rate: a positive number, e.g. 0.5."
_DEFAULT_NETWORK = backprop.Network()  # the argument help states its values


def _listed(numbers: tuple[float, ...]) -> str:
    """Default numbers as the help shows them: all of a few, the first and last of many."""
    shown = [f"{n:g}" for n in numbers]
    return ", ".join(shown) if len(shown) <= 2 else f"{shown[0]} .. {shown[-1]}"


_NETWORK_DOCS = {
    "inputs": f"Optional. Two cells: inputs i1, i2 (default {_listed(_DEFAULT_NETWORK.inputs)}).",
    "targets": f"Optional. Two cells: targets t1, t2 (default {_listed(_DEFAULT_NETWORK.targets)}).",
    "weights": "Optional. Eight cells: initial weights w1..w8 "
    f"(default {_listed(_DEFAULT_NETWORK.weights)}).",
    "biases": "Optional. Two cells: fixed hidden and output biases b1, b2 "
    f"(default {_listed(_DEFAULT_NETWORK.biases)}).",
    "output": 'Optional. Output activation: "sigmoid" (squared error, default) or "softmax" (cross-entropy).',
}


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


# A cell computes at most this many epochs (0.2 s here), and spills at most SPILL_EPOCHS + 1 rows: more is
# surely a typo, and on a shared server a 40-byte request for seconds of CPU and megabytes of answer.
CELL_EPOCHS = 10_000
SPILL_EPOCHS = 1_000


def cell_epochs(epochs: Any, name: str, limit: int) -> int:
    """A whole number of epochs a cell may ask for (``backprop.validate_epochs``, at most ``limit``)."""
    last = backprop.validate_epochs(epochs, name)
    if last > limit:
        raise ValueError(f"{name} must be at most {limit:,} in a cell, got {last:,}")
    return last


def _trajectory(lr: Any, epochs: Any, network: backprop.Network) -> np.ndarray:
    """The per-epoch table for epochs 0..epochs (from the engine's cache), for a spilling cell."""
    last = cell_epochs(epochs, "epochs", SPILL_EPOCHS)
    return backprop.longest_cached_trajectory(lr, last, network)[: last + 1]


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


@cell_function(
    lr=_LR_DOC,
    epoch=f"Number of weight updates: a whole number from 0 (the initial weights) to {CELL_EPOCHS:,}.",
    **_NETWORK_DOCS,
)
def BACKPROP_LOSS(lr, epoch, inputs=None, targets=None, weights=None, biases=None, output=None):
    """E_total of the 2-2-2 network after `epoch` weight updates at learning rate `lr`."""
    return in_cell(
        lambda: backprop.loss_at(
            lr,
            cell_epochs(epoch, "epoch", CELL_EPOCHS),
            network_from_cells(inputs, targets, weights, biases, output),
        )
    )


@cell_function(
    lr=_LR_DOC,
    epochs=f"Last epoch of the curve: a whole number up to {SPILL_EPOCHS:,}; the column has epochs + 1 rows.",
    **_NETWORK_DOCS,
)
def BACKPROP_CURVE(lr, epochs, inputs=None, targets=None, weights=None, biases=None, output=None):
    """A column of E_total for epochs 0..epochs at learning rate `lr` (spills)."""

    def compute():
        table = _trajectory(lr, epochs, network_from_cells(inputs, targets, weights, biases, output))
        losses = table[:, backprop.COLUMNS.index("E_total")]
        return [[cell] for cell in finite_cells(losses, table, lr)]

    return in_cell(compute, spill=True)


@cell_function(
    lr=_LR_DOC,
    epochs=f"Last epoch of the table: a whole number up to {SPILL_EPOCHS:,}; it has epochs + 1 rows of data.",
    **_NETWORK_DOCS,
)
def BACKPROP_TABLE(lr, epochs, inputs=None, targets=None, weights=None, biases=None, output=None):
    """The per-epoch table (weights, h1 .. E_total, dE/dw1..8) with a header row, at rate `lr` (spills)."""

    def compute():
        table = _trajectory(lr, epochs, network_from_cells(inputs, targets, weights, biases, output))
        rows = [[int(row[0]), *finite_cells(row[1:], table, lr)] for row in table]
        return [list(backprop.COLUMNS), *rows]

    return in_cell(compute, spill=True)


# ---- Classify: the trained CNN ----------------------------------------------------------------------


@dataclass(frozen=True)
class Files:
    """Where a cell function's relative paths start (``folder``; None: the current folder) and whether
    paths must stay inside it (``confined``: a shared server's users get no other file of the server,
    their folder being ``folder``)."""

    folder: Path | None = None
    confined: bool = False

    def resolve(self, path: Any, what: str) -> Path:
        """The file a cell names, relative paths from ``folder``; ValueError for an empty or escaping one."""
        if path is None or str(path).strip() == "":
            raise ValueError(f"{what} is empty: give the path of a file")
        resolved = Path(str(path).strip().strip('"')).expanduser()
        if not resolved.is_absolute() and self.folder is not None:
            resolved = self.folder / resolved
        if self.confined and (self.folder is None or not is_inside(resolved, self.folder)):
            raise ValueError(f"{what} must be a path inside your folder on the server, got {path!r}")
        return resolved


HERE = Files()  # relative paths from the current folder, any path allowed


def book_folder(book: Any) -> Path | None:
    """The folder of a workbook's file: where its relative paths start. None for no workbook, or one that
    was never saved (relative paths then start in the current folder, as ``Files(None)`` resolves them)."""
    try:
        fullname = Path(str(book.fullname))
    except Exception:  # noqa: BLE001 - no workbook (None), or Excel cannot tell its name
        return None
    return fullname.parent if fullname.is_absolute() else None


_RELATIVE = "this workbook's folder (with the add-in server: the server's folder)"
_PATH_DOC = f"Image file (PNG, JPG, ...) of one digit: a full path, or relative to {_RELATIVE}."
_MODEL_DOC = (
    "Optional. Trained model file (model.pt). Default: GRADSHEET_MODEL (environment or xlwings.conf), "
    "else the run folder's model.pt, else the model shipped with gradsheet."
)
_OUT_DIR_DOC = (
    f"Optional. The Train sheet's output folder, whose model.pt is used when model_path is empty "
    f"(default {DEFAULT_RUN_DIR}, relative to {_RELATIVE})."
)
_PIXELS_DOC = Argument(
    f"A {PIXELS} x {PIXELS} range of numbers, ink greater than paper, any scale (0-1, 0-255, ...); "
    "empty cells are paper.",
    {"ndim": 2},
)
_PROBABILITIES_DOC = "Optional. TRUE: the probabilities of the digits 0..9 as a row of 10 cells (spills)."


def _user_config_model() -> str | None:
    """GRADSHEET_MODEL from the user's xlwings.conf, read again only when the file changes.

    Every CLASSIFY_* cell asks, so a sheet of them would otherwise re-read the file once per cell.
    """
    import xlwings as xw

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


def model_location(model_path: Any = None, files: Files = HERE, out_dir: Any = None) -> Path:
    """Which model a CLASSIFY_* cell uses: the argument, else GRADSHEET_MODEL from the environment or the
    user's xlwings.conf, else the model of the run folder ``out_dir`` (the Train sheet's output folder,
    relative to the workbook), else the model shipped with the package."""
    if model_path not in (None, ""):
        return files.resolve(model_path, "model_path")
    configured = os.environ.get(MODEL_ENV) or _user_config_model()
    if configured:
        return files.resolve(configured, MODEL_ENV)
    run_dir = files.resolve(DEFAULT_RUN_DIR if out_dir in (None, "") else out_dir, "out_dir")
    checkpoint = RunDir(run_dir).checkpoint
    if checkpoint.is_file():
        return checkpoint
    from ml.predict import shipped_model_path

    return shipped_model_path()


def _classifier(model_path: Any, out_dir: Any, files: Files):
    """The model's classifier (loaded once per file version, then reused)."""
    from ml.predict import load_classifier

    return load_classifier(model_location(model_path, files, out_dir))


def classify(path: Any, model_path: Any = None, out_dir: Any = None, files: Files = HERE):
    """The ``ml.predict.Prediction`` for an image cell."""
    image = files.resolve(path, "image path")
    return _classifier(model_path, out_dir, files).predict(image)


@cell_function(path=_PATH_DOC, model_path=_MODEL_DOC, out_dir=_OUT_DIR_DOC)
def CLASSIFY_IMAGE(path, model_path=None, out_dir=None, *, files: Files = HERE):
    """The digit (0-9) that the trained CNN sees in an image file."""
    return in_cell(lambda: classify(path, model_path, out_dir, files).digit)


@cell_function(path=_PATH_DOC, model_path=_MODEL_DOC, out_dir=_OUT_DIR_DOC)
def CLASSIFY_PROBS(path, model_path=None, out_dir=None, *, files: Files = HERE):
    """The probabilities of the digits 0..9 for an image file, as a row of 10 cells (spills)."""
    return in_cell(lambda: [list(classify(path, model_path, out_dir, files).probs)], spill=True)


def pixel_grid(pixels: Any) -> np.ndarray:
    """A PIXELS x PIXELS range of numbers as ink in 0..1 on paper 0 (scaled from the grid's own range).

    ValueError names what is wrong: the shape, a cell holding text, or a grid without ink.
    """
    if pixels is None:
        raise ValueError(f"pixels is empty: give a {PIXELS} x {PIXELS} range of numbers")
    rows = pixels if isinstance(pixels, list | tuple) else [[pixels]]
    rows = [row if isinstance(row, list | tuple) else [row] for row in rows]
    shape = f"{len(rows)} x {len(rows[0]) if rows else 0}"
    if len(rows) != PIXELS or any(len(row) != PIXELS for row in rows):
        raise ValueError(f"pixels must be {PIXELS} x {PIXELS} cells (rows x columns), got {shape}")
    grid = np.zeros((PIXELS, PIXELS), dtype=np.float64)
    for r, row in enumerate(rows):
        for c, cell in enumerate(row):
            grid[r, c] = _pixel(cell, r, c)
    low, high = float(grid.min()), float(grid.max())
    if not high > low:
        raise ValueError(
            f"pixels: the grid is empty (every cell is {low:g}): paint a digit with numbers greater than the "
            "paper's, e.g. 1 on empty cells"
        )
    return (grid - low) / (high - low)


def _pixel(cell: Any, row: int, column: int) -> float:
    """One cell of the grid as a number; an empty cell is paper (0)."""
    if cell is None or cell == "":
        return 0.0
    where = f"pixels: the cell in row {row + 1}, column {column + 1}"
    number = values.as_number(cell, f"{where} must be a number or empty")
    if not math.isfinite(number):
        raise ValueError(f"{where} must be a finite number, got {cell!r}")
    return number


def prepared_pixels(pixels: Any) -> np.ndarray:
    """A grid of pixel cells as the network gets it: MNIST-style 28 x 28, ink 1 (cropped to the ink,
    fitted into 20 x 20, centred by mass), as ``ml.preprocess`` prepares any picture."""
    from ml.preprocess import mnistify

    return mnistify(pixel_grid(pixels).astype(np.float32), "pixels", bright_ink=True)


def classify_pixels(pixels: Any, model_path: Any = None, out_dir: Any = None, files: Files = HERE):
    """The ``ml.predict.Prediction`` for a grid of pixel cells (ink brighter than paper)."""
    from ml.predict import Prediction

    image = prepared_pixels(pixels)
    return Prediction.from_probs(_classifier(model_path, out_dir, files).probabilities(image[None])[0])


@cell_function(
    pixels=_PIXELS_DOC, probabilities=_PROBABILITIES_DOC, model_path=_MODEL_DOC, out_dir=_OUT_DIR_DOC
)
def CLASSIFY_PIXELS(pixels, probabilities=None, model_path=None, out_dir=None, *, files: Files = HERE):
    """The digit (0-9) that the trained CNN sees in a 28 x 28 range of numbers; or its 10 probabilities."""

    def compute():
        wanted = False if probabilities in (None, "") else values.as_flag(probabilities, "probabilities")
        prediction = classify_pixels(pixels, model_path, out_dir, files)
        return [list(prediction.probs)] if wanted else prediction.digit

    return in_cell(compute)


# ---- Model: a CNN design's layer table, live ---------------------------------------------------------

_SPEC_DOC = Argument(
    # no list of the model names here: they are ml.variants.VARIANTS's (an unknown name's #VALUE! lists them),
    # and importing it would load torch with every cell function
    "The CNN: the Train sheet's Custom model table (rows of channels, separable, dropout, residual), a "
    "model's name (a choice of the Train sheet's model cell, e.g. tiny) or a stages text such as "
    "'8,16 drop=0.05 | 16,24,24 res | 24,32 sep'.",
    {"ndim": 2},
)


@functools.lru_cache(maxsize=64)
def _summary_of(spec) -> tuple[tuple[Any, ...], ...]:
    """MODEL_SUMMARY's rows for a ``ml.spec.ModelSpec`` (one forward pass of the built network, once per
    design: Excel asks again whenever the sheet recalculates)."""
    from ml.summary import layer_table
    from ml.summary_table import summary_table

    return tuple(map(tuple, summary_table(layer_table(spec), spec.n_params, empty="")))


@cell_function(spec=_SPEC_DOC)
def MODEL_SUMMARY(spec):
    """A CNN's layer table: output shape, parameters, jump, receptive field (RF), and the total (spills)."""

    def compute():
        from excel_addin.sheets.custom_model import spec_from_cells

        return [list(row) for row in _summary_of(spec_from_cells(spec))]

    return in_cell(compute, spill=True)


#: Every cell function, in the order the faces list them.
CELL_FUNCTIONS = (
    BACKPROP_LOSS,
    BACKPROP_CURVE,
    BACKPROP_TABLE,
    CLASSIFY_IMAGE,
    CLASSIFY_PROBS,
    CLASSIFY_PIXELS,
    MODEL_SUMMARY,
)


# ---- the add-in's names -----------------------------------------------------------------------------


def function_names() -> tuple[str, ...]:
    """The Excel names of the shared cell functions (the classic UDFs and the add-in's)."""
    return tuple(fn.__name__ for fn in CELL_FUNCTIONS)


def in_namespace(formula: str, namespace: str = FUNCTION_NAMESPACE) -> str:
    """A formula with every shared cell function called by its add-in name: ``=GRADSHEET.BACKPROP_LOSS(``."""
    names = "|".join(function_names())
    return re.sub(rf"(?<![\w.])({names})\(", rf"{namespace}.\1(", formula)
