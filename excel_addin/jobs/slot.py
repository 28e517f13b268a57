"""One training slot: a warm process that takes trainings from the queue one at a time
(``python -m excel_addin.jobs.slot``, started and restarted by ``supervisor``).

Warm: before it asks for its first job the slot imports torch and the training code, initialises its
device, loads MNIST into memory and trains a dry run (two steps, an evaluation, the charts) there, so that
a press starts training at once instead of paying a fresh process's start (imports, CUDA, data).

Why RQ's SimpleWorker, which runs each job in its own process, instead of RQ's forking Worker: CUDA cannot
be used in a forked child of a process that initialised it, and on a CPU a fork inherits torch's thread
pools in a state GNU OpenMP does not support after fork, so a forking parent could only be half warm (no
device, no kernel run). A job that crashes or is killed therefore takes its slot's process with it; the
supervisor starts a new one, and RQ declares the job abandoned (``AbandonedJobError``, then its
FailedJobRegistry) once its heartbeat stops: ``HeartbeatWorker`` sends that heartbeat from a thread while
the job runs, as RQ's forking Worker does from the parent, with a TTL of seconds, not minutes.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from rq import Queue, SimpleWorker
from rq.worker import WorkerStatus

from excel_addin.jobs import keys, task

DEVICE_CHOICES = "auto|cpu|cuda|cuda:N|mps"


class HeartbeatWorker(SimpleWorker):
    """RQ's SimpleWorker with the running job's heartbeat sent from a thread (``keys.HEARTBEAT_EVERY_S``,
    expiring after ``keys.HEARTBEAT_TTL_S``), and a shutdown that stops the running training after its
    batch (its checkpoint kept) instead of waiting for it to end."""

    def execute_job(self, job: Any, queue: Any) -> None:
        execution = self.prepare_execution(job)
        done = threading.Event()
        beat = threading.Thread(target=self._beat, args=(job, execution, done), name="heartbeat", daemon=True)
        beat.start()
        try:
            self.perform_job(job, queue, execution)
        finally:
            done.set()
            beat.join()
        self.set_state(WorkerStatus.IDLE)

    def get_heartbeat_ttl(self, job: Any, working_time: float = 0.0) -> int:
        return keys.HEARTBEAT_TTL_S

    def heartbeat(self, timeout: int | None = None, pipeline: Any = None) -> None:
        """RQ's heartbeat, and the worker's registration again (idempotent), so that a Redis restarted
        without its data (no persistence) counts this slot again within one heartbeat."""
        from rq import worker_registration

        super().heartbeat(timeout, pipeline)
        worker_registration.register(self, pipeline)

    def _beat(self, job: Any, execution: Any, done: threading.Event) -> None:
        while not done.wait(keys.HEARTBEAT_EVERY_S):
            try:
                self.maintain_heartbeats(job, execution)
            except keys.redis_errors():
                continue  # Redis away: the next beat tries again

    def handle_warm_shutdown_request(self) -> None:
        super().handle_warm_shutdown_request()
        task.stop_current()


def resolve_device(name: str) -> str:
    """The device a slot trains on: ``auto`` becomes cuda, mps or cpu, whichever this machine has."""
    import torch

    if name != "auto":
        return name
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    return "mps" if mps is not None and mps.is_available() else "cpu"


def warm_up(device: str, threads: int) -> str:
    """Make this process warm for ``device`` (see the module's docstring); the device it resolved to.
    Raises what the device or the data fail with (the supervisor shows it and tries again later)."""
    from ml.config import TrainConfig
    from ml.data import load_mnist
    from ml.train import train

    resolved = resolve_device(device)
    load_mnist()
    with tempfile.TemporaryDirectory(prefix="gradsheet-warm-up-") as folder:
        ended = train(TrainConfig(dry_run=True, device=resolved, threads=threads, out_dir=folder), sinks=[])
    if ended.status != "completed":
        raise RuntimeError(f"the warm-up run on {resolved} {ended.status}: {ended.error}")
    return resolved


def wait_for_redis(client: Any, most_s: float = 30.0) -> None:
    """Until Redis answers (a warm slot waits for it rather than exit and lose its warmth), saying so."""
    wait = 1.0
    while True:
        try:
            client.ping()
            return
        except keys.redis_errors() as error:
            print(f"gradsheet slot: waiting for Redis: {keys.describe(error)}", file=sys.stderr)
            time.sleep(wait)
            wait = min(wait * 2, most_s)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m excel_addin.jobs.slot",
        description="One warm training slot on the queue (started by python -m excel_addin.worker --redis).",
    )
    parser.add_argument("--redis", required=True, help="the queue's Redis URL, e.g. redis://HOST:6379/0")
    parser.add_argument("--device", default="auto", help=f"{DEVICE_CHOICES} (default auto)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads per training (0: torch's)")
    parser.add_argument("--scratch", type=Path, help="where runs train (default: the temp folder)")
    parser.add_argument("--name", help="this slot's worker name in RQ (default: RQ's)")
    parser.add_argument(
        "--cold",
        action="store_true",
        help="skip the warm-up (to measure what it saves: bench/press_to_first_step.py)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    started = time.perf_counter()
    device = resolve_device(args.device) if args.cold else warm_up(args.device, args.threads)
    task.use(task.Slot(device, args.threads, args.scratch))
    warm_s = time.perf_counter() - started
    ready = "ready, not warmed up," if args.cold else "warm"
    print(f"gradsheet slot {args.name or ''}: {ready} on {device} in {warm_s:.1f} s", file=sys.stderr)
    client = keys.connect(args.redis)
    wait_for_redis(client)
    worker = HeartbeatWorker(
        [Queue(keys.QUEUE, connection=client)],
        connection=client,
        name=args.name,
        worker_ttl=30,
        job_monitoring_interval=keys.HEARTBEAT_EVERY_S,
    )
    worker.work(logging_level="INFO", with_scheduler=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
