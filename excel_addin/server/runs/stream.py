"""A run seen through its Redis stream (``excel_addin.jobs.keys.events``): the training events the worker
sent, folded into the same record as progress.json holds (``{"started", "epochs", "batch", "ended"}``,
what ``ml.sinks.ProgressFileSink`` writes), so that ``files.from_record`` words it as for a run seen
through its files.

``Streams`` reads each run's stream once and then only its new entries (``XRANGE`` after the last id seen),
keeping the folded record in this web process; a process that starts (or restarts after a crash) reads
every stream from its first entry, so the rows it shows are the stream's, none lost and none twice. An
entry whose sequence number was seen already (a worker that sent it again, not knowing it had arrived) is
skipped.
"""

from __future__ import annotations

import collections
import json
import threading
from dataclasses import dataclass, field
from typing import Any

from excel_addin.jobs import keys

READ_COUNT = 1000  # entries per XRANGE
KEPT_RUNS = 1024  # the runs whose folded record a web process keeps


@dataclass
class RunEvents:
    """What a run's stream said so far: the folded record (None before its start), the last entry's id
    and time (Redis's clock), and the last sequence number."""

    record: dict[str, Any] | None = None
    last_id: bytes = b"0-0"
    last_time: float = 0.0
    seq: int = 0
    entries: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)  # one reader at a time


def fold(record: dict[str, Any] | None, event: dict[str, Any]) -> dict[str, Any] | None:
    """The record after ``event`` (an ``event_to_dict``): a start begins a new record; a step replaces
    the last step; an epoch adds a row (and ends the step); the end ends it."""
    kind = event.get("type")
    if kind == "RunStarted":
        return {"started": event, "epochs": [], "batch": None, "ended": None}
    if record is None:
        return None
    if kind == "BatchEnd":
        record["batch"] = event
    elif kind == "EpochEnd":
        record["epochs"].append(event)
        record["batch"] = None
    elif kind == "RunEnded":
        record["ended"] = event
    return record


def entry_time(entry_id: bytes) -> float:
    """When Redis added a stream entry (its id is ``<milliseconds>-<n>``)."""
    return int(entry_id.split(b"-", 1)[0]) / 1000.0


class Streams:
    """The runs' streams as this web process has read them (thread-safe; the oldest runs forgotten)."""

    def __init__(self, kept: int = KEPT_RUNS):
        self.kept = kept
        self._runs: collections.OrderedDict[str, RunEvents] = collections.OrderedDict()
        self._lock = threading.Lock()

    def read(self, client: Any, run_id: str) -> tuple[dict[str, Any] | None, float]:
        """The run's record (a copy) with whatever the stream gained since the last read, and the time of
        its last entry (0: none yet)."""
        with self._lock:
            known = self._runs.pop(run_id, None) or RunEvents()
            self._runs[run_id] = known
            while len(self._runs) > self.kept:
                self._runs.popitem(last=False)
        with known.lock:
            while True:
                start = b"(" + known.last_id if known.entries else b"-"
                entries = client.xrange(keys.events(run_id), min=start, count=READ_COUNT)
                for entry_id, fields in entries:
                    self._add(known, entry_id, fields)
                if len(entries) < READ_COUNT:
                    break
            record = known.record
            copied = None if record is None else {**record, "epochs": list(record["epochs"])}
            return copied, known.last_time

    @staticmethod
    def _add(known: RunEvents, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        known.last_id, known.last_time = entry_id, entry_time(entry_id)
        known.entries += 1
        seq = int(fields.get(b"seq", b"0"))
        if seq and seq <= known.seq:
            return  # sent twice
        known.seq = max(known.seq, seq)
        try:
            known.record = fold(known.record, json.loads(fields[keys.EVENT_FIELD]))
        except (KeyError, ValueError, TypeError, AttributeError):
            pass  # not an event of ours: the stream is a worker's, it only holds events
