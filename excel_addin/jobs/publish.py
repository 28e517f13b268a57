"""A run's events and files, from the training worker to Redis (``Publisher``, a training sink).

Each event the training emits goes to the run's stream (``keys.events``) as ``event_to_dict`` JSON with a
sequence number, so that the web side rebuilds the run's status line and metric rows from the stream alone
(steps at most every ``every`` seconds, and always the first, so a student sees training begin). After
each epoch, before its event, the run's files go to the run's hash (``keys.files``): the checkpoint, the
metrics, the curves and the log, then at the end every chart; the web side writes them into the owner's
folder, so worker and web need no shared disk. Paths in the events are the web side's (``shown``): a
student reads "Files in runs/mnist", never the worker's scratch folder.

Redis may go away mid-run: training goes on, what could not be sent waits in order (only the latest step
of a run of steps) and goes with the next event once Redis answers, or in ``finish``. A write that reached
Redis although its answer did not is sent again: the stream's sequence numbers let the reader skip it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from excel_addin.jobs import keys
from ml.events import BatchEnd, EpochEnd, RunEnded, RunStarted, Sink, event_to_dict
from ml.run_dir import CHART_NAMES, CHECKPOINT, CURVE_CHARTS, METRICS_CSV, METRICS_JSON, WORKER_LOG, RunDir

EPOCH_FILES = (CHECKPOINT, METRICS_CSV, METRICS_JSON, WORKER_LOG, *(f"{name}.png" for name in CURVE_CHARTS))
END_FILES = (CHECKPOINT, METRICS_CSV, METRICS_JSON, WORKER_LOG, *(f"{name}.png" for name in CHART_NAMES))
PATH_FIELDS = ("out_dir", "checkpoint")  # fields of the events that hold a path of the run's folder


class Publisher(Sink):
    """Sends a run's events and files to Redis in the order they happened."""

    def __init__(self, client: Any, run_id: str, run_dir: RunDir, shown: str, every: float = 0.5,
                 clock: Callable[[], float] = time.monotonic):  # fmt: skip
        self.client, self.run_id, self.run_dir, self.shown = client, run_id, run_dir, shown
        self.every, self.clock = every, clock
        self.outbox: list[tuple[str, Any]] = []  # ("event" | "step", (seq, json)) or ("files", names)
        self.seq = 0
        self.last_step_sent = -float("inf")
        self.sent_any_step = False
        self.error: Exception | None = None  # the last Redis error, None once everything is sent

    # ---- the sink ------------------------------------------------------------------------------------

    def on_start(self, event: RunStarted) -> None:
        self._queue_files((WORKER_LOG,))
        self._queue_event(event)

    def on_batch(self, event: BatchEnd) -> None:
        if self.sent_any_step and self.clock() - self.last_step_sent < self.every:
            return
        self.sent_any_step, self.last_step_sent = True, self.clock()
        self._queue_event(event)

    def on_epoch(self, event: EpochEnd) -> None:
        self._queue_files(EPOCH_FILES)
        self._queue_event(event)

    def on_end(self, event: RunEnded) -> None:
        self._queue_files(END_FILES)
        self._queue_event(event)

    # ---- the outbox ----------------------------------------------------------------------------------

    def _queue_event(self, event: Any) -> None:
        self.seq += 1
        kind = "step" if isinstance(event, BatchEnd) else "event"
        entry = (kind, (self.seq, json.dumps(self.relocated(event_to_dict(event)))))
        if kind == "step" and self.outbox and self.outbox[-1][0] == "step":
            self.outbox[-1] = entry  # a step not sent yet: only the latest counts
        else:
            self.outbox.append(entry)
        self.flush()

    def _queue_files(self, names: tuple[str, ...]) -> None:
        if self.outbox and self.outbox[-1][0] == "files":
            names = tuple(dict.fromkeys((*self.outbox.pop()[1], *names)))
        self.outbox.append(("files", names))

    def relocated(self, record: dict[str, Any]) -> dict[str, Any]:
        """An event's record with the run folder's paths as the web side names them."""
        here = str(self.run_dir.path)
        out = {k: _moved(v, here, self.shown) if k in PATH_FIELDS else v for k, v in record.items()}
        if isinstance(out.get("config"), dict) and "out_dir" in out["config"]:
            out["config"] = {**out["config"], "out_dir": self.shown}
        return out

    def flush(self) -> bool:
        """Send what waits, in order, until done (True) or Redis fails (False: it waits for the next try)."""
        errors = keys.redis_errors()
        while self.outbox:
            kind, payload = self.outbox[0]
            try:
                self._send_files(payload) if kind == "files" else self._send_event(*payload)
            except errors as error:
                self.error = error
                return False
            self.outbox.pop(0)
        self.error = None
        return True

    def finish(self, patience_s: float = 120.0, retry_s: float = 1.0) -> bool:
        """Send everything left, trying for up to ``patience_s`` while Redis is away; whether all went."""
        deadline = time.monotonic() + patience_s
        while not self.flush():
            if time.monotonic() >= deadline:
                return False
            time.sleep(retry_s)
        return True

    def _send_event(self, seq: int, text: str) -> None:
        stream = keys.events(self.run_id)
        with self.client.pipeline() as pipe:
            pipe.xadd(stream, {keys.EVENT_FIELD: text, b"seq": str(seq)})
            pipe.expire(stream, keys.RUN_TTL_S)
            pipe.execute()

    def _send_files(self, names: tuple[str, ...]) -> None:
        found = {name: self.run_dir.path / name for name in names}
        contents = {name: path.read_bytes() for name, path in found.items() if path.is_file()}
        if not contents:
            return
        with self.client.pipeline() as pipe:
            pipe.hset(keys.files(self.run_id), mapping=contents)
            pipe.incr(keys.version(self.run_id))
            for key in (keys.files(self.run_id), keys.version(self.run_id)):
                pipe.expire(key, keys.RUN_TTL_S)
            pipe.execute()


def _moved(value: Any, here: str, shown: str) -> Any:
    """A path inside ``here`` as the same path inside ``shown``; anything else as it is."""
    if isinstance(value, str) and (value == here or value.startswith(here.rstrip("/") + "/")):
        return shown + value[len(here) :]
    return value
