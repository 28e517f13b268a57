"""What gradsheet's buttons do, on any xlwings Book: the workbook's macros (``excel_addin.classic``) and
the add-in's task-pane buttons (``excel_addin.server.scripts``) both call these.

* ``train``: reads the Train sheet's settings, takes the run lock and starts the training process
  (``excel_addin.worker``; the add-in server passes a launcher that queues the run instead). A second
  Train while one runs says so and starts nothing.
* ``stop``: asks the running training to stop after its current batch (checkpoint and metrics stay).
* ``refresh_backprop``: recomputes the per-rate sheets' engine column and the Graphs picture from the
  Backprop sheet's inputs, targets, weights, biases, activation, rates and epochs.
* ``random_test_digit``, ``clear_grid``, ``what_the_network_sees``: the Classify sheet's drawing grid (a
  random MNIST test digit into it, or empty it: 28 x 28 cells of ink from 0 (paper; an empty cell is
  paper too) to 1, which ``=CLASSIFY_PIXELS(grid)`` classifies) and, for the image the target cell names
  (a row number: the image path in column A of that row; or "grid"), ``ml.explain``'s picture of what the
  network sees (the first layer's filters and their feature maps, the class evidence maps before global
  average pooling), replaced in place on every press, with a status line saying what it shows. Which cell
  holds what, and the texts the template shows before a button is pressed, come from
  ``excel_addin.sheets.classify_sheet``.

Problems never raise into Excel's VBA error box: each is said, readably, through ``say`` (by default the
Train sheet's status cell) or written into the sheet's status or caption cell.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from excel_addin import cells, status_line, worker
from excel_addin.sheets import classify_sheet as sheet_cells
from excel_addin.sheets import custom_model, layout
from excel_addin.sheets.train_sheet import status_cells
from ml import config, run_lock, values
from ml.config import TrainConfig
from ml.run_dir import DEFAULT_RUN_DIR, RunDir, is_inside
from ml.variants import CUSTOM

GRAPHS_PICTURE = "backprop_loss_curves"
GRID = sheet_cells.GRID_TARGET

Launcher = Callable[[TrainConfig, Any, run_lock.RunLock], Any]
Say = Callable[..., None]  # say(text, progress=None): where a button's message goes


def set_status(book: Any, text: str, progress: float | None = None) -> None:
    """Write the Train sheet's status line (and its progress, when given)."""
    sheet = book.sheets[layout.TRAIN_SHEET]
    for address, value in status_cells(text, progress).items():
        sheet[address].value = value


def status_cell_of(book: Any) -> Say:
    """The workbook route's way to say things: into the Train sheet's status cell."""
    return lambda text, progress=None: set_status(book, text, progress)


def files_of(book: Any) -> cells.Files:
    """Where a workbook's relative paths start: its own folder (the current one for a book never saved)."""
    return cells.Files(cells.book_folder(book))


# ---- Train ------------------------------------------------------------------------------------------


def read_settings(book: Any) -> dict[str, Any]:
    """The Train sheet's setting cells as they are: setting name -> cell value; and under "stages" its
    Custom model table, as rows of cell values."""
    sheet = book.sheets[layout.TRAIN_SHEET]
    settings = {name: sheet[address].value for name, address in layout.TRAIN_SETTING_CELLS.items()}
    settings["stages"] = sheet[layout.TRAIN_CUSTOM_CELLS].options(ndim=2).value
    return settings


def out_dir_from_settings(settings: dict[str, Any], files: cells.Files) -> Path:
    """The run folder the settings name (default when empty); a relative one starts in ``files.folder``
    (the current folder when None). ``files.confined``: the folder must lie inside it, else ValueError."""
    raw = settings.get("out_dir")
    text = DEFAULT_RUN_DIR if config.is_empty(raw) else config.parse_setting("out_dir", raw)
    folder = files.folder or Path.cwd()
    out_dir = Path(text).expanduser()
    out_dir = out_dir if out_dir.is_absolute() else folder / out_dir
    if files.confined and not is_inside(out_dir, folder):
        raise ValueError(
            f"out_dir must be a folder inside this workbook's folder on the server, got {text!r}"
        )
    return out_dir


def config_from_settings(settings: dict[str, Any], files: cells.Files = cells.HERE) -> TrainConfig:
    """A validated TrainConfig from the Train sheet's cells (empty cells take the preset or default).

    A relative output folder starts in ``files.folder`` (the workbook's folder), so results sit beside the
    workbook whatever Excel's current folder is. When the model is custom, its stages come from the Custom
    model table (``settings["stages"]``: rows of cells, or the stages text); another model ignores it.
    """
    training = {name: value for name, value in settings.items() if name in config.FIELDS}
    table = training.pop("stages", None)
    chosen = config.chosen_values(training)
    if chosen.get("model") == CUSTOM:
        chosen["stages"] = custom_model.stages_text(table)
    parsed = TrainConfig(**chosen).validate()
    return replace(parsed, out_dir=str(out_dir_from_settings(settings, files)))


def train(
    book: Any, launcher: Launcher | None = None, files: cells.Files | None = None, say: Say | None = None
) -> Any:
    """Train button: start a training run in its own process and return at once.

    Returns what the launcher returned (default ``worker.launch``: the worker's Popen), or None when
    nothing was started; the reason is said either way (``say``; default: the status cell). ``files``:
    where relative output folders go (default: the workbook's folder) and whether they are confined. A
    launcher refuses a run by raising ValueError with the reason.
    """
    say = say or status_cell_of(book)
    try:
        train_config = config_from_settings(read_settings(book), files or files_of(book))
        RunDir(train_config.out_dir).prepare()
    except (ValueError, TypeError) as error:
        say(status_line.not_started_settings(error))
        return None
    try:
        lock = run_lock.acquire(train_config.out_dir, str(book.fullname))
    except run_lock.RunLockError as error:
        say(str(error))
        return None
    say(status_line.starting_text(train_config), 0.0)
    try:
        return (launcher or worker.launch)(train_config, book, lock)
    except ValueError as error:  # the launcher refused the run (e.g. a server's limits)
        run_lock.release(lock)
        say(status_line.not_started(error))
    except Exception as error:
        run_lock.release(lock)
        say(status_line.not_launched(error))
    return None


# ---- Stop -------------------------------------------------------------------------------------------


def stop(
    book: Any, files: cells.Files | None = None, say: Say | None = None, request_stop: Any = None
) -> Any | None:
    """Stop button: ask the run writing into the Train sheet's output folder to stop after its batch
    (``files``, ``say``: as for ``train``; ``request_stop(out_dir)``: how, default the folder's run lock on
    this machine; a distributed server asks its queue). What was asked to stop, or None."""
    say = say or status_cell_of(book)
    try:
        out_dir = out_dir_from_settings(read_settings(book), files or files_of(book))
        lock = (request_stop or run_lock.request_stop)(out_dir)
    except (ValueError, run_lock.RunLockError) as error:
        say(status_line.not_stopped(error))
        return None
    say(status_line.nothing_to_stop(out_dir) if lock is None else status_line.STOPPING_TEXT)
    return lock


# ---- Refresh backprop -------------------------------------------------------------------------------


def read_backprop(book: Any):
    """The network, the six rates and the epochs from the Backprop sheet's cells."""
    from ml import backprop

    sheet = book.sheets[layout.BACKPROP_SHEET]
    cell = {name: sheet[address].value for name, address in layout.BACKPROP_INPUT_CELLS.items()}
    network = cells.network_from_cells(
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


def refresh_backprop(book: Any) -> dict[float, Any]:
    """Refresh button: the Python engine's E_total into each per-rate sheet, and a picture of all curves.

    The template's formulas stay untouched: the engine's values go into the column at
    LR_REFRESH_HEADER_CELL of each per-rate sheet (rate k of the Backprop sheet -> k-th LR sheet) and the
    Graphs sheet gets a matplotlib picture, replaced in place on every refresh. This is what shows the
    engine's numbers where cell functions don't run (macOS) or before they recalculate.
    Returns rate -> E_total curve (epochs 0..epochs) as written; a bad cell is named in the status cell.
    """
    from ml import backprop

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
        column = [[float(v)] for v in curve] + [[None]] * (rows - len(curve))
        target[layout.LR_REFRESH_HEADER_CELL].value = [[f"E_total (Python) at lr {lr:g}"]] + column
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


def random_index(seed: int | None = None) -> int:
    """A random test-image number (the same one for the same ``seed``; None: a fresh one each time)."""
    from ml.data import load_mnist

    return int(np.random.default_rng(seed).integers(len(load_mnist().test_x)))


def _sheet(book: Any) -> Any:
    return book.sheets[layout.CLASSIFY_SHEET]


def random_test_digit(book: Any, seed: int | None = None) -> int | None:
    """Random test digit button: a random MNIST test digit into the Classify sheet's drawing grid (the
    same one for the same ``seed``) and its caption; its number in the test set, or None (the caption says
    why) when the data set cannot be read."""
    sheet = _sheet(book)
    try:
        index = random_index(seed)
        image, label = sheet_cells.mnist_test_digit(index)
    except (OSError, ValueError, ImportError) as error:
        sheet[layout.CLASSIFY_GRID_CAPTION_CELL].value = f"No test digit: MNIST could not be read ({error})"
        return None
    sheet[layout.CLASSIFY_GRID_CELL].value = sheet_cells.ink_cells(image)
    sheet[layout.CLASSIFY_GRID_CAPTION_CELL].value = sheet_cells.caption(index, label)
    return index


def clear_grid(book: Any) -> None:
    """Clear button: an empty grid (every cell paper), and a caption saying how to draw."""
    sheet = _sheet(book)
    sheet[layout.CLASSIFY_GRID_CELL].value = [[None] * cells.PIXELS for _ in range(cells.PIXELS)]
    sheet[layout.CLASSIFY_GRID_CAPTION_CELL].value = sheet_cells.CLEARED


# ---- what the network sees ------------------------------------------------------------------------------


def _rows_text() -> str:
    rows = sheet_cells.image_rows()
    return f"the row number of an image path in column A ({rows[0]} to {rows[-1]}), or {GRID}"


def target(value: Any) -> int | str:
    """The image the target cell names: a row number (int) or GRID; ValueError saying what to type."""
    cell = layout.CLASSIFY_EXPLAIN_TARGET_CELL
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError(f"{cell} is empty: it takes {_rows_text()}")
    if isinstance(value, str) and value.strip().lower() == GRID:
        return GRID
    try:
        row = values.as_whole(value.strip() if isinstance(value, str) else value, "row")
    except ValueError:
        raise ValueError(f"{cell} takes {_rows_text()}; got {value!r}") from None
    if row not in sheet_cells.image_rows():
        raise ValueError(f"row {row} holds no image path; {cell} takes {_rows_text()}")
    return row


def target_image(book: Any, chosen: int | str, files: cells.Files) -> tuple[np.ndarray, str]:
    """The chosen image as the network gets it (MNIST-style 28 x 28) and its source: the image path as
    the row gives it, or the grid's name."""
    sheet = _sheet(book)
    if chosen == GRID:
        pixels = sheet.range(sheet_cells.grid_range()).options(ndim=2).value
        return cells.prepared_pixels(pixels), sheet_cells.GRID_SOURCE
    from ml.preprocess import preprocess_file

    path = sheet[f"A{chosen}"].value
    if path is None or not str(path).strip():
        raise ValueError(
            f"row {chosen} has no image path in column A: type one there, or another row (or {GRID}) "
            f"into {layout.CLASSIFY_EXPLAIN_TARGET_CELL}"
        )
    return preprocess_file(files.resolve(path, "image path")), str(path).strip()


def classifier_of(book: Any, files: cells.Files):
    """The classifier the CLASSIFY_* cells use: the Train sheet's model file, else its run folder's model,
    ... (``cells.model_location``)."""
    from ml.predict import load_classifier

    train = book.sheets[layout.TRAIN_SHEET]
    model_path = train[layout.TRAIN_SETTING_CELLS["model_path"]].value
    out_dir = train[layout.TRAIN_SETTING_CELLS["out_dir"]].value
    return load_classifier(cells.model_location(model_path, files, out_dir))


def explained_text(chosen: int | str, expl: Any) -> str:
    """The status line of a drawn explanation of the ``chosen`` image."""
    what = expl.source if chosen == GRID else f"row {chosen}, {expl.source}"
    prediction = expl.prediction
    return (
        f"Shows {what}, seen as {prediction.digit} (p = {prediction.confidence:.3f}): the first layer's "
        f"{len(expl.filters)} filters and their feature maps, and each digit's evidence (its mean is the "
        "digit's score)."
    )


def what_the_network_sees(
    book: Any, files: cells.Files | None = None, word: Callable[[str], str] = str
) -> Any | None:
    """What the network sees button: the chosen image's ``ml.explain`` picture onto the sheet (replacing
    the previous one) and a status line; the Explanation, or None when the status line says what is wrong.
    ``files``: where relative image and model paths start, as for the CLASSIFY_* cells (default: the
    workbook's folder); ``word``: how the status line is worded for its reader (a server hides its paths)."""
    from excel_addin.sheets.book_render import put_picture
    from ml import explain as ml_explain

    sheet = _sheet(book)
    try:
        chosen = target(sheet[layout.CLASSIFY_EXPLAIN_TARGET_CELL].value)
        files = files or files_of(book)
        image, source = target_image(book, chosen, files)
        expl = ml_explain.explain(classifier_of(book, files), image, source=source)
    except (ValueError, TypeError, OSError) as error:
        sheet[layout.CLASSIFY_EXPLAIN_STATUS_CELL].value = word(f"Not drawn: {error}")
        return None
    with tempfile.TemporaryDirectory() as tmp:
        path = ml_explain.plot_explanation(expl, Path(tmp) / f"{sheet_cells.EXPLAIN_PICTURE}.png")
        put_picture(sheet, sheet_cells.explain_picture(path))
    sheet[layout.CLASSIFY_EXPLAIN_STATUS_CELL].value = explained_text(chosen, expl)
    return expl
