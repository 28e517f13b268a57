"""A run's files, from Redis into its owner's folder on the web side (the distributed mode's half of
``excel_addin.jobs.publish``): the checkpoint, metrics, charts and log the worker shipped, and progress.json
rebuilt from the run's events, so the folder reads as an embedded run's does (CLASSIFY_* cells, the report,
``files.latest_run`` after Redis forgot the run).

A web process writes them when the run's file version (counted up by each shipment) is newer than what it
last wrote, and progress.json when the events moved on to another epoch or to the end; each file
atomically (two processes writing the same version write the same bytes). Only the names a worker ships
are written, each straight into the run's own folder, whatever a hash holds besides.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from excel_addin.jobs import keys
from excel_addin.jobs.publish import END_FILES
from ml.run_dir import PROGRESS_JSON, RunDir, atomic_path, atomic_write_text


class Delivery:
    """Which file version of each run this web process has written (thread-safe)."""

    def __init__(self) -> None:
        self._written: dict[str, tuple[int, tuple]] = {}  # run id -> (file version, record's stage)
        self._lock = threading.Lock()

    def bring(self, client: Any, run_id: str, out_dir: Path, record: dict[str, Any] | None) -> bool:
        """Write the run's files into ``out_dir`` if Redis holds a newer version than this process wrote,
        with progress.json from ``record``; whether it wrote."""
        version = int(client.get(keys.version(run_id)) or 0)
        stage = () if record is None else (len(record["epochs"]), bool(record.get("ended")))
        with self._lock:
            written_version, written_stage = self._written.get(run_id, (0, ()))
            if version <= written_version and stage == written_stage:
                return False
        run_dir = RunDir(out_dir).prepare()
        if version > written_version:
            contents = client.hmget(keys.files(run_id), list(END_FILES))
            for name, data in zip(END_FILES, contents, strict=True):
                if data is not None:
                    with atomic_path(run_dir.path / name) as tmp:
                        tmp.write_bytes(data)
        if record is not None:
            write_progress(run_dir, record)
        with self._lock:
            self._written[run_id] = (version, stage)
        return True

    def forget(self, run_id: str) -> None:
        with self._lock:
            self._written.pop(run_id, None)


def write_progress(run_dir: RunDir, record: dict[str, Any]) -> None:
    """progress.json as ``ml.sinks.ProgressFileSink`` writes it, from a run's folded events."""
    atomic_write_text(run_dir.path / PROGRESS_JSON, json.dumps(record))
