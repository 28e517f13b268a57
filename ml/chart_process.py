"""A run's loss and accuracy curves drawn by a child process, so that a GPU training loop never waits.

Drawing a pair of curve charts takes matplotlib 0.2-0.5 s of Python, longer than a graphed GPU epoch, and
a thread drawing them holds the interpreter lock the training loop needs for every step (on an H200,
graphed epochs took 0.15 s alone and 0.25 s beside a chart thread). A child process has its own
interpreter: ``CurveProcess`` starts ``python -m ml.chart_process`` and sends it each new history as one
JSON line; the child draws the latest history it has whenever it is free (histories that arrive while it
draws replace each other) and ends once its input closes and the last one is drawn. It imports only
matplotlib and ``ml.plots``, not torch.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import IO

PACKAGE_ROOT = Path(__file__).resolve().parents[1]  # the folder holding ``ml``, for the child's imports


class CurveProcess:
    """The parent's handle: ``draw`` sends a history (never blocks on the drawing), ``finish`` waits for
    the last one to be drawn and reports a failed child as a RuntimeError."""

    def __init__(self) -> None:
        self._process: subprocess.Popen | None = None
        self._stderr: IO[bytes] | None = None

    def draw(self, history: list[dict[str, float]], loss_png: Path, accuracy_png: Path) -> None:
        """Ask for these curves (the child is started on first use)."""
        if self._process is None:
            self._start()
        line = json.dumps({"history": history, "loss": str(loss_png), "accuracy": str(accuracy_png)})
        try:
            self._process.stdin.write(line + "\n")
            self._process.stdin.flush()
        except OSError:
            pass  # the child has ended: finish() says why

    def _start(self) -> None:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(PACKAGE_ROOT), os.environ.get("PYTHONPATH")])),
        }
        stderr = tempfile.TemporaryFile()
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "ml.chart_process"],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                env=env,
                text=True,
                encoding="utf-8",
                # Windows: a console child of the windowless training worker would open a window
                creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
            )
        except OSError:
            stderr.close()
            raise
        self._stderr = stderr

    def finish(self) -> None:
        """Until the latest curves are drawn and the child has ended; raises what made it fail, once."""
        process, stderr, self._process, self._stderr = self._process, self._stderr, None, None
        if process is None:
            return
        try:
            process.stdin.close()
        except OSError:
            pass
        code = process.wait()
        stderr.seek(0)
        message = stderr.read().decode("utf-8", "replace").strip().splitlines()
        stderr.close()
        if code != 0:
            reason = message[-1] if message else f"exit code {code}"
            raise RuntimeError(f"the chart process could not draw the curves: {reason}")


class _Latest:
    """The newest history received and whether the input has ended, shared by the child's two threads."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._job: dict | None = None
        self._ended = False

    def put(self, job: dict | None) -> None:
        with self._cond:
            if job is None:
                self._ended = True
            else:
                self._job = job
            self._cond.notify()

    def take(self) -> dict | None:
        """The next history to draw, once there is one; None when the input ended and all is drawn."""
        with self._cond:
            while self._job is None and not self._ended:
                self._cond.wait()
            job, self._job = self._job, None
            return job


def _read(stream: IO[str], latest: _Latest) -> None:
    try:
        for line in stream:
            latest.put(json.loads(line))
    finally:
        latest.put(None)


def main() -> int:
    """The child: draw the latest history received until the input closes."""
    from ml import plots

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the training; the child ends with it
    latest = _Latest()
    threading.Thread(target=_read, args=(sys.stdin, latest), daemon=True).start()
    while (job := latest.take()) is not None:
        plots.plot_loss_curves(job["history"], job["loss"])
        plots.plot_accuracy_curves(job["history"], job["accuracy"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
