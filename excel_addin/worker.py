"""The training process behind the Train button: ``python -m excel_addin.worker --config FILE ...``.

Excel must not wait for a training run, so the Train macro only validates the settings, takes the run lock
and starts this process. It finds the open workbook again by its full name, then runs ``ml.train.train``
with the Train-sheet sink (``excel_addin.sheets.sheet_sink``) besides the metrics files and checkpoint that
training always writes, and progress.json. Started by the add-in server (``excel_addin.server``), it gets
no workbook: the server streams progress.json and the metrics files to the workbook instead. If the
workbook is closed mid-run, the sheet sink goes quiet and training goes on: the files in the output folder
are complete either way. The Stop button's stop request ends it after the current batch; the run lock the
Train macro took is handed to this process and released however the run ends.

``run_with_lock`` is the whole worker minus process start-up, so tests run it in a thread against an
in-process Book; ``main`` is the process entry point.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from excel_addin.sheets import layout
from excel_addin.sheets.sheet_sink import SheetSink
from excel_addin.sheets.train_sheet import status_cells
from ml import run_lock
from ml.config import TrainConfig
from ml.events import RunEnded
from ml.run_dir import RunDir
from ml.sinks import ConsoleSink, ProgressFileSink
from ml.train import stop_on_sigterm, train


def attach_book(fullname: str, log=sys.stderr) -> Any | None:
    """The open workbook with this full name (or file name) in any running Excel, else None."""
    try:
        import xlwings as xw

        for app in xw.apps:
            for book in app.books:
                if fullname in (book.fullname, book.name):
                    return book
    except Exception as error:  # noqa: BLE001 - no Excel on this machine, or it is shutting down
        print(f"gradsheet: cannot reach Excel ({error}); training writes its files only", file=log)
        return None
    print(f"gradsheet: workbook {fullname!r} is not open; training writes its files only", file=log)
    return None


def run(
    config: TrainConfig,
    book: Any | None = None,
    lock: run_lock.RunLock | None = None,
    progress_every: float = 1.0,
    log=None,
) -> RunEnded:
    """Train with the sheet sink (when there is a workbook), a console log and progress.json (which the
    add-in server streams to TRAIN_PROGRESS); the metrics files and charts are always written."""
    sinks = [ConsoleSink(stream=log or sys.stderr, every=25), ProgressFileSink(RunDir(config.out_dir))]
    if book is not None:
        sinks.append(SheetSink(book, progress_every=progress_every))
    return train(config, sinks, lock=lock)


def _report_failure(book: Any | None, message: str) -> None:
    """Put a failure that happened before training started into the status cell (best effort)."""
    if book is None:
        return
    try:
        sheet = book.sheets[layout.TRAIN_SHEET]
        for address, value in status_cells(f"Failed: {message}").items():
            sheet[address].value = value
    except Exception:  # noqa: BLE001 - the workbook is gone: the log has the message
        pass


def run_with_lock(
    config: TrainConfig,
    lock: run_lock.RunLock,
    book: Any | None = None,
    progress_every: float = 1.0,
    log=None,
) -> RunEnded | None:
    """The worker's job: train until done or asked to stop, then release the lock."""
    try:
        return run(config, book, lock, progress_every=progress_every, log=log)
    except Exception as error:  # noqa: BLE001 - bad settings or data: say so where the user looks
        _report_failure(book, f"{type(error).__name__}: {error}")
        print(traceback.format_exc(), file=log or sys.stderr)
        return None
    finally:
        run_lock.release(lock)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m excel_addin.worker",
        description="Train the MNIST CNN for a workbook: progress goes to its Train sheet, results to files.",
    )
    parser.add_argument("--config", required=True, help="JSON file with the TrainConfig fields")
    parser.add_argument("--book", help="full name of the open workbook to write progress into")
    parser.add_argument(
        "--token", help="the run lock's token (given by the Train macro, which took the lock)"
    )
    parser.add_argument("--progress-every", type=float, default=1.0, help="seconds between progress writes")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config_file = Path(args.config)
    try:
        config = TrainConfig.from_json(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError) as error:
        print(f"error: bad --config {config_file}: {error}", file=sys.stderr)
        return 2
    if args.token and config_file == run_lock.state_dir() / f"config-{args.token}.json":
        config_file.unlink(missing_ok=True)  # the hand-off file the Train macro wrote for this run
    try:
        if args.token:
            lock = run_lock.owned(args.token, config.out_dir)
            if lock is None:
                print("error: the run lock is gone (the run was cancelled); nothing to do", file=sys.stderr)
                return 2
            lock = run_lock.hand_over(lock, os.getpid())
        else:
            lock = run_lock.acquire(config.out_dir, args.book)
    except run_lock.RunLockError as error:
        print(f"error: {error}", file=sys.stderr)
        return 3
    book = attach_book(args.book) if args.book else None
    stop_on_sigterm()
    ended = run_with_lock(config, lock, book, progress_every=args.progress_every)
    if ended is None or ended.status == "failed":
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
