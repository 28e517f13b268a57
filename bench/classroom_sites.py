"""Where the classroom benchmark's students go: the add-in server in one of its two shapes on loopback, with
the faults the benchmark injects and the press-to-first-step timings it takes before the class arrives.

* ``EmbeddedSite``: the default, ``python -m excel_addin.server --shared`` (one process; trainings in a fresh
  process per press, one at a time on a machine without a GPU). Its faults: a training process killed
  with SIGKILL mid-run, and the server itself killed with SIGKILL and started again on the same port with
  the same runs folder and state (what a crash and a restart by systemd do): the only web process there is.
* ``RedisSite``: the distributed mode, a Redis (``--redis URL``, or ``auto``: a private ``redis-server`` on a
  free port), W web processes as uvicorn's workers on one port (``--workers W``: the shape docs/classroom.md
  starts on one machine; a client that loses its process reconnects to the same address and reaches a
  living one, as it would through a proxy) and K training workers of one warm slot each
  (``python -m excel_addin.worker --slots 1``). Its faults: the slot process running a training killed
  with SIGKILL mid-run (the worker restarts its slot), and one web process killed with SIGKILL (uvicorn
  starts a new one).

``cold_first_step`` times a press on the embedded default (a fresh training process); ``RedisSite.warm_first
_step`` a press that an idle warm slot takes.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from press_to_first_step import first_step_at

from excel_addin.testing.class_codes import enrol
from excel_addin.testing.live_server import LiveServer, press
from excel_addin.testing.redis_server import RedisServer
from excel_addin.testing.student import Student
from excel_addin.testing.training_workers import TrainingWorkers, slot_pid
from excel_addin.testing.waiting import wait_for
from ml.run_dir import DEFAULT_RUN_DIR, RunDir

SHARED = ("--http", "--shared", "--host", "127.0.0.1")  # a classroom server, reached on loopback
FAULT_FOUND_S = 0.1  # how often a fault looks for its moment (a training mid-run)


@dataclass
class Fault:
    """One injected fault: what, when (seconds into the class), on what, and when it was over."""

    what: str
    at_s: float
    detail: str = ""
    over_s: float | None = None


@dataclass
class Faults:
    """The faults of a run, for the students to tell a request cut by one from an error."""

    start: float = field(default_factory=time.monotonic)
    done: list[Fault] = field(default_factory=list)
    GRACE_S = 15.0  # a request that failed this long after a fault was over is the fault's too

    def explains(self, moment: float) -> bool:
        """Whether a connection that failed at ``moment`` (monotonic) can be a fault's doing."""
        t = moment - self.start
        return any(
            f.at_s - 1.0 <= t <= (f.over_s if f.over_s is not None else float("inf")) + self.GRACE_S
            for f in self.done
        )


def mid_run(run_dir: Path) -> bool:
    """Whether the run in ``run_dir`` has taken a step and not ended (its progress.json says so)."""
    record = RunDir(run_dir).read_progress()
    return bool(record and (record.get("batch") or record.get("epochs")) and not record.get("ended"))


class EmbeddedSite:
    """The default server, shared, with ``names`` enrolled; ``codes``: their class codes."""

    mode, web_processes, train_workers = "embedded", 1, 1
    layout = "one server process (the default); a fresh training process per press, one at a time"

    def __init__(self, folder: Path, names: list[str]):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.runs = folder / "runs"
        self.codes = enrol(self.runs, *names)
        self.server = LiveServer(folder, *SHARED).wait_ready(120)
        self.url = self.server.url

    def training_processes(self) -> list[tuple[int, Path]]:
        """(pid, run folder) of the trainings under way, from the run locks in the server's state folder."""
        found = []
        for lock in (self.folder / "state").glob("run-*.lock"):
            try:
                record = json.loads(lock.read_text(encoding="utf-8"))
                found.append((int(record["pid"]), Path(record["out_dir"])))
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return [(pid, out) for pid, out in found if psutil.pid_exists(pid)]

    def kill_worker(self, faults: Faults, until: float) -> Fault | None:
        """SIGKILL a training process mid-run (the first found before ``until``, monotonic)."""
        while time.monotonic() < until:
            for pid, run_dir in self.training_processes():
                if mid_run(run_dir):
                    return _killed(faults, "kill -9 of a training process mid-run", pid, self._whose(run_dir))
            time.sleep(FAULT_FOUND_S)
        return None

    def _whose(self, run_dir: Path) -> str:
        """``<owner>/<workbook>`` of a run folder ``<runs>/<owner>/<workbook>/runs/mnist``."""
        try:
            return str(run_dir.resolve().relative_to(self.runs.resolve()).parent.parent)
        except ValueError:
            return str(run_dir)

    def kill_web(self, faults: Faults, until: float) -> Fault:
        """SIGKILL the server (the one web process) and start it again on its port, as systemd would."""
        wait_for(lambda: self.training_processes() or time.monotonic() > until, 600, interval=FAULT_FOUND_S)
        fault = _killed(faults, "kill -9 of the server process, then a restart", self.server.process.pid)
        self.server.process.wait()
        self.server.stop()
        shutil.move(self.folder / "server.log", self.folder / "server-killed.log")
        self.server = LiveServer(self.folder, *SHARED, port=self.server.port).wait_ready(120)
        fault.over_s = time.monotonic() - faults.start
        fault.detail += f"; answering again after {fault.over_s - fault.at_s:.1f} s"
        return fault

    def close(self) -> None:
        self.server.stop()


class RedisSite:
    """Redis, ``web_processes`` web processes on one port and ``train_workers`` one-slot training workers,
    with ``names`` enrolled."""

    mode = "redis"

    def __init__(self, folder: Path, names: list[str], redis: str, web_processes: int, train_workers: int):
        self.folder, self.web_processes, self.train_workers = folder, web_processes, train_workers
        self.layout = (
            f"{web_processes} web process(es) as uvicorn's workers on one port (--workers), "
            f"{train_workers} training worker(s) of one warm slot each, Redis "
            + ("private (redis-server on a free port)" if redis == "auto" else "given")
        )
        folder.mkdir(parents=True, exist_ok=True)
        self.redis = RedisServer(folder / "redis").start() if redis == "auto" else None
        self.redis_url = self.redis.url if self.redis else redis
        (folder / "web").mkdir(exist_ok=True)
        self.runs = folder / "web" / "runs"
        self.codes = enrol(self.runs, *names)
        options = (*SHARED, "--redis", self.redis_url, "--workers", str(web_processes))
        self.server = LiveServer(folder / "web", *options)
        self.url = self.server.url
        self.workers: list[TrainingWorkers] = []

    def start_workers(self) -> None:
        self.server.wait_ready(120)
        self.workers = [
            TrainingWorkers(self.folder, self.redis_url, name=f"worker{k + 1}")
            for k in range(self.train_workers)
        ]
        for workers in self.workers:
            workers.wait_warm(300)

    def client(self):
        from excel_addin.jobs import keys

        return keys.connect(self.redis_url)

    def training_runs(self) -> list[str]:
        """The run ids RQ counts as started that have taken a step and not ended."""
        from rq import Queue

        from excel_addin.jobs import keys

        client = self.client()
        started = Queue(keys.QUEUE, connection=client).started_job_registry.get_job_ids(cleanup=False)
        found = []
        for run_id in started:
            events = [fields[keys.EVENT_FIELD] for _, fields in client.xrange(keys.events(run_id))]
            if any(b'"BatchEnd"' in e for e in events) and not any(b'"RunEnded"' in e for e in events):
                found.append(run_id)
        return found

    def kill_worker(self, faults: Faults, until: float) -> Fault | None:
        """SIGKILL the slot process of a training mid-run (the first found before ``until``)."""
        from excel_addin.jobs import keys

        while time.monotonic() < until:
            for run_id in self.training_runs():
                try:
                    pid = slot_pid(self.redis_url, run_id)
                except Exception:  # noqa: BLE001 - it ended meanwhile: look again
                    continue
                whose = self.client().hget(keys.run(run_id), "owner") or b"?"
                workbook = self.client().hget(keys.run(run_id), "workbook") or b"?"
                what = "kill -9 of a training worker's slot mid-run"
                return _killed(faults, what, pid, f"{whose.decode()}/{workbook.decode()}")
            time.sleep(FAULT_FOUND_S)
        return None

    def web_pids(self) -> list[int]:
        """The web processes: uvicorn's workers (one process: the server itself)."""
        spawned = []
        for child in psutil.Process(self.server.process.pid).children():
            try:
                if child.status() != psutil.STATUS_ZOMBIE and "spawn_main" in " ".join(child.cmdline()):
                    spawned.append(child.pid)
            except psutil.Error:  # it ended meanwhile (the one just killed)
                continue
        return spawned or [self.server.process.pid]

    def kill_web(self, faults: Faults, until: float) -> Fault:
        """SIGKILL one web process while a training runs (or at ``until``); uvicorn starts another."""
        wait_for(lambda: self.training_runs() or time.monotonic() > until, 600, interval=FAULT_FOUND_S)
        before = self.web_pids()
        if before == [self.server.process.pid]:
            raise RuntimeError("one web process: run the embedded site's restart instead")
        fault = _killed(faults, "kill -9 of one web process (uvicorn starts another)", before[0])

        def replaced() -> bool:
            now = self.web_pids()
            return len(now) == len(before) and before[0] not in now

        wait_for(replaced, 120, what="uvicorn to replace the killed web process", interval=0.2)
        self.server.wait_ready(120)
        fault.over_s = time.monotonic() - faults.start
        fault.detail += f"; replaced after {fault.over_s - fault.at_s:.1f} s"
        return fault

    def warm_first_step(self, student: Student, settings: dict) -> float:
        """Seconds from a Train press to its first step on an idle warm slot (the run is then stopped)."""
        workbook = "warm-press"
        pressed = time.time()
        student.press("train", workbook, **settings)
        seconds = first_step_at(self.client(), workbook, owner=student.name) - pressed
        student.press("stop", workbook, **settings)
        wait_for(lambda: student.status(workbook)["status"].startswith(("Stopped", "Completed")), 120,
                 what="the timed run to stop")  # fmt: skip
        return seconds

    def close(self) -> None:
        for workers in self.workers:
            workers.stop()
        self.server.stop()
        if self.redis is not None:
            self.redis.stop()


def _killed(faults: Faults, what: str, pid: int, whose: str = "") -> Fault:
    """SIGKILL ``pid`` and record it."""
    os.kill(pid, signal.SIGKILL)
    fault = Fault(
        what, time.monotonic() - faults.start, f"pid {pid}" + (f", the run of {whose}" if whose else "")
    )
    faults.done.append(fault)
    return fault


def cold_first_step(folder: Path, settings: dict) -> dict[str, float]:
    """A Train press on the embedded default (a one-person server, nothing else running): seconds to its
    fresh training process's start (metrics.json's ``started_at``: a lower bound of the first step) and to
    the first progress.json that shows a step (an upper bound: it is written at most every 0.5 s)."""
    folder.mkdir(parents=True)
    server = LiveServer(folder, "--http").wait_ready(120)
    run_dir = RunDir(folder / "runs" / "local" / "cold-press" / DEFAULT_RUN_DIR)
    try:
        pressed = time.time()
        press(server.url, "train", "cold-press", **settings)
        stepped = wait_for(lambda: _stepped(run_dir), 300, what="the cold run's first step", interval=0.02)
        started = wait_for(run_dir.read_record, 60, what="the cold run's metrics.json")["run"]["started_at"]
        press(server.url, "stop", "cold-press", **settings)
        wait_for(lambda: (run_dir.read_progress() or {}).get("ended"), 120, what="the cold run to stop")
    finally:
        server.stop()
    return {"lower": started - pressed, "upper": stepped["updated"] - pressed}


def _stepped(run_dir: RunDir) -> dict | None:
    """The run's progress record once it shows a training step."""
    record = run_dir.read_progress()
    return record if record and record.get("batch") else None
