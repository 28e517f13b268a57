"""A real ``redis-server`` (the Debian package) on a free loopback port, for the distributed mode's tests and
benchmarks: started, stopped (as a deployment's Redis going away) and started again on the same port with
its data (append-only file, as docs/classroom.md asks of a deployment).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

from excel_addin.testing.live_server import free_port
from excel_addin.testing.waiting import wait_for


class RedisServer:
    """``redis-server`` in a subprocess, its data (AOF) and log in ``folder``; ``url`` to connect to."""

    def __init__(self, folder: Path, port: int | None = None):
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is not installed (Debian: apt install redis-server)")
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 20.0) -> RedisServer:
        """Start it (again) and wait until it answers."""
        args = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder)]
        args += ["--appendonly", "yes", "--appendfsync", "always", "--save", "", "--protected-mode", "yes"]
        with open(self.folder / "redis.log", "a") as log:
            self.process = subprocess.Popen(args, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        wait_for(self.answers, timeout, what=lambda: f"redis-server on port {self.port}", interval=0.1)
        return self

    def answers(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"redis-server exited:\n{(self.folder / 'redis.log').read_text()}")
        from excel_addin.jobs import keys

        try:
            return bool(keys.connect(self.url).ping())
        except keys.redis_errors():
            return False

    def stop(self, timeout: float = 20.0) -> None:
        """Stop it as a deployment's Redis goes away for a while (SIGTERM: it writes its data first)."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None
        time.sleep(0.1)  # the port is free again
