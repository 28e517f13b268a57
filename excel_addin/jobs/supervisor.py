"""The training slots of one machine, kept running: ``python -m excel_addin.worker --redis URL [--slots N]
[--device auto|cpu|cuda|cuda:N]`` (``excel_addin.worker`` parses the command line, ``serve`` runs it).

Each slot is a process of its own (``python -m excel_addin.jobs.slot``: warm, then RQ's SimpleWorker on
the ``gradsheet`` queue). When one dies (a crash, an out-of-memory kill, ``kill -9``), the supervisor
deregisters it from RQ (so the server's slot count stays true) and starts a new one, waiting longer after
each quick death in a row (a device or Redis that is not there). Its job is RQ's to report: the job's
heartbeat stops, and ``StartedJobRegistry.cleanup`` moves it to the FailedJobRegistry
(``AbandonedJobError``), which the supervisor runs once the heartbeat has expired; the job's owner reads
"Interrupted". SIGTERM or Ctrl-C stops the slots (their trainings stop after the current batch, their
checkpoints kept), waiting ``GRACE_S`` before killing them.

Slots and devices: ``auto`` is every GPU (``TRAININGS_PER_GPU`` slots each, slot k on GPU k mod n through
``CUDA_VISIBLE_DEVICES``) or else one CPU slot; ``cuda:N`` puts every slot on GPU N; CPU slots share the
cores (``--threads``: per slot).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from excel_addin import slots as machine_slots
from excel_addin.jobs import keys

ROOT = Path(__file__).resolve().parents[2]  # the folder holding excel_addin and ml
SLOT_MODULE = "excel_addin.jobs.slot"
GRACE_S = 60.0  # how long slots may take to stop their trainings when the supervisor stops
QUICK_DEATH_S = 30.0  # a slot that dies sooner than this after its start waits longer before the next
MOST_WAIT_S = 60.0


@dataclass
class Slot:
    """One slot: its device, its environment (the GPU it sees), and its current process."""

    index: int
    device: str
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None
    name: str = ""
    generation: int = 0
    started: float = 0.0
    quick_deaths: int = 0
    restart_at: float = 0.0


def gpu_count() -> int:
    import torch

    return torch.cuda.device_count()


def plan(device: str, slots: int | None, gpus: int) -> list[Slot]:
    """The slots for ``device`` (auto, cpu, cuda, cuda:N, mps) on a machine with ``gpus`` GPUs."""
    if device == "auto":
        device = "cuda" if gpus else "cpu"
    on_gpu = device.startswith("cuda")
    count = machine_slots.slot_count(slots, max(gpus, 1) if on_gpu else 0)
    if device == "cuda" and gpus > 1:
        return [
            Slot(k, device, {"CUDA_VISIBLE_DEVICES": str(machine_slots.gpu_of(k, gpus))})
            for k in range(count)
        ]
    return [Slot(k, device) for k in range(count)]


def cpu_threads(slots: list[Slot]) -> int:
    """CPU threads per training: the cores shared among CPU slots; 0 (torch's default) on GPUs."""
    return machine_slots.threads_per_training(len([slot for slot in slots if slot.device == "cpu"]))


class Supervisor:
    """Starts the slots, restarts the ones that die, stops them all on SIGTERM or Ctrl-C."""

    def __init__(self, url: str, slots: list[Slot], threads: int, scratch: Path | None, name: str):
        self.url, self.slots, self.threads, self.scratch = url, slots, threads, scratch
        self.name = f"{name}.{os.getpid()}"
        self.client = keys.connect(url)
        self.stopping = False
        self.cleanup_at: float | None = None

    def command(self, slot: Slot) -> list[str]:
        args = [sys.executable, "-m", SLOT_MODULE, "--redis", self.url, "--device", slot.device]
        args += ["--threads", str(self.threads), "--name", slot.name]
        return args + (["--scratch", str(self.scratch)] if self.scratch else [])

    def start(self, slot: Slot) -> None:
        slot.generation += 1
        slot.name = f"{self.name}.slot{slot.index}.{slot.generation}"
        env = {**os.environ, **slot.env}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        slot.process = subprocess.Popen(self.command(slot), env=env, stdin=subprocess.DEVNULL)
        slot.started = time.monotonic()

    def died(self, slot: Slot, code: int) -> None:
        """A slot's process ended: deregister it, and plan its restart (later after quick deaths)."""
        lived = time.monotonic() - slot.started
        slot.quick_deaths = slot.quick_deaths + 1 if lived < QUICK_DEATH_S else 0
        wait = min(2.0**slot.quick_deaths, MOST_WAIT_S) if slot.quick_deaths else 1.0
        print(f"gradsheet worker: slot {slot.index} ended ({describe_exit(code)}); "
              f"a new one starts in {wait:.0f} s", file=sys.stderr)  # fmt: skip
        slot.process, slot.restart_at = None, time.monotonic() + wait
        self._forget(slot.name)
        self.cleanup_at = time.monotonic() + keys.HEARTBEAT_TTL_S + 1

    def _forget(self, name: str) -> None:
        from rq import Worker

        try:
            worker = Worker.find_by_key(Worker.redis_worker_namespace_prefix + name, connection=self.client)
            if worker is not None:
                worker.register_death()
        except keys.redis_errors():
            pass  # its registration expires by itself

    def _cleanup(self) -> None:
        """RQ's own cleanup of the started registry: a dead slot's job becomes failed (abandoned)."""
        from rq import Queue

        self.cleanup_at = None
        try:
            Queue(keys.QUEUE, connection=self.client).started_job_registry.cleanup()
        except keys.redis_errors():
            pass  # the web side runs it too

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._stop)
        for slot in self.slots:
            self.start(slot)
        while not self.stopping:
            time.sleep(0.5)
            self.tick()
        return self.shut_down()

    def tick(self) -> None:
        """One look at the slots: note the dead, restart the due, run a due cleanup."""
        now = time.monotonic()
        for slot in self.slots:
            if slot.process is not None and slot.process.poll() is not None:
                self.died(slot, slot.process.returncode)
            elif slot.process is None and now >= slot.restart_at:
                self.start(slot)
        if self.cleanup_at is not None and now >= self.cleanup_at:
            self._cleanup()

    def _stop(self, signum: int, frame: Any) -> None:
        self.stopping = True

    def shut_down(self) -> int:
        running = [slot.process for slot in self.slots if slot.process is not None]
        for process in running:
            process.terminate()  # RQ's warm shutdown: the training stops after its batch
        deadline = time.monotonic() + GRACE_S
        for process in running:
            try:
                process.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return 0


def describe_exit(code: int) -> str:
    if code < 0:
        return f"killed by {signal.Signals(-code).name}"
    return f"exit status {code}"


def serve(args: Any) -> int:
    """``python -m excel_addin.worker --redis URL ...``: run this machine's slots until stopped."""
    device = args.device
    gpus = gpu_count() if device == "auto" or device.startswith("cuda") else 0
    if device.startswith("cuda") and gpus == 0:
        print(f"error: --device {device}: this machine has no CUDA GPU that torch can use", file=sys.stderr)
        return 2
    slots = plan(device, args.slots, gpus)
    threads = args.threads if args.threads is not None else cpu_threads(slots)
    name = args.name or socket.gethostname()
    where = ", ".join(sorted({slot.device + (f" (GPU {slot.env['CUDA_VISIBLE_DEVICES']})" if slot.env else "")
                              for slot in slots}))  # fmt: skip
    queue = f"queue {keys.QUEUE} at {keys.shown_url(args.redis)}"
    print(f"gradsheet worker {name}: {len(slots)} slot(s) on {where}, {queue}", file=sys.stderr)
    return Supervisor(args.redis, slots, threads, args.scratch, name).run()
