"""The Train sheet as one more sink of training events: status, progress, metric rows, summary, charts.

Excel refuses COM calls for a moment while a user edits a cell ("call was rejected by callee"), so every
write here is *keyed and idempotent* (a cell address or a picture name, holding the latest value) and goes
through a queue: a write that fails stays queued and is retried with back-off, and on the next event,
until it succeeds. A metric row is therefore never lost, only delayed. When the workbook is gone for good
(closed mid-run), the sink gives up quietly after a few failed flushes; training and its files go on.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from excel_addin import layout
from excel_addin.status_line import StatusLine, clamp
from ml.events import METRIC_COLUMNS, BatchEnd, EpochEnd, RunEnded, RunStarted, Sink
from ml.model import LayerRow
from ml.run_dir import CURVE_CHARTS, RunDir

# HRESULTs of a busy Excel: RPC_E_CALL_REJECTED, RPC_E_SERVERCALL_RETRYLATER, VBA_E_IGNORE (edit mode),
# and Excel's own "application busy" code. AppleScript's equivalents on macOS: timeout and "busy".
BUSY_CODES = frozenset({-2147418111, -2147417846, -2146777998, -2146827284, -1712, -1708})

# Each chart fits a box of this size in points: a 2x2 grid at TRAIN_PICTURE_CELLS (20 rows of 15 pt apart).
PICTURE_BOX = (380.0, 285.0)
SUMMARY_HEADER = ("Layer", "Output shape", "Params", "Jump", "RF")


def is_busy(error: BaseException) -> bool:
    """True for the errors of an Excel that is busy for a moment (retry), not of a workbook that is gone."""
    codes = [getattr(error, "hresult", None), getattr(error, "errornumber", None)]
    codes += [arg for arg in getattr(error, "args", ())[:1] if isinstance(arg, int)]
    if any(code in BUSY_CODES for code in codes):
        return True
    return "call was rejected" in str(error).lower() or "busy" in str(error).lower()


def cell_offset(address: str, rows: int = 0, columns: int = 0) -> str:
    """The A1 address ``rows`` below and ``columns`` right of ``address`` (single cells only)."""
    letters = address.rstrip("0123456789").upper()
    row = int(address[len(letters) :])
    column = 0
    for char in letters:
        column = column * 26 + ord(char) - 64
    column += columns
    name = ""
    while column:
        column, rest = divmod(column - 1, 26)
        name = chr(65 + rest) + name
    return f"{name}{row + rows}"


def picture_size(path: str | os.PathLike) -> tuple[float, float]:
    """Width and height in points that fit the PNG into PICTURE_BOX, keeping its aspect ratio."""
    from PIL import Image

    with Image.open(path) as image:
        width, height = image.size
    scale = min(PICTURE_BOX[0] / width, PICTURE_BOX[1] / height)
    return round(width * scale, 1), round(height * scale, 1)


class RetryingWriter:
    """A queue of keyed, idempotent writes to a workbook, retried until they succeed.

    ``put(key, write)`` replaces any queued write with the same key (only the latest value of a cell
    matters); ``flush(patience)`` runs the queue in order, retrying a busy Excel with back-off for up to
    ``patience`` seconds, and leaves whatever still fails queued for the next flush.
    """

    def __init__(
        self,
        max_failed_flushes: int = 5,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        log: TextIO | None = None,
    ):
        self.pending: dict[str, Callable[[], Any]] = {}
        self.max_failed_flushes = max_failed_flushes
        self.failed_flushes = 0  # consecutive flushes that hit a non-busy error
        self.retries = 0  # busy errors retried so far (for the log and the tests)
        self.detached = False
        self.sleep, self.clock = sleep, clock
        self.log = log if log is not None else sys.stderr

    def put(self, key: str, write: Callable[[], Any]) -> None:
        self.pending.pop(key, None)
        self.pending[key] = write

    def flush(self, patience: float = 10.0) -> bool:
        """Run the queued writes; True when none is left. Busy errors are retried for ``patience`` s."""
        if self.detached:
            return not self.pending
        deadline = self.clock() + patience
        delay = 0.05
        while self.pending:
            key, write = next(iter(self.pending.items()))
            try:
                write()
            except Exception as error:  # noqa: BLE001 - COM/AppleScript errors have no common base class
                if is_busy(error) and self.clock() < deadline:
                    self.retries += 1
                    self.sleep(min(delay, max(0.0, deadline - self.clock())))
                    delay = min(delay * 2, 1.0)
                    continue
                if not is_busy(error):
                    self.failed_flushes += 1
                    if self.failed_flushes >= self.max_failed_flushes:
                        self.detached = True
                        print(
                            f"gradsheet: the workbook no longer answers ({error!r}); training goes on, "
                            "its files stay complete",
                            file=self.log,
                        )
                return False
            if self.pending.get(key) is write:  # a write may itself queue a newer value for its key
                del self.pending[key]
            self.failed_flushes = 0
        return True


class SheetSink(Sink):
    """Writes a training run into the Train sheet of ``book`` (an xlwings Book, local or remote).

    Status line and progress (throttled to one write per ``progress_every`` seconds), the model summary
    at the start, one metric row per epoch under the header at TRAIN_METRICS_HEADER_CELL, the loss and
    accuracy curves after each epoch and all four charts at the end, as pictures that replace their
    previous version (same name, same anchor cell).
    """

    def __init__(
        self,
        book: Any,
        progress_every: float = 1.0,
        writer: RetryingWriter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.book = book
        self.progress_every = progress_every
        self.writer = writer or RetryingWriter()
        self.clock = clock
        self._last_progress = -float("inf")
        self._started: RunStarted | None = None
        self._line = StatusLine()
        self._picture_mtimes: dict[str, float] = {}
        self.rows_written: dict[int, list[float]] = {}  # epoch -> row, as queued (for reports and tests)

    # ---- cell writes ------------------------------------------------------------------------------
    def _sheet(self):
        return self.book.sheets[layout.TRAIN_SHEET]

    def _assign(self, address: str, value: Any) -> None:
        self._sheet()[address].value = value

    def _set(self, address: str, value: Any) -> None:
        self.writer.put(f"cell:{address}", lambda: self._assign(address, value))

    def _set_block(self, address: str, rows: list[list[Any]], key: str | None = None) -> None:
        self.writer.put(key or f"block:{address}", lambda: self._assign(address, rows))

    def _picture(self, name: str, path: str | os.PathLike) -> None:
        anchor = layout.TRAIN_PICTURE_CELLS[name]
        path = str(path)

        def write():
            sheet = self._sheet()
            if name in sheet.pictures:
                sheet.pictures[name].update(path)
            else:
                width, height = picture_size(path)
                sheet.pictures.add(path, name=name, anchor=sheet[anchor], width=width, height=height)

        self.writer.put(f"picture:{name}", write)

    def _status(self, text: str, progress: float | None = None) -> None:
        self._set(layout.TRAIN_STATUS_CELL, text)
        if progress is not None:
            self._set(layout.TRAIN_PROGRESS_CELL, clamp(progress))

    # ---- events -----------------------------------------------------------------------------------
    def on_start(self, event: RunStarted) -> None:
        self._started = event
        self._status(*self._line.on_start(event))
        self._set(layout.TRAIN_DEVICE_CELL, event.device)
        header = layout.TRAIN_METRICS_HEADER_CELL
        self._set_block(header, [list(METRIC_COLUMNS)], key="metrics-header")
        # Clear the rows this run will (re)write; earlier epochs of a resumed run stay.
        first = cell_offset(header, rows=event.start_epoch)
        blank = [[None] * len(METRIC_COLUMNS)] * (layout.TRAIN_METRICS_MAX_ROWS - event.start_epoch + 1)
        if blank:
            self._set_block(first, blank, key="metrics-clear")
        summary = [list(SUMMARY_HEADER)] + [summary_cells(row) for row in event.summary]
        summary.append(["Total", "", int(event.n_params), None, None])
        blank = [None] * len(SUMMARY_HEADER)
        summary += [blank] * max(0, layout.TRAIN_SUMMARY_MAX_ROWS + 1 - len(summary))
        self._set_block(layout.TRAIN_SUMMARY_HEADER_CELL, summary, key="summary")
        self.writer.flush(patience=10.0)

    def on_batch(self, event: BatchEnd) -> None:
        if self._started is None or self.clock() - self._last_progress < self.progress_every:
            return
        self._last_progress = self.clock()
        self._status(*self._line.on_batch(event))
        # Training redraws the curves right after each EpochEnd: pick the new pictures up here.
        for name in CURVE_CHARTS:
            self._refresh_picture(name, self._run_dir().chart(name))
        self.writer.flush(patience=2.0)  # progress can wait for the next batch; rows cannot

    def on_epoch(self, event: EpochEnd) -> None:
        row = [int(event.epoch), *(float(v) for v in event.row()[1:])]
        self.rows_written[event.epoch] = row
        if event.epoch <= layout.TRAIN_METRICS_MAX_ROWS:
            self._set_block(cell_offset(layout.TRAIN_METRICS_HEADER_CELL, rows=event.epoch), [row])
        self._status(*self._line.on_epoch(event))
        for name in CURVE_CHARTS:
            self._refresh_picture(name, self._run_dir().chart(name))
        # A row that cannot be written now stays queued: later events and the end retry it.
        self.writer.flush(patience=5.0)

    def _run_dir(self) -> RunDir:
        return RunDir(self._started.out_dir if self._started else ".")

    def _refresh_picture(self, name: str, path: Path) -> None:
        """Queue a picture when its PNG exists and changed since it was last queued."""
        try:
            mtime = path.stat().st_mtime_ns
        except OSError:
            return
        if self._picture_mtimes.get(name) != mtime:
            self._picture_mtimes[name] = mtime
            self._picture(name, path)

    def on_end(self, event: RunEnded) -> None:
        self._status(*self._line.on_end(event))
        for name, path in RunDir(event.out_dir).charts().items():
            self._refresh_picture(name, path)
        self.writer.flush(patience=120.0)


def summary_cells(row) -> list:
    """A model-summary row (ml.model.LayerRow) as the sheet's cells: layer, shape, params, jump, RF."""
    layer = LayerRow(*row)
    return [layer.layer, layer.shape, int(layer.params), int(layer.jump), int(layer.rf)]
