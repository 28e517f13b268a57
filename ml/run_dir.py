"""A training run's folder: where it is, what its files are called, writing them safely, reading them back.

Every file of a run lives in its folder under a fixed name (``RunDir.checkpoint``, ``.metrics_json``, the
charts, the worker's log), so whatever reads a run (prediction, the cell functions, the report, the sheet
sink) finds its files relative to the folder, never through paths stored at training time: a run folder
can be moved or copied. Files are written atomically (``atomic_path``): a crash, a Ctrl-C or a full disk
leaves the previous version, never half a file.
"""

from __future__ import annotations

import contextlib
import errno
import json
import math
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import kind_of

DEFAULT_RUN_DIR = "runs/mnist"
DRY_RUN_DIR = "runs/dry-run"  # a dry run must not replace the real run's model
CHECKPOINT = "model.pt"
METRICS_CSV = "metrics.csv"
METRICS_JSON = "metrics.json"
WORKER_LOG = "train_worker.log"
PROGRESS_JSON = "progress.json"  # the latest training events, for whoever shows a run live (ProgressFileSink)
REPORT = "report.xlsx"
# The per-epoch metric columns, in the order written to metrics.csv and to the Train sheet.
METRIC_COLUMNS = ("epoch", "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds")
TEST_COLUMNS = ("test_loss", "test_acc")  # missing (NaN; null in JSON) after an epoch not evaluated
# PNG charts: the curves are redrawn after every epoch, the others at the end of a run.
CURVE_CHARTS = ("loss_curves", "accuracy_curves")
FINAL_CHARTS = ("confusion_matrix", "misclassified")
CHART_NAMES = CURVE_CHARTS + FINAL_CHARTS


class RunDirError(ValueError):
    """The output folder cannot be used (names the folder and what to do)."""


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; on success it replaces ``path`` in one step.

    On an exception the temporary file is removed and ``path`` keeps its previous content. The temporary
    name keeps the suffix, so writers that look at it (matplotlib, torch) choose the right format. A full
    disk is said as such (``DiskFullError``, naming the file and its folder), whatever the writer raised.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except (OSError, RuntimeError) as error:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        if disk_full(error, path.parent):
            raise DiskFullError(path) from error
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


class DiskFullError(OSError):
    """A file could not be written because its disk is full (the message names the file and folder)."""

    def __init__(self, path: Path):
        where = f"cannot write {path.name} in {path.parent}"
        super().__init__(f"the disk is full: {where}; free some space there")
        self.errno = errno.ENOSPC


FULL_DISK_BYTES = 1 << 20  # less free space than this after a failed write: the disk was full


def disk_full(error: BaseException, folder: Path) -> bool:
    """Whether a write into ``folder`` failed for lack of space: ENOSPC or EDQUOT, or another error (torch's
    zip writer says "unexpected pos") on a disk with (almost) no space left."""
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    try:
        return shutil.disk_usage(folder).free < FULL_DISK_BYTES
    except OSError:
        return False


def is_inside(path: str | os.PathLike, folder: str | os.PathLike) -> bool:
    """Whether ``path`` is ``folder`` or lies inside it once links and ``..`` are resolved (a shared
    server keeps each user's files in their folder)."""
    real, root = os.path.realpath(path), os.path.realpath(folder)
    return real == root or real.startswith(root.rstrip(os.sep) + os.sep)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write a text file (UTF-8) atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def metric_row(raw: Any) -> dict[str, float] | None:
    """A per-epoch metrics row checked (every column a finite number, but the test columns of an epoch
    that was not evaluated, which are NaN; epoch whole), or None."""
    try:
        row = {c: math.nan if c in TEST_COLUMNS and raw[c] is None else float(raw[c]) for c in METRIC_COLUMNS}
    except (KeyError, TypeError, ValueError):
        return None
    required = [v for c, v in row.items() if c not in TEST_COLUMNS]
    if not all(math.isfinite(v) for v in required) or row["epoch"] != int(row["epoch"]):
        return None
    row["epoch"] = int(row["epoch"])
    return row


@dataclass(frozen=True)
class RunDir:
    """A run's folder and the names of its files."""

    path: Path

    def __init__(self, path: str | os.PathLike = DEFAULT_RUN_DIR):
        object.__setattr__(self, "path", Path(path))

    @property
    def checkpoint(self) -> Path:
        return self.path / CHECKPOINT

    @property
    def metrics_csv(self) -> Path:
        return self.path / METRICS_CSV

    @property
    def metrics_json(self) -> Path:
        return self.path / METRICS_JSON

    @property
    def worker_log(self) -> Path:
        return self.path / WORKER_LOG

    @property
    def progress(self) -> Path:
        return self.path / PROGRESS_JSON

    @property
    def report(self) -> Path:
        return self.path / REPORT

    def chart(self, name: str) -> Path:
        if name not in CHART_NAMES:
            raise ValueError(f"unknown chart {name!r}; charts: {', '.join(CHART_NAMES)}")
        return self.path / f"{name}.png"

    def charts(self) -> dict[str, Path]:
        """The charts this folder holds: name -> PNG path."""
        return {name: self.chart(name) for name in CHART_NAMES if self.chart(name).is_file()}

    def prepare(self) -> RunDir:
        """Create the folder and check it can be written, before any training time is spent."""
        where = self.path
        if where.exists() and not where.is_dir():
            raise RunDirError(
                f"output folder {where} is {kind_of(where)}, not a folder: choose another output folder"
            )
        try:
            where.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise RunDirError(
                f"cannot create the output folder {where} ({error.strerror or error}): "
                "choose a folder you can write to"
            ) from None
        try:
            with tempfile.TemporaryFile(dir=where):
                pass
        except OSError as error:
            raise RunDirError(
                f"the output folder {where} is not writable ({error.strerror or error}): "
                "choose a folder you can write to"
            ) from None
        return self

    def read_record(self) -> dict[str, Any] | None:
        """metrics.json as written by training: {"run": {...}, "epochs": [rows]}; None when absent or
        unreadable."""
        try:
            data = json.loads(self.metrics_json.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or not isinstance(data.get("run"), dict):
            return None
        if not isinstance(data.get("epochs"), list):
            return None
        return data

    def read_progress(self) -> dict[str, Any] | None:
        """progress.json as ``ml.sinks.ProgressFileSink`` writes it; None when absent or unreadable."""
        try:
            data = json.loads(self.progress.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) and isinstance(data.get("epochs"), list) else None

    def read_metrics(self) -> list[dict[str, float]]:
        """The per-epoch rows with finite values in every column ([] when there is no readable file)."""
        record = self.read_record()
        rows = [metric_row(raw) for raw in (record["epochs"] if record else [])]
        return [row for row in rows if row is not None]
