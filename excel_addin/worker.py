"""The training process that both faces start: ``python -m excel_addin.worker --config FILE ...``; and, with
``--redis URL``, a machine's training workers for the distributed add-in server.

One command, two modes, because both are "the process that trains for a Train press": ``--config`` is one
run in a process of its own (the workbook's Train button, the default server), ``--redis`` keeps warm slots
that take runs from the server's queue (``excel_addin.jobs.supervisor``: a sub-package, since that mode
needs RQ and Redis, which this mode must not import).

Excel must not wait for a training run, so the Train button (``excel_addin.buttons.train``) only validates
the settings, takes the run lock and calls ``launch``, which writes the run's settings into a hand-off file
(``handoff_file``) and starts this process detached. The process reads the hand-off file (and deletes it),
takes over the run lock, finds the open workbook again by its full name (the workbook's face) or gets none
(the add-in server's runs, shown through their files), then runs ``ml.train.train`` with the Train-sheet
sink (``excel_addin.sheets.sheet_sink``, when there is a workbook), a console log and progress.json besides
the metrics files and checkpoint that training always writes. If the workbook is closed mid-run, the sheet
sink goes quiet and training goes on: the files in the output folder are complete either way. The Stop
button's stop request ends it after the current batch; the run lock is released however the run ends.

``run_with_lock`` is the whole worker minus process start-up, so tests run it in a thread against an
in-process Book; ``main`` is the process entry point. Torch is imported only by the process that trains.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any

from excel_addin import status_line
from excel_addin.sheets import layout
from excel_addin.sheets.train_sheet import status_cells
from ml import run_lock
from ml.cli import whole
from ml.config import TrainConfig
from ml.run_dir import RunDir

MODULE = "excel_addin.worker"  # python -m MODULE
ROOT = Path(__file__).resolve().parents[1]  # the folder holding excel_addin and ml


# ---- the launching side (in Excel's Python, or the add-in server) ----------------------------------------


def handoff_file(token: str) -> Path:
    """Where ``launch`` leaves a run's settings for the worker it starts (one file per run lock token)."""
    return run_lock.state_dir() / f"config-{token}.json"


def worker_python() -> str:
    """The interpreter for the worker: this one, but python.exe rather than pythonw.exe on Windows."""
    exe = Path(sys.executable)
    if exe.name.lower() == "pythonw.exe" and (exe.parent / "python.exe").exists():
        return str(exe.parent / "python.exe")
    return str(exe)


def command(config_file: Path, token: str, book: Any | None) -> list[str]:
    """The worker's command line: ``book`` is the workbook it writes into (found by its full name)."""
    args = [worker_python(), "-m", MODULE, "--config", str(config_file), "--token", token]
    return args + (["--book", str(book.fullname)] if book is not None else [])


def launch(
    config: TrainConfig, book: Any | None, lock: run_lock.RunLock, env: dict[str, str] | None = None
) -> subprocess.Popen:
    """Start the worker detached from Excel (or the server); its output goes to the run's log file.

    ``book``: the workbook the worker writes into, or None (the add-in server's runs, shown through their
    files). ``env``: variables to add to the worker's environment. The lock is handed to the worker.
    """
    config_file = handoff_file(lock.token)
    config_file.write_text(config.to_json(), encoding="utf-8")
    env = {**os.environ, **(env or {})}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    options: dict[str, Any] = {}
    if sys.platform == "win32":
        detached = subprocess.DETACHED_PROCESS | subprocess.CREATE_NEW_PROCESS_GROUP  # outlives the macro
        options["creationflags"] = detached | subprocess.CREATE_NO_WINDOW  # no console window
    else:
        options["start_new_session"] = True
    with open(RunDir(config.out_dir).worker_log, "ab") as log:
        process = subprocess.Popen(
            command(config_file, lock.token, book),
            cwd=str(ROOT),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            **options,
        )
    run_lock.hand_over(lock, process.pid)
    return process


# ---- the worker process ------------------------------------------------------------------------------


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
):
    """Train with the sheet sink (when there is a workbook), a console log and progress.json (which the
    add-in server streams to TRAIN_PROGRESS); the metrics files and charts are always written. Returns
    the run's ``ml.events.RunEnded``."""
    from excel_addin.sheets.sheet_sink import SheetSink
    from ml.sinks import ConsoleSink, ProgressFileSink
    from ml.train import train

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
        for address, value in status_cells(status_line.failed_to_start(message)).items():
            sheet[address].value = value
    except Exception:  # noqa: BLE001 - the workbook is gone: the log has the message
        pass


def run_with_lock(
    config: TrainConfig,
    lock: run_lock.RunLock,
    book: Any | None = None,
    progress_every: float = 1.0,
    log=None,
):
    """The worker's job: train until done or asked to stop, then release the lock. Returns the run's
    ``RunEnded``, or None when it failed before training (the status cell and the log say why)."""
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
        prog=f"python -m {MODULE}",
        description="Train the MNIST CNN for a workbook: progress goes to its Train sheet, results to files "
        "(--config); or serve trainings from a distributed add-in server's queue (--redis).",
    )
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--config", help="JSON file with the TrainConfig fields: train this one run")
    mode.add_argument(
        "--redis", metavar="URL", help="the add-in server's Redis (redis://HOST:6379/0): keep warm slots "
        "that train the runs pressed on it, until stopped (SIGTERM, Ctrl-C)",
    )  # fmt: skip
    parser.add_argument("--book", help="full name of the open workbook to write progress into")
    parser.add_argument(
        "--token", help="the run lock's token (given by the Train button, which took the lock)"
    )
    parser.add_argument("--progress-every", type=float, default=1.0, help="seconds between progress writes")
    queue = parser.add_argument_group("with --redis")
    queue.add_argument("--slots", type=whole(1), help="trainings at once (default: 4 per GPU, else 1)")
    queue.add_argument(
        "--device",
        default="auto",
        help="auto (every GPU, else the CPU), cpu, cuda, cuda:N or mps (default auto)",
    )
    queue.add_argument("--threads", type=whole(0), help="CPU threads per training (default: cores / slots)")
    queue.add_argument("--scratch", type=Path, help="where runs train before their files go to the server")
    queue.add_argument("--name", help="this machine's name in the queue's tools (default: its host name)")
    return parser


def _lock_for(args: argparse.Namespace, config: TrainConfig) -> run_lock.RunLock | None:
    """The run lock this process trains under: the one the Train button took and handed over (None when
    it is gone: the run was cancelled), or, run by hand without ``--token``, a fresh one."""
    if not args.token:
        return run_lock.acquire(config.out_dir, args.book)
    lock = run_lock.owned(args.token, config.out_dir)
    return None if lock is None else run_lock.hand_over(lock, os.getpid())


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.redis:
        from excel_addin.extras import require

        require("server", "python -m excel_addin.worker --redis")  # RQ and Redis come with that extra
        from excel_addin.jobs import supervisor

        return supervisor.serve(args)
    config_file = Path(args.config)
    try:
        config = TrainConfig.from_json(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError) as error:
        print(f"error: bad --config {config_file}: {error}", file=sys.stderr)
        return 2
    if args.token and config_file == handoff_file(args.token):
        config_file.unlink(missing_ok=True)  # the hand-off file that launch wrote for this run
    try:
        lock = _lock_for(args, config)
    except run_lock.RunLockError as error:
        print(f"error: {error}", file=sys.stderr)
        return 3
    if lock is None:
        print("error: the run lock is gone (the run was cancelled); nothing to do", file=sys.stderr)
        return 2
    book = attach_book(args.book) if args.book else None
    from ml.train import stop_on_sigterm

    stop_on_sigterm()
    ended = run_with_lock(config, lock, book, progress_every=args.progress_every)
    return 1 if ended is None or ended.status == "failed" else 0


if __name__ == "__main__":
    sys.exit(main())
