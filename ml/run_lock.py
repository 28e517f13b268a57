"""One training run per output folder, whoever starts it, and a way to ask that run to stop.

A run holds a lock file for its output folder from before it starts until it ends; the command line
(``python -m ml.train``), the Train button and the add-in server all take the same lock, so two runs can
never write into one folder at once. The lock records the training process's pid *and its start time*, so
a lock whose process died is recognised as stale even after the pid was reused by another program. A lock
file that cannot be read (garbage, wrong types) is stale too.

A stop request is a file in the run's own place (``stop_path``): the Stop button creates it and the run
stops after its current batch. Nothing is ever written to a path read from a lock file.

Lock and stop files live in a per-user state folder (``GRADSHEET_STATE_DIR``, else
``<temp>/gradsheet-<user>``), created private (0700) and refused when it is a symbolic link, belongs to
another user, or is open to others.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import os
import secrets
import stat
import tempfile
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import psutil

STATE_ENV = "GRADSHEET_STATE_DIR"
WRITE_GRACE_S = 2.0  # an unreadable lock younger than this may still be being written


class RunLockError(RuntimeError):
    """The lock cannot be taken or the state folder cannot be used; the message names the file."""


class AlreadyRunningError(RunLockError):
    """Another training run holds the lock of this output folder."""


def state_dir() -> Path:
    """The private folder holding lock and stop files (created 0700; symlinks and shared folders refused)."""
    configured = os.environ.get(STATE_ENV)
    if configured:
        path = Path(configured)
    else:
        try:
            user = getpass.getuser()
        except Exception:  # noqa: BLE001 - no user name (e.g. some containers)
            user = "user"
        path = Path(tempfile.gettempdir()) / f"gradsheet-{user}"
    with contextlib.suppress(FileExistsError):
        path.parent.mkdir(parents=True, exist_ok=True)
        os.mkdir(path, 0o700)
    _check_private(path)
    return path


def _check_private(path: Path) -> None:
    hint = f"remove it or set {STATE_ENV} to a folder of your own"
    try:
        info = os.lstat(path)
    except OSError as error:
        raise RunLockError(f"cannot use the state folder {path}: {error.strerror or error}") from None
    if stat.S_ISLNK(info.st_mode):
        raise RunLockError(f"the state folder {path} is a symbolic link, which is refused: {hint}")
    if not stat.S_ISDIR(info.st_mode):
        raise RunLockError(f"the state folder {path} is not a folder: {hint}")
    if hasattr(os, "getuid"):
        if info.st_uid != os.getuid():
            raise RunLockError(f"the state folder {path} belongs to another user: {hint}")
        if info.st_mode & 0o077:
            os.chmod(path, 0o700)  # ours, but open to others: make it private


def _key(out_dir: str | os.PathLike) -> str:
    """A file-name-safe key of an output folder (its absolute, normalised path)."""
    resolved = os.path.normcase(os.path.abspath(os.path.realpath(os.fspath(out_dir))))
    return hashlib.sha256(resolved.encode("utf-8", "surrogatepass")).hexdigest()[:20]


def lock_path(out_dir: str | os.PathLike) -> Path:
    return state_dir() / f"run-{_key(out_dir)}.lock"


def stop_path(out_dir: str | os.PathLike) -> Path:
    """Where a stop request for the run writing into ``out_dir`` is made."""
    return state_dir() / f"run-{_key(out_dir)}.stop"


def process_start_time(pid: int) -> float | None:
    """When the process started (seconds since the epoch), or None when there is no such process."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return process.create_time()
    except (psutil.Error, ValueError, OverflowError):
        return None


@dataclass(frozen=True)
class RunLock:
    """Who trains (pid and its start time), into which folder, for which workbook; token = ownership."""

    token: str
    pid: int
    pid_started: float
    out_dir: str
    book: str | None
    started: float  # time.time() when the lock was taken

    def alive(self) -> bool:
        """Whether the recorded process still runs (the same process, not a reused pid)."""
        started = process_start_time(self.pid)
        return started is not None and abs(started - self.pid_started) < 0.05

    def path(self) -> Path:
        return lock_path(self.out_dir)

    def describe(self) -> str:
        since = time.strftime("%H:%M:%S", time.localtime(self.started))
        where = f" for {Path(self.book).name}" if self.book else ""
        return (
            f"training started at {since}{where} (process {self.pid}) is still running, writing to "
            f"{self.out_dir} (lock file {self.path()})"
        )


def _parse(text: str) -> RunLock | None:
    """A lock from its file's text; None for garbage or wrong types."""
    try:
        data = json.loads(text)
    except ValueError:
        return None
    types = {"token": str, "pid": int, "pid_started": (int, float), "out_dir": str, "started": (int, float)}
    if not isinstance(data, dict) or set(data) != {f.name for f in fields(RunLock)}:
        return None
    if any(isinstance(data[k], bool) or not isinstance(data[k], t) for k, t in types.items()):
        return None
    if data["book"] is not None and not isinstance(data["book"], str):
        return None
    return RunLock(**data)


def read_lock(out_dir: str | os.PathLike) -> RunLock | None:
    """The lock of ``out_dir`` as its file says, or None when there is none or it is unreadable."""
    path = lock_path(out_dir)
    try:
        if path.is_symlink():
            return None
        return _parse(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return None


def _remove_stale(path: Path, judged: str | None) -> None:
    """Remove the lock file found stale (content ``judged``), but never a live lock taken meanwhile."""
    aside = path.with_name(f"{path.name}.{secrets.token_hex(4)}.stale")
    try:
        os.replace(path, aside)
    except OSError:
        return
    try:
        content = None if aside.is_symlink() else aside.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        content = None
    fresh = _parse(content) if content is not None and content != judged else None
    if fresh is not None and fresh.alive():  # a new lock was taken meanwhile: put it back
        with contextlib.suppress(OSError):
            os.link(aside, path)
    with contextlib.suppress(OSError):
        aside.unlink()


def active_run(out_dir: str | os.PathLike) -> RunLock | None:
    """The live run writing into ``out_dir``; a stale or corrupt lock is removed and None returned."""
    path = lock_path(out_dir)
    for attempt in range(2):
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            return None
        text = None
        if not stat.S_ISLNK(info.st_mode):
            with contextlib.suppress(OSError, UnicodeDecodeError):
                text = path.read_text(encoding="utf-8")
        lock = _parse(text) if text is not None else None
        age = time.time() - info.st_mtime
        if lock is None and attempt == 0 and 0 <= age < WRITE_GRACE_S:
            time.sleep(WRITE_GRACE_S - age)  # possibly being written right now: look once more
            continue
        if lock is not None and lock.alive():
            return lock
        _remove_stale(path, text)
        return None
    return None


def _write_new(lock: RunLock) -> None:
    """Create the lock file; FileExistsError when one exists. Never follows a symbolic link."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(lock.path(), flags, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(json.dumps(asdict(lock), indent=1))


def _new_lock(out_dir: str | os.PathLike, book: str | None, pid: int) -> RunLock:
    started = process_start_time(pid)
    if started is None:
        raise RunLockError(f"process {pid} does not run: it cannot hold a training lock")
    return RunLock(secrets.token_hex(8), pid, started, os.path.abspath(out_dir), book, time.time())


def acquire(out_dir: str | os.PathLike, book: str | None = None, pid: int | None = None) -> RunLock:
    """Take the lock of ``out_dir`` for a new run (AlreadyRunningError names the run that holds it).

    A stop request left over from an earlier run is dropped here, when the run is *asked for*: a Stop
    pressed from then on, even while the run still starts up or waits in a queue, stops it.
    """
    lock = _new_lock(out_dir, book, pid or os.getpid())
    for _ in range(3):
        try:
            _write_new(lock)
            clear_stop_request(out_dir)  # left by a run that died: it must not stop this one
            return lock
        except FileExistsError:
            running = active_run(out_dir)  # removes a stale lock, so the next attempt can succeed
            if running is not None:
                raise AlreadyRunningError(f"Not started: {running.describe()}. Press Stop first.") from None
        except OSError as error:
            raise RunLockError(
                f"cannot create the lock file {lock.path()}: {error.strerror or error}"
            ) from None
    raise AlreadyRunningError(f"Not started: another run is starting in {out_dir} at this very moment.")


def owned(token: str, out_dir: str | os.PathLike) -> RunLock | None:
    """The lock of ``out_dir`` if it belongs to the run with this token."""
    lock = read_lock(out_dir)
    return lock if lock is not None and secrets.compare_digest(lock.token, token) else None


def hand_over(lock: RunLock, pid: int) -> RunLock:
    """Record the process that trains (the worker started by the Train button), keeping the token."""
    current = owned(lock.token, lock.out_dir)
    if current is None:
        raise RunLockError(f"the lock file {lock.path()} no longer belongs to this run")
    started = process_start_time(pid)
    if started is None:
        raise RunLockError(f"process {pid} does not run: it cannot hold a training lock")
    updated = RunLock(**{**asdict(current), "pid": pid, "pid_started": started})
    tmp = lock.path().with_name(f"{lock.path().name}.{secrets.token_hex(4)}.tmp")
    tmp.write_text(json.dumps(asdict(updated), indent=1), encoding="utf-8")
    os.replace(tmp, lock.path())
    return updated


def release(lock: RunLock) -> None:
    """Remove the lock (only while it is still this run's) and the run's stop request."""
    with contextlib.suppress(OSError):
        stop_path(lock.out_dir).unlink()
    if owned(lock.token, lock.out_dir) is not None:
        with contextlib.suppress(OSError):
            lock.path().unlink()


def clear_stop_request(out_dir: str | os.PathLike) -> None:
    """Forget a stop request left from an earlier run of this folder (the run's own file)."""
    with contextlib.suppress(FileNotFoundError):
        stop_path(out_dir).unlink()


def stop_requested(out_dir: str | os.PathLike) -> bool:
    return stop_path(out_dir).exists()


def request_stop(out_dir: str | os.PathLike) -> RunLock | None:
    """Ask the run writing into ``out_dir`` to stop after its current batch; None when none runs."""
    lock = active_run(out_dir)
    if lock is not None:
        flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
        with contextlib.suppress(FileExistsError):
            os.close(os.open(stop_path(out_dir), flags, 0o600))
    return lock
