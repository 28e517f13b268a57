"""The run book of one machine (the default): a queue in this process, trainings in worker processes.

It has a number of slots (``--max-trainings``; by default ``TRAININGS_PER_GPU`` per GPU, else one). A run
that finds a free slot starts at once: its worker process (``python -m excel_addin.worker``, the same as the
workbook's Train button's) is launched from the calling thread, never from the server's event loop, and a
watcher thread waits for it to end (stopping it when it outlasts ``Limits.minutes``), frees its slot and
starts the next run in line. Each queued run already holds the run lock of its output folder (taken by
``excel_addin.buttons.train``), so nothing else can train into that folder while it waits.

The queue is written to a journal file on every change. A server that restarts reads it back: a run that
was waiting is told plainly that it must be pressed again (its lock is released), and a run still training
in its own process is adopted: it keeps its slot until it ends and Stop reaches it.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import psutil

from excel_addin import slots, status_line, worker
from excel_addin.server.progress import Progress
from excel_addin.server.runs import files
from excel_addin.server.runs.base import (
    CANCELLED,
    ENDED,
    FAILED,
    PER_USER,
    QUEUED,
    RUNNING,
    Refused,
    RunBook,
    RunKey,
    folder_keys,
    run_folder,
)
from ml import run_lock
from ml.config import TrainConfig
from ml.run_dir import RunDir, atomic_write_text

JOURNAL = ".server/jobs.json"  # under the runs folder (no user id starts with a dot)


@dataclass(frozen=True)
class Slot:
    """A place for one training at a time; ``gpu``: the one CUDA device its trainings see (None: all)."""

    index: int
    gpu: int | None = None

    def env(self) -> dict[str, str]:
        return {} if self.gpu is None else {"CUDA_VISIBLE_DEVICES": str(self.gpu)}


@dataclass(frozen=True)
class Limits:
    """``per_owner``: trainings a user may have queued or running (None: any number, as on a one-person
    server); ``queue``: waiting trainings at most (None: no cap); ``minutes``: a run is stopped after this
    long (None: never)."""

    per_owner: int | None = None
    queue: int | None = None
    minutes: float | None = None


@dataclass(eq=False)
class Job:
    """One workbook's Train on this server, from the queue to the end of its worker process."""

    key: RunKey
    config: TrainConfig
    lock: run_lock.RunLock
    state: str = QUEUED
    process: Any = None  # the worker's Popen, or the psutil.Process of a run adopted after a restart
    slot: Slot | None = None
    error: str | None = None
    created: float = field(default_factory=time.time)
    started: float | None = None

    @property
    def run_dir(self) -> RunDir:
        return RunDir(self.config.out_dir)

    def record(self) -> dict[str, Any]:
        """What the journal keeps of the job."""
        return {"key": list(self.key), "config": self.config.to_json(), "token": self.lock.token,
                "state": self.state, "created": self.created}  # fmt: skip


@dataclass(frozen=True)
class Notice:
    """What a button said to a workbook (a refusal, a stop request), shown until something newer."""

    text: str
    progress: float | None
    time: float


class LocalRuns(RunBook):
    """At most ``len(slots)`` trainings at once; the rest wait in order. Thread-safe."""

    def __init__(self, root: Path, slots: list[Slot], threads: int = 0, limits: Limits = Limits(),
                 launch=worker.launch, journal: bool = True):  # fmt: skip
        self.root, self.slots, self.limits, self.launch = root, tuple(slots), limits, launch
        self.threads = threads  # CPU threads per training (0: torch's default)
        self.journal = root / JOURNAL if journal else None
        self._lock = threading.RLock()
        self._free = list(self.slots)
        self._waiting: list[Job] = []
        self._running: list[Job] = []
        self._latest: dict[RunKey, Job] = {}
        self._notices: dict[RunKey, Notice] = {}
        if self.journal is not None:
            self._recover()

    @staticmethod
    def from_options(options) -> LocalRuns:
        """The run book a server with these ``options`` (``excel_addin.server.options``) uses."""
        import torch

        gpus = torch.cuda.device_count()
        slots = default_slots(options.max_trainings, gpus)
        per_owner = PER_USER if options.shared else None
        limits = Limits(per_owner, options.cap("max_queue"), options.cap("max_minutes"))
        return LocalRuns(options.runs, slots, options.threads or default_threads(len(slots), gpus), limits)

    # ---- Train and Stop -----------------------------------------------------------------------------

    def refusal(self, key: RunKey) -> str | None:
        """Why a new run of ``key``'s owner cannot be queued now (None: it can)."""
        with self._lock:
            mine = [j for j in self._waiting + self._running if j.key.owner == key.owner]
            same = [j for j in mine if j.key == key]
            if same:
                return status_line.busy_text(self._position(same[0]))
            if self.limits.per_owner is not None and len(mine) >= self.limits.per_owner:
                return status_line.busy_text(self._position(mine[0]), mine[0].key.workbook)
            if self.limits.queue is not None and not self._free and len(self._waiting) >= self.limits.queue:
                return status_line.queue_full(self.limits.queue)
        return None

    def submit(self, key: RunKey, config: TrainConfig, lock: run_lock.RunLock) -> Job:
        """Queue a run whose lock is taken; it starts at once when a slot is free (``job.state``)."""
        with self._lock:
            refused = self.refusal(key)
            if refused is not None:
                raise Refused(refused)
            job = Job(key, config, lock)
            self._latest[key] = job
            self._waiting.append(job)
            self._start_waiting()
            self._save()
        return job

    def cancel(self, key: RunKey) -> Job | None:
        """Take the workbook's waiting run out of the queue (its lock released); None when none waits."""
        with self._lock:
            job = next((j for j in self._waiting if j.key == key), None)
            if job is not None:
                self._waiting.remove(job)
                job.state = CANCELLED
                run_lock.release(job.lock)
                self._save()
            return job

    def stop(self, key: RunKey) -> str:
        """Stop the workbook's run, whatever it is doing (a teacher's Stop): the text to show."""
        if self.cancel(key) is not None:
            return status_line.CANCELLED_TEXT
        job = self.latest(key)
        folders = [job.run_dir.path] if job is not None and job.state == RUNNING else []
        folders += [lock_dir for lock_dir in self._locked_runs(run_folder(self.root, key))]
        stopped = [run_lock.request_stop(folder) for folder in folders]
        return status_line.STOPPING_TEXT if any(stopped) else status_line.NOTHING_RUNNING_TEXT

    def request_stop(self, key: RunKey, out_dir: Path) -> run_lock.RunLock | None:
        """The Stop button: the run holding ``out_dir``'s lock on this machine is asked to stop."""
        return run_lock.request_stop(out_dir)

    def _locked_runs(self, folder: Path) -> list[Path]:
        """The run folders under ``folder`` whose training still holds its lock."""
        found = files.latest_run(folder)
        return [found.path] if found is not None and run_lock.active_run(found.path) is not None else []

    # ---- where runs stand ---------------------------------------------------------------------------

    def latest(self, key: RunKey) -> Job | None:
        with self._lock:
            return self._latest.get(key)

    def position(self, job: Job) -> int | None:
        """1 for the next job to start, 2 for the one after, ...; None when the job does not wait."""
        with self._lock:
            return self._position(job)

    def _position(self, job: Job) -> int | None:
        return self._waiting.index(job) + 1 if job in self._waiting else None

    def counts(self) -> dict[str, int]:
        """How busy the server is: trainings running, waiting, and the slots."""
        with self._lock:
            return {"running": len(self._running), "queued": len(self._waiting), "slots": len(self.slots)}

    def say(self, key: RunKey, text: str, progress: float | None = None) -> None:
        """Keep what a button said to a workbook: its stream shows it until the run moves on."""
        with self._lock:
            self._notices[key] = Notice(text, progress, time.time())

    def view(self, key: RunKey) -> Progress:
        """Where the workbook's current or last run stands, or what a button said to it since."""
        job = self.latest(key)
        run_dir = job.run_dir if job is not None else files.latest_run(run_folder(self.root, key))
        since = max(job.created if job else 0.0, files.mtime(run_dir.progress) if run_dir else 0.0)
        state = self._state(job, run_dir)
        with self._lock:
            notice = self._notices.get(key)
        if notice is None or notice.time < since:
            return state
        progress = state.progress if notice.progress is None else notice.progress
        return replace(state, status=notice.text, progress=progress)

    def _state(self, job: Job | None, run_dir: RunDir | None) -> Progress:
        """Where the run stands by the queue and the run's files (``run_dir``: the job's, else the latest)."""
        if job is not None and job.state == QUEUED:
            position = self.position(job)
            if position is not None:
                counts = self.counts()
                return Progress(
                    status_line.waiting_text(position, counts["queued"], counts["slots"]), 0.0, position
                )
        if job is not None and job.state in (CANCELLED, FAILED):
            return Progress(status_line.CANCELLED_TEXT if job.state == CANCELLED else job.error or "")
        if run_dir is None:
            return Progress(status_line.NO_RUN_TEXT)
        running = None if job is None else job.state == RUNNING
        starting = None if job is None else status_line.starting_text(job.config)
        return files.from_files(run_dir, running, starting)

    def known_keys(self) -> set[RunKey]:
        """The workbooks this server has runs of: in its queue, or with a folder under the runs folder."""
        with self._lock:
            keys = set(self._latest)
        return keys | folder_keys(self.root)

    def active_keys(self) -> set[RunKey]:
        with self._lock:
            return {job.key for job in self._running + self._waiting}

    # ---- starting and watching runs -----------------------------------------------------------------

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
            job.state, job.error = FAILED, status_line.not_launched(error)
            self._free.append(slot)
            return
        self._run(job, slot)

    def _run(self, job: Job, slot: Slot | None) -> None:
        """Count the job as running in ``slot`` and watch it in a thread of its own."""
        job.state, job.slot, job.started = RUNNING, slot, time.time()
        self._running.append(job)
        name = f"gradsheet-{job.key.owner}-{job.key.workbook}"
        threading.Thread(target=self._watch, args=(job,), name=name, daemon=True).start()

    def _watch(self, job: Job) -> None:
        """Wait for the job's process to end (asking it to stop when it outlasts the time limit), then free
        its slot for the next job."""
        limit = self.limits.minutes
        deadline = None if limit is None else (job.started or time.time()) + limit * 60
        while not _ended(job.process, None if deadline is None else max(deadline - time.time(), 0.1)):
            if deadline is not None and time.time() >= deadline:
                run_lock.request_stop(job.run_dir.path)
                self.say(job.key, status_line.time_limit_text(limit))
                deadline = None
        with self._lock:
            job.state = ENDED
            self._running.remove(job)
            if job.slot is not None:
                self._free.append(job.slot)
            self._start_waiting()
            self._save()

    # ---- the journal ----------------------------------------------------------------------------------

    def _save(self) -> None:
        """Write the waiting and running jobs to the journal (called with the lock held)."""
        if self.journal is None:
            return
        records = [job.record() for job in self._running + self._waiting]
        self.journal.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.journal, json.dumps(records))

    def _recover(self) -> None:
        """Read the journal a previous server process left: adopt its runs that still train, tell its
        waiting runs to be pressed again."""
        try:
            records = json.loads(self.journal.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        for record in records if isinstance(records, list) else []:
            try:
                key, config = RunKey(*record["key"]), TrainConfig.from_json(record["config"])
            except (KeyError, TypeError, ValueError):
                continue
            lock = run_lock.owned(str(record.get("token", "")), config.out_dir)
            if lock is not None and record.get("state") == RUNNING and lock.alive():
                job = Job(key, config, lock, process=_process(lock.pid), created=record.get("created", 0.0))
                self._latest[key] = job
                self._run(job, self._free.pop(0) if self._free else None)  # it trains, slot or not
            else:
                if lock is not None:
                    run_lock.release(lock)
                self.say(key, status_line.RESTARTED_TEXT)
        with self._lock:
            self._save()


def _process(pid: int) -> Any:
    try:
        return psutil.Process(pid)
    except psutil.Error:
        return None


def _ended(process: Any, timeout: float | None) -> bool:
    """Wait up to ``timeout`` s (None: for ever) for a Popen or psutil.Process; whether it has ended."""
    if process is None:
        return True
    try:
        process.wait(timeout)
        return True
    except (subprocess.TimeoutExpired, psutil.TimeoutExpired):
        return False
    except psutil.Error:  # the process is gone
        return True


def default_slots(max_trainings: int | None, gpus: int) -> list[Slot]:
    """``max_trainings`` slots (default: ``slots.slot_count``); with several GPUs, slot k sees one GPU
    (``slots.gpu_of``), so the trainings spread over them."""
    return [Slot(k, slots.gpu_of(k, gpus)) for k in range(slots.slot_count(max_trainings, gpus))]


def default_threads(count: int, gpus: int) -> int:
    """CPU threads per training: the cores shared among ``count`` CPU trainings (one alone keeps torch's
    default); 0 (torch's default) on a GPU machine."""
    return slots.threads_per_training(count) if gpus == 0 and count > 1 else 0
