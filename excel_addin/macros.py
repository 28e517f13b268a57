"""What the workbook's buttons run (VBA ``RunPython "import excel_addin.macros as m; m.train()"``).

Each macro is a thin function on ``xw.Book.caller()`` (or the Book given, for tests) that returns at once:

* ``train``: reads the Train sheet's settings, takes the run lock and starts the training process
  (``excel_addin.train_worker``), which writes progress, metrics and charts into the sheet as it goes.
  A second Train while one runs says so in the status cell and starts nothing.
* ``stop``: asks the running training to stop after its current batch (checkpoint and metrics stay).
* ``refresh_backprop``: recomputes the per-rate sheets' engine column and the Graphs picture from the
  Backprop sheet's inputs, targets, weights, biases, activation, rates and epochs.

Problems never raise into Excel's VBA error box: they are written, readably, into the status cell.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from excel_addin import layout, run_lock
from ml.backprop import as_number

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT_DIR = Path("runs") / "mnist"
GRAPHS_PICTURE = "backprop_loss_curves"

Launcher = Callable[[Any, Any, run_lock.RunLock], Any]


def _book(book: Any | None) -> Any:
    if book is not None:
        return book
    import xlwings as xw

    return xw.Book.caller()


def _status(book: Any, text: str, progress: float | None = None) -> None:
    sheet = book.sheets[layout.TRAIN_SHEET]
    sheet[layout.TRAIN_STATUS_CELL].value = text
    if progress is not None:
        sheet[layout.TRAIN_PROGRESS_CELL].value = progress


# ---- Train ------------------------------------------------------------------------------------------


def _whole(value: Any, name: str, minimum: int) -> int:
    """A whole number from a cell (Excel gives floats: 3.0 -> 3)."""
    number = as_number(value, f"{name} must be a whole number")  # also refuses None and ""
    if not math.isfinite(number) or number != int(number) or number < minimum:
        raise ValueError(f"{name} must be a whole number of at least {minimum}, got {value!r}")
    return int(number)


def book_folder(book: Any) -> Path:
    """The folder of the workbook's file (the current folder for a book that was never saved)."""
    fullname = Path(str(book.fullname))
    return fullname.parent if fullname.is_absolute() else Path.cwd()


def read_settings(book: Any) -> dict[str, Any]:
    """The Train sheet's setting cells as they are: setting name -> cell value."""
    sheet = book.sheets[layout.TRAIN_SHEET]
    return {name: sheet[address].value for name, address in layout.TRAIN_SETTING_CELLS.items()}


def config_from_settings(settings: dict[str, Any], folder: Path):
    """A validated TrainConfig from the Train sheet's cells (empty cells keep TrainConfig's defaults).

    A relative output folder is relative to the workbook's folder, so results sit beside the workbook
    whatever Excel's current folder is.
    """
    from ml.train import TrainConfig

    given = {k: v for k, v in settings.items() if v not in (None, "")}
    values: dict[str, Any] = {}
    for name, minimum in (("epochs", 1), ("batch_size", 1), ("seed", 0), ("subset", 0)):
        if name in given:
            values[name] = _whole(given[name], name, minimum)
    if values.get("subset") == 0:
        values["subset"] = None
    if "lr" in given:
        try:
            values["lr"] = float(given["lr"])
        except (TypeError, ValueError):
            raise ValueError(f"lr must be a positive number, got {given['lr']!r}") from None
    for name in ("model", "device"):
        if name in given:
            values[name] = str(given[name]).strip().lower()
    out_dir = Path(str(given.get("out_dir", DEFAULT_OUT_DIR))).expanduser()
    values["out_dir"] = str(out_dir if out_dir.is_absolute() else folder / out_dir)
    config = TrainConfig(**values)
    config.validate()
    return config


def launch_worker(config: Any, book: Any, lock: run_lock.RunLock) -> subprocess.Popen:
    """Start ``python -m excel_addin.train_worker`` detached from Excel; its output goes to a log file."""
    from excel_addin.train_worker import LOG_NAME, config_to_json

    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    config_file = run_lock.state_dir() / f"config-{lock.token}.json"
    config_file.write_text(config_to_json(config), encoding="utf-8")
    command = [
        worker_python(),
        "-m",
        "excel_addin.train_worker",
        "--config",
        str(config_file),
        "--token",
        lock.token,
        "--book",
        str(book.fullname),
    ]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    options: dict[str, Any] = {}
    if sys.platform == "win32":
        # DETACHED_PROCESS | CREATE_NEW_PROCESS_GROUP | CREATE_NO_WINDOW: outlives the macro, no console
        options["creationflags"] = 0x00000008 | 0x00000200 | 0x08000000
    else:
        options["start_new_session"] = True
    with open(out_dir / LOG_NAME, "ab") as log:
        process = subprocess.Popen(
            command, cwd=str(ROOT), env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log, **options
        )
    run_lock.set_pid(lock, process.pid)
    return process


def worker_python() -> str:
    """The interpreter for the worker: this one, but python.exe rather than pythonw.exe on Windows."""
    exe = Path(sys.executable)
    if exe.name.lower() == "pythonw.exe" and (exe.parent / "python.exe").exists():
        return str(exe.parent / "python.exe")
    return str(exe)


def train(book: Any | None = None, launcher: Launcher | None = None) -> Any:
    """Train button: start a training run in its own process and return at once.

    Returns what the launcher returned (the worker's Popen), or None when nothing was started; the reason
    is in the status cell either way.
    """
    book = _book(book)
    try:
        config = config_from_settings(read_settings(book), book_folder(book))
    except (ValueError, TypeError) as error:
        _status(book, f"Not started: check the settings: {error}")
        return None
    try:
        lock = run_lock.acquire(config.out_dir, str(book.fullname))
    except run_lock.AlreadyRunningError as error:
        _status(book, str(error))
        return None
    subset = f"{config.subset:,} images" if config.subset else "all 60,000 images"
    what = f"{config.epochs} epoch(s) of the {config.model} model on {subset}, device {config.device}"
    _status(book, f"Starting: {what}...", 0.0)
    try:
        return (launcher or launch_worker)(config, book, lock)
    except Exception as error:
        run_lock.release(lock)
        _status(book, f"Not started: the training process could not start: {error}")
        return None


# ---- Stop -------------------------------------------------------------------------------------------


def stop(book: Any | None = None) -> run_lock.RunLock | None:
    """Stop button: ask the running training to stop after the current batch."""
    book = _book(book)
    lock = run_lock.request_stop()
    if lock is None:
        _status(book, "No training is running.")
    else:
        _status(book, "Stopping after the current batch (the last checkpoint and metrics stay)...")
    return lock


# ---- Refresh backprop -------------------------------------------------------------------------------


def read_backprop(book: Any):
    """The network, the six rates and the epochs from the Backprop sheet's cells."""
    from excel_addin.udfs import network_from_cells
    from ml import backprop

    sheet = book.sheets[layout.BACKPROP_SHEET]
    cell = {name: sheet[address].value for name, address in layout.BACKPROP_INPUT_CELLS.items()}
    network = network_from_cells(
        inputs=[cell["i1"], cell["i2"]],
        targets=[cell["t1"], cell["t2"]],
        weights=[cell[f"w{k}"] for k in range(1, 9)],
        biases=[cell["b1"] or 0.0, cell["b2"] or 0.0],
        output=cell["output"],
    )
    rates = [backprop.validate_rate(sheet[address].value) for address in layout.BACKPROP_RATE_CELLS]
    epochs = backprop.validate_epochs(sheet[layout.BACKPROP_EPOCHS_CELL].value)
    return network, rates, epochs


def rate_sheets(book: Any) -> list[Any]:
    """The per-rate sheets, in the order of the Backprop sheet's rate cells."""
    names = [s.name for s in book.sheets]
    found = []
    for lr in layout.DEFAULT_RATES:
        name = layout.rate_sheet_name(lr)
        if name not in names:
            raise ValueError(f"the workbook has no sheet {name!r} (rebuild it from the template)")
        found.append(book.sheets[name])
    return found


def refresh_backprop(book: Any | None = None) -> dict[float, Any]:
    """Refresh button: the Python engine's E_total into each per-rate sheet, and a picture of all curves.

    The template's formulas stay untouched: the engine's values go into the column at
    LR_REFRESH_HEADER_CELL of each per-rate sheet (rate k of the Backprop sheet -> k-th LR sheet) and the
    Graphs sheet gets a matplotlib picture, replaced in place on every refresh. This is what shows the
    engine's numbers where cell functions don't run (macOS) or before they recalculate.
    Returns rate -> E_total curve (epochs 0..epochs) as written; a bad cell is named in the status cell.
    """
    from ml import backprop

    book = _book(book)
    sheet = book.sheets[layout.BACKPROP_SHEET]
    try:
        network, rates, epochs = read_backprop(book)
        targets = rate_sheets(book)
    except ValueError as error:
        sheet[layout.BACKPROP_STATUS_CELL].value = f"Not refreshed: {error}"
        return {}
    curves = {}
    rows = max(epochs, layout.DEFAULT_EPOCHS) + 1  # a shorter run blanks the old tail
    for target, lr in zip(targets, rates, strict=True):
        curve = backprop.loss_curve(lr, epochs, network)
        curves[lr] = curve
        values = [[float(v)] for v in curve] + [[None]] * (rows - len(curve))
        target[layout.LR_REFRESH_HEADER_CELL].value = [[f"E_total (Python) at lr {lr:g}"]] + values
    graphs = book.sheets[layout.GRAPHS_SHEET]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{GRAPHS_PICTURE}.png"
        backprop.plot_loss_curves(curves, str(path), network)
        graphs.pictures.add(
            str(path), name=GRAPHS_PICTURE, update=True, anchor=graphs[layout.GRAPHS_PICTURE_CELL]
        )
    sheet[
        layout.BACKPROP_STATUS_CELL
    ].value = f"Refreshed: {len(rates)} rates x {epochs} epochs, {network.output} output"
    return curves
