"""What the workbook's buttons run (VBA ``RunPython "import excel_addin.macros as m; m.train()"``).

Each macro is a thin function on ``xw.Book.caller()`` (or the Book given, for tests) that returns at once:

* ``train``: reads the Train sheet's settings, takes the run lock and starts the training process
  (``excel_addin.worker``), which writes progress, metrics and charts into the sheet as it goes.
  A second Train while one runs says so in the status cell and starts nothing.
* ``stop``: asks the running training to stop after its current batch (checkpoint and metrics stay).
* ``refresh_backprop``: recomputes the per-rate sheets' engine column and the Graphs picture from the
  Backprop sheet's inputs, targets, weights, biases, activation, rates and epochs.
* ``random_test_digit``, ``clear_grid``, ``what_the_network_sees``: the Classify sheet's drawing grid (a
  random MNIST test digit into it, or empty it) and the picture of what the network sees in a chosen image
  (``excel_addin.drawing``).

Problems never raise into Excel's VBA error box: they are written, readably, into a status cell.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from excel_addin.sheets import custom_model, layout
from excel_addin.sheets.train_sheet import status_cells
from ml import config, run_lock
from ml.config import TrainConfig
from ml.run_dir import DEFAULT_RUN_DIR, RunDir, is_inside
from ml.variants import CUSTOM

ROOT = Path(__file__).resolve().parents[1]
GRAPHS_PICTURE = "backprop_loss_curves"

Launcher = Callable[[Any, Any, run_lock.RunLock], Any]


def _book(book: Any | None) -> Any:
    if book is not None:
        return book
    import xlwings as xw

    return xw.Book.caller()


def set_status(book: Any, text: str, progress: float | None = None) -> None:
    """Write the Train sheet's status line (and its progress, when given)."""
    sheet = book.sheets[layout.TRAIN_SHEET]
    for address, value in status_cells(text, progress).items():
        sheet[address].value = value


Say = Callable[..., None]  # say(text, progress=None): where a button's message goes


def status_cell_of(book: Any) -> Say:
    """The workbook route's way to say things: into the Train sheet's status cell."""
    return lambda text, progress=None: set_status(book, text, progress)


# ---- Train ------------------------------------------------------------------------------------------


def book_folder(book: Any) -> Path:
    """The folder of the workbook's file (the current folder for a book that was never saved)."""
    fullname = Path(str(book.fullname))
    return fullname.parent if fullname.is_absolute() else Path.cwd()


def read_settings(book: Any) -> dict[str, Any]:
    """The Train sheet's setting cells as they are: setting name -> cell value; and under "stages" its
    Custom model table, as rows of cell values."""
    sheet = book.sheets[layout.TRAIN_SHEET]
    settings = {name: sheet[address].value for name, address in layout.TRAIN_SETTING_CELLS.items()}
    settings["stages"] = sheet[layout.TRAIN_CUSTOM_CELLS].options(ndim=2).value
    return settings


def out_dir_from_settings(settings: dict[str, Any], folder: Path, confined: bool = False) -> Path:
    """The run folder the settings name (default when empty); a relative one is beside the workbook.

    ``confined``: the folder must lie inside ``folder`` (the add-in server keeps each workbook's runs in
    its own folder), else ValueError.
    """
    raw = settings.get("out_dir")
    text = DEFAULT_RUN_DIR if config.is_empty(raw) else config.parse_setting("out_dir", raw)
    out_dir = Path(text).expanduser()
    out_dir = out_dir if out_dir.is_absolute() else folder / out_dir
    if confined and not is_inside(out_dir, folder):
        raise ValueError(
            f"out_dir must be a folder inside this workbook's folder on the server, got {text!r}"
        )
    return out_dir


def config_from_settings(settings: dict[str, Any], folder: Path, confined: bool = False) -> TrainConfig:
    """A validated TrainConfig from the Train sheet's cells (empty cells take the preset or default).

    A relative output folder is relative to the workbook's folder, so results sit beside the workbook
    whatever Excel's current folder is (``confined``: see ``out_dir_from_settings``). When the model is
    custom, its stages come from the Custom model table (``settings["stages"]``: rows of cells, or the
    stages text); another model's run ignores the table.
    """
    training = {name: value for name, value in settings.items() if name in config.FIELDS}
    table = training.pop("stages", None)
    chosen = config.chosen_values(training)
    if chosen.get("model") == CUSTOM:
        chosen["stages"] = custom_model.stages_text(table)
    parsed = TrainConfig(**chosen).validate()
    return replace(parsed, out_dir=str(out_dir_from_settings(settings, folder, confined)))


def launch_worker(
    train_config: TrainConfig, book: Any | None, lock: run_lock.RunLock, env: dict[str, str] | None = None
) -> subprocess.Popen:
    """Start ``python -m excel_addin.worker`` detached from Excel; its output goes to a log file.

    ``book``: the workbook the worker writes into (found again by its full name), or None (the add-in
    server's runs, shown through their files). ``env``: variables to add to the worker's environment.
    """
    run_dir = RunDir(train_config.out_dir)
    config_file = run_lock.state_dir() / f"config-{lock.token}.json"
    config_file.write_text(train_config.to_json(), encoding="utf-8")
    command = [worker_python(), "-m", "excel_addin.worker", "--config", str(config_file)]
    command += ["--token", lock.token]
    if book is not None:
        command += ["--book", str(book.fullname)]
    env = {**os.environ, **(env or {})}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    options: dict[str, Any] = {}
    if sys.platform == "win32":
        detached = subprocess.DETACHED_PROCESS | subprocess.CREATE_NEW_PROCESS_GROUP  # outlives the macro
        options["creationflags"] = detached | subprocess.CREATE_NO_WINDOW  # no console window
    else:
        options["start_new_session"] = True
    with open(run_dir.worker_log, "ab") as log:
        process = subprocess.Popen(
            command, cwd=str(ROOT), env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log, **options
        )
    run_lock.hand_over(lock, process.pid)
    return process


def worker_python() -> str:
    """The interpreter for the worker: this one, but python.exe rather than pythonw.exe on Windows."""
    exe = Path(sys.executable)
    if exe.name.lower() == "pythonw.exe" and (exe.parent / "python.exe").exists():
        return str(exe.parent / "python.exe")
    return str(exe)


def describe_run(train_config: TrainConfig) -> str:
    """What a run will do, in one line: 2 epoch(s) of the small model on 1,000 images, device cpu."""
    subset = f"{train_config.subset:,} images" if train_config.subset else "all 60,000 images"
    return (
        f"{train_config.epochs} epoch(s) of the {train_config.model} model on {subset}, "
        f"device {train_config.device}"
    )


def starting_text(train_config: TrainConfig) -> str:
    """The status line of a run whose worker is starting."""
    return f"Starting: {describe_run(train_config)}..."


def train(
    book: Any | None = None,
    launcher: Launcher | None = None,
    folder: Path | None = None,
    confined: bool = False,
    say: Say | None = None,
) -> Any:
    """Train button: start a training run in its own process and return at once.

    Returns what the launcher returned (the worker's Popen), or None when nothing was started; the reason
    is said either way (``say``; default: the status cell). ``folder``: where relative output folders go
    (default: the workbook's folder); ``confined``: the output folder must be inside it.
    """
    book = _book(book)
    say = say or status_cell_of(book)
    try:
        folder = book_folder(book) if folder is None else folder
        train_config = config_from_settings(read_settings(book), folder, confined)
        RunDir(train_config.out_dir).prepare()
    except (ValueError, TypeError) as error:
        say(f"Not started: check the settings: {error}")
        return None
    try:
        lock = run_lock.acquire(train_config.out_dir, str(book.fullname))
    except run_lock.RunLockError as error:
        say(str(error))
        return None
    say(starting_text(train_config), 0.0)
    try:
        return (launcher or launch_worker)(train_config, book, lock)
    except Exception as error:
        run_lock.release(lock)
        say(f"Not started: the training process could not start: {error}")
        return None


# ---- Stop -------------------------------------------------------------------------------------------


def stop(
    book: Any | None = None, folder: Path | None = None, say: Say | None = None
) -> run_lock.RunLock | None:
    """Stop button: ask the run writing into the Train sheet's output folder to stop after its batch
    (``folder``, ``say``: as for ``train``)."""
    book = _book(book)
    say = say or status_cell_of(book)
    try:
        folder = book_folder(book) if folder is None else folder
        out_dir = out_dir_from_settings(read_settings(book), folder)
        lock = run_lock.request_stop(out_dir)
    except (ValueError, run_lock.RunLockError) as error:
        say(f"Not stopped: {error}")
        return None
    if lock is None:
        say(f"No training is running for {out_dir}.")
    else:
        say("Stopping after the current batch (the last checkpoint and metrics stay)...")
    return lock


# ---- Refresh backprop -------------------------------------------------------------------------------


def read_backprop(book: Any):
    """The network, the six rates and the epochs from the Backprop sheet's cells."""
    from excel_addin.cells import network_from_cells
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
            raise ValueError(
                f"the workbook has no sheet {name!r}: use workbook_template.xlsm, or set gradsheet up in it"
            )
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


# ---- Classify sheet: the drawing grid and what the network sees ---------------------------------------
# (what they do: excel_addin.drawing; relative paths start in the workbook's folder, as for the cells)


def random_test_digit(book: Any | None = None, seed: int | None = None) -> int | None:
    """Random test digit button: a random MNIST test digit into the Classify sheet's drawing grid (the
    same one for the same ``seed``); its number in the test set, or None (the caption says why)."""
    from excel_addin import drawing

    return drawing.write_test_digit(_book(book), seed)


def clear_grid(book: Any | None = None) -> None:
    """Clear button: an empty drawing grid."""
    from excel_addin import drawing

    drawing.clear_grid(_book(book))


def what_the_network_sees(book: Any | None = None) -> Any | None:
    """What the network sees button: the chosen image's filters, feature maps and class evidence as a
    picture on the Classify sheet; the ml.explain Explanation, or None (the status line says why)."""
    from excel_addin import drawing
    from excel_addin.cells import Files

    book = _book(book)
    return drawing.explain(book, Files(book_folder(book)))
