"""Train the MNIST CNN from the command line: ``python -m ml.train [--preset fast] [--run-dir DIR] ...``.

The options are the training settings (``ml.config``: one flag per setting, with its default and bounds
in ``--help``) plus ``--stop-file``. They are checked before torch is imported, so a bad flag or value is
refused at once, with a short message (``ml.cli``). The run itself is ``ml.training.train``; it stays
importable from here as ``ml.train.train`` (torch loads on first use).

A dry run (``--dry-run``: a couple of batches into runs/dry-run) ends with a "Set-up OK" line.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from . import run_lock
from .cli import Parser, fail
from .config import TrainConfig, add_arguments, config_from_values, presets_help
from .run_dir import DRY_RUN_DIR

PROG = "python -m ml.train"
RENAMED = {"--out": "--run-dir (the run's folder)", "--out-dir": "--run-dir (the run's folder)"}


def __getattr__(name: str):
    """``ml.train.train``: the training run (``ml.training.train``), imported on first use so that the
    command line answers without loading torch."""
    if name == "train":
        from .training import train

        return train
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def stop_on_sigterm() -> None:
    """Make ``kill PID`` (SIGTERM) stop a run as Ctrl-C does: after the current batch, with the last
    finished epoch's checkpoint kept and the run's files saying "stopped" (not "running"). For a process's
    main thread, where signal handlers run."""

    def handler(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def stop_file_checker(path: str | Path) -> Callable[[], bool]:
    """A should_stop that turns True once ``path`` exists. The file is the caller's: never deleted here."""
    p = Path(path)
    return p.exists


def build_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog=PROG,
        description=f"Train the MNIST CNN (real MNIST, offline). Presets: {presets_help()}.",
        renamed=RENAMED,
    )
    add_arguments(p)
    p.add_argument(
        "--stop-file",
        metavar="FILE",
        help="stop cleanly after the current batch once this file exists (it must not exist at the start; "
        "it is never deleted)",
    )
    return p


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The TrainConfig of parsed arguments: preset values, then the options given."""
    given = {k: v for k, v in vars(args).items() if k != "stop_file"}
    config = config_from_values(given)
    if config.dry_run and "out_dir" not in given:
        config = replace(config, out_dir=DRY_RUN_DIR)  # never replace the real run's model
    return config


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as error:
        parser.error(str(error))
    should_stop = None
    if args.stop_file:
        stop = Path(args.stop_file)
        if stop.exists():
            return fail(
                PROG,
                f"the stop file {stop} already exists, so the run would stop at once; "
                "remove it or choose another --stop-file",
            )
        should_stop = stop_file_checker(stop)
    stop_on_sigterm()
    from .sinks import ConsoleSink  # only now: the run's modules load torch (seconds)
    from .training import train

    try:
        ended = train(config, [ConsoleSink()], should_stop)
    except (ValueError, FileNotFoundError, run_lock.RunLockError) as exc:
        return fail(PROG, str(exc))
    return 1 if ended.status == "failed" else 0


if __name__ == "__main__":
    sys.exit(main())
