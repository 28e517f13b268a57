"""The Train sheet as one more sink of training events: status, progress, metric rows, summary, charts.

Excel refuses COM calls for a moment while a user edits a cell ("call was rejected by callee"), so every
write here is *keyed and idempotent* (a cell address or a picture name, holding the latest value) and goes
through a queue: a write that fails stays queued and is retried with back-off, and on the next event,
until it succeeds. A metric row is therefore never lost, only delayed. When the workbook is gone for good
(closed mid-run), the sink gives up quietly after a few failed flushes; training and its files go on.

Which cell holds what, and the status texts, come from ``excel_addin.sheets.train_sheet``: the template and
the headless report fill the same cells the same way.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from excel_addin.sheets import layout
from excel_addin.sheets import train_sheet as sheet_cells
from excel_addin.sheets.book_render import put_picture
from excel_addin.status_line import StatusLine
from ml.events import BatchEnd, EpochEnd, RunEnded, RunStarted, Sink
from ml.run_dir import CURVE_CHARTS, RunDir

# HRESULTs of a busy Excel: RPC_E_CALL_REJECTED, RPC_E_SERVERCALL_RETRYLATER, VBA_E_IGNORE (edit mode),
# and Excel's own "application busy" code. AppleScript's equivalents on macOS: timeout and "busy".
BUSY_CODES = frozenset({-2147418111, -2147417846, -2146777998, -2146827284, -1712, -1708})


def is_busy(error: BaseException) -> bool:
    """True for the errors of an Excel that is busy for a moment (retry), not of a workbook that is gone."""
    codes = [getattr(error, "hresult", None), getattr(error, "errornumber", None)]
    codes += [arg for arg in getattr(error, "args", ())[:1] if isinstance(arg, int)]
    if any(code in BUSY_CODES for code in codes):
        return True
    return "call was rejected" in str(error).lower() or "busy" in str(error).lower()


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
        self._line = StatusLine()  # the status wording, shared with the add-in's progress stream
        self._picture_mtimes: dict[str, float] = {}
        self.rows_written: dict[int, list[float]] = {}  # epoch -> row, as queued (for reports and tests)

    # ---- cell writes (which cells hold what: excel_addin.sheets.train_sheet) --------------------------
    def _sheet(self):
        return self.book.sheets[layout.TRAIN_SHEET]

    def _assign(self, address: str, value: Any) -> None:
        self._sheet()[address].value = value

    def _set(self, address: str, value: Any) -> None:
        self.writer.put(f"cell:{address}", lambda: self._assign(address, value))

    def _set_block(self, address: str, rows: list[list[Any]], key: str | None = None) -> None:
        self.writer.put(key or f"block:{address}", lambda: self._assign(address, rows))

    def _picture(self, name: str, path: str | os.PathLike) -> None:
        self.writer.put(
            f"picture:{name}", lambda: put_picture(self._sheet(), sheet_cells.chart_picture(name, path))
        )

    def _status(self, text: str, progress: float | None = None) -> None:
        for address, value in sheet_cells.status_cells(text, progress).items():
            self._set(address, value)

    # ---- events -----------------------------------------------------------------------------------
    def on_start(self, event: RunStarted) -> None:
        self._started = event
        self._status(*self._line.on_start(event))
        self._set(layout.TRAIN_DEVICE_CELL, event.device)
        header = layout.TRAIN_METRICS_HEADER_CELL
        self._set_block(header, [list(layout.TRAIN_METRIC_COLUMNS)], key="metrics-header")
        # Clear the rows this run will (re)write; earlier epochs of a resumed run stay.
        width = len(layout.TRAIN_METRIC_COLUMNS)
        blank = [[None] * width] * (layout.TRAIN_METRICS_MAX_ROWS - event.start_epoch + 1)
        if blank:
            self._set_block(sheet_cells.metric_row_cell(event.start_epoch), blank, key="metrics-clear")
        summary = sheet_cells.summary_block(event.summary, event.n_params)
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
        row = sheet_cells.metric_cells(vars(event))
        self.rows_written[event.epoch] = row
        if event.epoch <= layout.TRAIN_METRICS_MAX_ROWS:
            self._set_block(sheet_cells.metric_row_cell(event.epoch), [row])
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
