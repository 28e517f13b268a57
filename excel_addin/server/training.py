"""The server's training queue: a limited number of trainings at once, the others wait their turn.

One ``TrainingQueue`` per server process takes every workbook's Train. It has a number of slots (the
``--max-trainings`` option; by default ``TRAININGS_PER_GPU`` per GPU, else one on the CPU). A run that
finds a free slot starts at once: its worker process (``python -m excel_addin.worker``, the same as the
workbook's Train button's) is launched from the calling thread, never from the server's event loop, and a
watcher thread waits for it to end, frees its slot and starts the next run in line. Each queued run already
holds the run lock of its output folder (taken by ``excel_addin.buttons.train``), so nothing else can
start training into that folder while it waits.

The queue lives in memory: a server restart forgets runs that were waiting (their locks go stale and are
taken over), while runs already training go on in their own processes and keep writing their files.
"""

from __future__ import annotations

import functools
import os
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from excel_addin import status_line, worker
from excel_addin.server.options import TRAININGS_PER_GPU
from ml import run_lock
from ml.config import TrainConfig
from ml.run_dir import RunDir

Launch = Callable[..., subprocess.Popen]


@dataclass(frozen=True)
class Slot:
    """A place for one training at a time; ``gpu``: the one CUDA device its trainings see (None: all)."""

    index: int
    gpu: int | None = None

    def env(self) -> dict[str, str]:
        return {} if self.gpu is None else {"CUDA_VISIBLE_DEVICES": str(self.gpu)}


@dataclass(eq=False)
class Job:
    """One workbook's Train on this server, from the queue to the end of its worker process."""

    workbook: str
    config: TrainConfig
    lock: run_lock.RunLock
    state: str = "queued"  # queued | running | ended | cancelled | failed
    process: subprocess.Popen | None = None
    slot: Slot | None = None
    error: str | None = None
    created: float = field(default_factory=time.time)

    @property
    def run_dir(self) -> RunDir:
        return RunDir(self.config.out_dir)


class TrainingQueue:
    """At most ``len(slots)`` trainings at once; the rest wait in order. Thread-safe."""

    def __init__(self, slots: list[Slot], threads: int = 0, launch: Launch = worker.launch):
        self.slots = tuple(slots)
        self.threads = threads  # CPU threads per training (0: torch's default)
        self.launch = launch
        self._lock = threading.Lock()
        self._free = list(self.slots)
        self._waiting: list[Job] = []
        self._running: list[Job] = []
        self._latest: dict[str | None, Job] = {}  # workbook id (None: any) -> its latest job

    def submit(self, job: Job) -> Job:
        """Queue a job; it starts at once when a slot is free (``job.state`` says which)."""
        with self._lock:
            self._latest[job.workbook] = self._latest[None] = job
            self._waiting.append(job)
            self._start_waiting()
        return job

    def latest(self, workbook: str | None) -> Job | None:
        """The workbook's latest job (None: the latest job of any workbook)."""
        with self._lock:
            return self._latest.get(workbook)

    def active(self, workbook: str) -> Job | None:
        """The workbook's job while it waits or trains."""
        job = self.latest(workbook)
        return job if job is not None and job.state in ("queued", "running") else None

    def position(self, job: Job) -> int | None:
        """1 for the next job to start, 2 for the one after, ...; None when the job does not wait."""
        with self._lock:
            return self._waiting.index(job) + 1 if job in self._waiting else None

    def counts(self) -> dict[str, int]:
        """How busy the server is: trainings running, waiting, and the slots."""
        with self._lock:
            return {"running": len(self._running), "queued": len(self._waiting), "slots": len(self.slots)}

    def cancel(self, workbook: str) -> Job | None:
        """Take the workbook's waiting job out of the queue (its lock released); None when none waits."""
        with self._lock:
            job = next((j for j in self._waiting if j.workbook == workbook), None)
            if job is not None:
                self._waiting.remove(job)
                job.state = "cancelled"
                run_lock.release(job.lock)
            return job

    def _start_waiting(self) -> None:
        """Start waiting jobs while slots are free (called with the lock held)."""
        while self._free and self._waiting:
            self._start(self._waiting.pop(0), self._free.pop(0))

    def _start(self, job: Job, slot: Slot) -> None:
        job.run_dir.progress.unlink(missing_ok=True)  # the last run's progress must not show as this one's
        config = (
            job.config
            if job.config.threads or not self.threads
            else replace(job.config, threads=self.threads)
        )
        try:
            job.process = self.launch(config, None, job.lock, slot.env())
        except Exception as error:  # noqa: BLE001 - reported to the workbook, the slot stays usable
            run_lock.release(job.lock)
            job.state, job.error = "failed", status_line.not_launched(error)
            self._free.append(slot)
            return
        job.state, job.slot = "running", slot
        self._running.append(job)
        watcher = threading.Thread(
            target=self._watch, args=(job,), name=f"gradsheet-{job.workbook}", daemon=True
        )
        watcher.start()

    def _watch(self, job: Job) -> None:
        """Wait for the job's process to end, then free its slot for the next job."""
        job.process.wait()
        with self._lock:
            job.state = "ended"
            self._running.remove(job)
            self._free.append(job.slot)
            self._start_waiting()


def default_slots(max_trainings: int | None, gpus: int) -> list[Slot]:
    """``max_trainings`` slots (default: TRAININGS_PER_GPU per GPU, else one); with several GPUs, slot k
    sees GPU k mod gpus, so the trainings spread over them."""
    count = max_trainings or max(gpus * TRAININGS_PER_GPU, 1)
    return [Slot(k, k % gpus if gpus > 1 else None) for k in range(count)]


def default_threads(slots: int, gpus: int) -> int:
    """CPU threads per training: the cores shared among CPU trainings; 0 (torch's default) otherwise."""
    return max(1, (os.cpu_count() or 1) // slots) if gpus == 0 and slots > 1 else 0


@functools.cache
def queue() -> TrainingQueue:
    """This server's queue, set up from its options on first use."""
    import torch

    from excel_addin.server.options import options

    gpus = torch.cuda.device_count()
    slots = default_slots(options().max_trainings, gpus)
    return TrainingQueue(slots, options().threads or default_threads(len(slots), gpus))


def waiting_text(position: int, queue: TrainingQueue) -> str:
    """The status line of a waiting job."""
    counts = queue.counts()
    return status_line.waiting_text(position, counts["queued"], counts["slots"])
