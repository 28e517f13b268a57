"""A machine's training workers (``python -m excel_addin.worker --redis URL``) in a subprocess, for the
distributed mode's tests and benchmarks: started, waited for until their slots are warm (RQ counts a slot
only once it is), and the process that runs a given run found (to kill it as a crash would).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from excel_addin.jobs import keys
from excel_addin.testing.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]


class TrainingWorkers:
    """The supervisor and its ``slots`` on the queue at ``url``; runs train in ``folder``/scratch, its
    output goes to ``folder``/``name``.log."""

    def __init__(self, folder: Path, url: str, slots: int = 1, name: str = "workers", threads: int = 1):
        self.folder, self.url, self.slots, self.name = folder, url, slots, name
        self.scratch = folder / f"{name}-scratch"
        self.scratch.mkdir(parents=True, exist_ok=True)
        args = [sys.executable, "-m", "excel_addin.worker", "--redis", url, "--slots", str(slots)]
        args += ["--device", "cpu", "--threads", str(threads), "--scratch", str(self.scratch), "--name", name]
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }
        self.log = open(folder / f"{name}.log", "w+")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            args, env=env, stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL
        )

    def warm_slots(self) -> int:
        """How many of these workers' slots RQ counts (each registers once warm)."""
        from rq import Queue, Worker

        queue = Queue(keys.QUEUE, connection=keys.connect(self.url))
        return sum(1 for worker in Worker.all(queue=queue) if worker.name.startswith(f"{self.name}."))

    def wait_warm(self, timeout: float = 180.0) -> TrainingWorkers:
        def warm() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"the training workers exited:\n{self.output()}")
            return self.warm_slots() >= self.slots

        wait_for(warm, timeout, what=lambda: f"{self.slots} warm slot(s):\n{self.output()}", interval=0.5)
        return self

    def output(self) -> str:
        self.log.flush()
        return (self.folder / f"{self.name}.log").read_text()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def slot_pid(url: str, run_id: str) -> int:
    """The process of the slot that runs ``run_id`` (RQ keeps the worker's name in the job, its pid in the
    worker's record)."""
    from rq import Worker
    from rq.job import Job

    client = keys.connect(url)
    job = Job.fetch(run_id, connection=client)
    worker = Worker.find_by_key(Worker.redis_worker_namespace_prefix + job.worker_name, connection=client)
    return int(worker.pid)
