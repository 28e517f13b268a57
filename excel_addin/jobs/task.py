"""The job a training worker runs for one Train press: ``train_job(run_id)`` (RQ calls it by this name).

The web side queued the run with its settings in ``keys.run(run_id)``: a TrainConfig whose ``out_dir`` is
the owner's folder on the web side. The job trains into a scratch folder of this machine instead
(``Slot.scratch``; removed afterwards), with this slot's device for a run that says ``auto`` and its
threads, and sends the events and files to Redis as it goes (``publish.Publisher``): the web side puts
them into the owner's folder. Stop reaches the job through ``keys.stop(run_id)``, watched by a thread
(``StopWatch``) that also ends a run at the server's time limit; a worker asked to shut down stops its
run the same way. Settings that cannot work here (no CUDA on this machine, ...) fail the job before it
trains, with the reason kept in the run's ``error`` for its owner.
"""

from __future__ import annotations

import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from excel_addin import status_line
from excel_addin.jobs import keys
from excel_addin.jobs.publish import Publisher
from ml.config import TrainConfig
from ml.run_dir import RunDir

STOP_POLL_S = 0.25  # how often a running job looks for Stop


@dataclass(frozen=True)
class Slot:
    """What a training slot gives its jobs: ``device`` for a run whose device is ``auto``; ``threads``: CPU
    threads per run (0: torch's default); ``scratch``: where runs train (None: the system's temp folder)."""

    device: str = "auto"
    threads: int = 0
    scratch: Path | None = None


SLOT = Slot()  # this process's slot (``use``); a plain ``rq worker`` trains with the defaults
_current: dict[str, threading.Event] = {}  # the running job's stop event, for a worker shutting down


def use(slot: Slot) -> None:
    """Make ``slot`` what this process's jobs train with (the slot process calls it once)."""
    global SLOT
    SLOT = slot


def stop_current() -> None:
    """Ask the job running in this process (if any) to stop after its batch: the worker shuts down."""
    for event in list(_current.values()):
        event.set()


class RunRefusedError(RuntimeError):
    """The run cannot train on this worker (its ``error`` says why); RQ records the job as failed."""


class StopWatch:
    """A thread that sets ``stopped`` when Stop was pressed for the run (``keys.stop``), when it has trained
    for ``minutes`` (saying so to its workbook), or when the worker shuts down."""

    def __init__(self, client: Any, run_id: str, spec: dict[str, str], minutes: float | None):
        self.client, self.run_id, self.spec, self.minutes = client, run_id, spec, minutes
        self.stopped, self._done = threading.Event(), threading.Event()
        self.deadline = None if minutes is None else time.monotonic() + minutes * 60
        _current[run_id] = self.stopped
        self._thread = threading.Thread(target=self._watch, name=f"stop-{run_id}", daemon=True)
        self._thread.start()

    def should_stop(self) -> bool:
        return self.stopped.is_set()

    def _watch(self) -> None:
        while not self._done.wait(STOP_POLL_S):
            if self.deadline is not None and time.monotonic() >= self.deadline:
                self.deadline = None
                self.stopped.set()
                self._say(status_line.time_limit_text(self.minutes))
            try:
                if self.client.exists(keys.stop(self.run_id)):
                    self.stopped.set()
            except keys.redis_errors():
                continue  # Redis away: the run goes on; Stop works again once it is back

    def _say(self, text: str) -> None:
        try:
            keys.say(self.client, self.spec["owner"], self.spec["workbook"], text)
        except keys.redis_errors():
            pass

    def close(self) -> None:
        self._done.set()
        self._thread.join()
        _current.pop(self.run_id, None)


def read_spec(client: Any, run_id: str) -> dict[str, str]:
    """The run as the web side queued it (owner, workbook, config, minutes)."""
    raw = client.hgetall(keys.run(run_id))
    if not raw:
        raise RunRefusedError(f"run {run_id} is not in Redis any more (expired, removed): press Train again")
    return {k.decode(): v.decode() for k, v in raw.items()}


def local_config(config: TrainConfig, scratch: Path, slot: Slot) -> TrainConfig:
    """The run as it trains here: into ``scratch``, on the slot's device when it says auto, with the
    slot's threads unless it names its own."""
    device = slot.device if config.device == "auto" else config.device
    return replace(config, out_dir=str(scratch), device=device, threads=config.threads or slot.threads)


def train_job(run_id: str) -> str:
    """Train the run ``run_id``; how it ended (completed, stopped, failed)."""
    import rq

    client = rq.get_current_job().connection
    spec = read_spec(client, run_id)
    config = TrainConfig.from_json(spec["config"])
    minutes = float(spec["minutes"]) if spec.get("minutes") else None
    with tempfile.TemporaryDirectory(prefix=f"gradsheet-{run_id}-", dir=SLOT.scratch) as scratch:
        here = local_config(config, Path(scratch) / "run", SLOT)
        if config.resume:
            _fetch_checkpoint(client, run_id, RunDir(here.out_dir))
        publisher = Publisher(client, run_id, RunDir(here.out_dir), config.out_dir)
        watch = StopWatch(client, run_id, spec, minutes)
        try:
            return _train(client, run_id, here, publisher, watch.should_stop)
        finally:
            watch.close()
            publisher.finish()


def _train(client: Any, run_id: str, config: TrainConfig, publisher: Publisher, should_stop) -> str:
    """``ml.train.train`` with the run's log and the publisher; a run refused before training is a
    ``RunRefusedError`` with the reason (paths as its owner names them) kept in the run's record."""
    from ml.sinks import ConsoleSink
    from ml.train import train

    run_dir = RunDir(config.out_dir).prepare()
    with open(run_dir.worker_log, "a", encoding="utf-8") as log:
        try:
            ended = train(config, [ConsoleSink(stream=log, every=25), publisher], should_stop=should_stop)
        except ValueError as error:
            reason = str(error).replace(str(run_dir.path), publisher.shown)
            client.hset(keys.run(run_id), "error", reason)
            raise RunRefusedError(reason) from None
    return ended.status


def _fetch_checkpoint(client: Any, run_id: str, run_dir: RunDir) -> None:
    """A resumed run's checkpoint, which the web side put into the run's files."""
    data = client.hget(keys.files(run_id), run_dir.checkpoint.name)
    if data:
        run_dir.prepare().checkpoint.write_bytes(data)
