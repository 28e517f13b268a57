"""One training run at a time, and a way to ask it to stop: a lock file and a stop file.

The Train macro creates the lock atomically before it launches the training process, so a second click
finds it and starts nothing. The lock names the process that trains (its pid) and the stop file that
process watches; the Stop macro creates that file and the run ends cleanly after the current batch. A lock
whose process is gone (crashed, killed, machine restarted) is stale and is taken over silently.

Both files live in a per-user state folder (``GRADSHEET_STATE_DIR``, else ``<temp>/gradsheet-<user>``):
one machine's CPU or GPU trains one network at a time, whatever workbook or folder it writes to.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import secrets
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

STATE_ENV = "GRADSHEET_STATE_DIR"
LOCK_NAME = "train.lock"


class AlreadyRunningError(RuntimeError):
    """Another training run holds the lock."""


def state_dir() -> Path:
    """The folder holding the lock and stop files (created on demand)."""
    configured = os.environ.get(STATE_ENV)
    if configured:
        path = Path(configured)
    else:
        try:
            user = getpass.getuser()
        except Exception:  # noqa: BLE001 - no user name (e.g. some containers): one shared folder
            user = "user"
        path = Path(tempfile.gettempdir()) / f"gradsheet-{user}"
    path.mkdir(parents=True, exist_ok=True)
    return path


@dataclass(frozen=True)
class RunLock:
    """Who trains (pid), what it writes (out_dir, book), how to stop it (stop_file); token = ownership."""

    token: str
    pid: int
    out_dir: str
    stop_file: str
    book: str | None
    started: float  # time.time() when the lock was taken

    def describe(self) -> str:
        since = time.strftime("%H:%M:%S", time.localtime(self.started))
        where = f" for {Path(self.book).name}" if self.book else ""
        return (
            f"training started at {since}{where} (process {self.pid}) is still running, "
            f"writing to {self.out_dir}"
        )


def lock_path() -> Path:
    return state_dir() / LOCK_NAME


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid runs (zombies count as ended)."""
    if pid <= 0:
        return False
    if sys.platform == "win32":
        import ctypes

        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
        handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        try:
            code = ctypes.c_ulong()
            kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
            return code.value == 259  # STILL_ACTIVE
        finally:
            kernel32.CloseHandle(handle)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, IndexError):  # Linux: a zombie has ended, it just wasn't reaped yet
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def read_lock() -> RunLock | None:
    """The lock's content, or None when there is no (readable) lock."""
    try:
        return RunLock(**json.loads(lock_path().read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None


def active_run() -> RunLock | None:
    """The running training's lock; a stale lock (its process is gone) is removed and None returned."""
    lock = read_lock()
    if lock is None:
        # A lock being written right now reads as empty: give the writer a moment before calling it stale.
        if lock_path().exists():
            time.sleep(0.2)
            lock = read_lock()
            if lock is None:
                with contextlib.suppress(OSError):
                    lock_path().unlink()
        if lock is None:
            return None
    if pid_alive(lock.pid):
        return lock
    with contextlib.suppress(OSError):
        lock_path().unlink()
    return None


def _write(lock: RunLock, exclusive: bool) -> None:
    data = json.dumps(asdict(lock), indent=1).encode("utf-8")
    if exclusive:
        fd = os.open(lock_path(), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        return
    tmp = lock_path().with_name(f"{LOCK_NAME}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, lock_path())


def acquire(out_dir: str, book: str | None = None, pid: int | None = None) -> RunLock:
    """Take the lock for a new run (raises AlreadyRunningError naming the run that holds it)."""
    token = secrets.token_hex(8)
    lock = RunLock(
        token=token,
        pid=pid or os.getpid(),
        out_dir=str(out_dir),
        stop_file=str(state_dir() / f"stop-{token}"),
        book=book,
        started=time.time(),
    )
    for _ in range(2):
        try:
            _write(lock, exclusive=True)
            return lock
        except FileExistsError:
            running = active_run()  # removes a stale lock, so the second attempt can succeed
            if running is not None:
                raise AlreadyRunningError(f"Not started: {running.describe()}. Press Stop first.") from None
    raise AlreadyRunningError("Not started: another Train is starting at this very moment.")


def set_pid(lock: RunLock, pid: int) -> RunLock:
    """Record the process that trains (when the lock still belongs to this run)."""
    current = read_lock()
    if current is None or current.token != lock.token:
        return lock
    updated = RunLock(**{**asdict(current), "pid": pid})
    _write(updated, exclusive=False)
    return updated


def owned(token: str) -> RunLock | None:
    """The lock, if it belongs to the run with this token."""
    lock = read_lock()
    return lock if lock is not None and lock.token == token else None


def release(lock: RunLock) -> None:
    """Remove the lock (only when it is still this run's) and this run's stop file."""
    with contextlib.suppress(OSError):
        Path(lock.stop_file).unlink()
    if owned(lock.token) is not None:
        with contextlib.suppress(OSError):
            lock_path().unlink()


def request_stop() -> RunLock | None:
    """Ask the running training to stop after its current batch; None when nothing runs."""
    lock = active_run()
    if lock is not None:
        Path(lock.stop_file).write_text("stop\n", encoding="utf-8")
    return lock
