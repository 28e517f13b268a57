"""The run book's contract and what both books share: whose a run is (``RunKey``), where its folder is,
the states of a run, and the teacher's overview (see the package's docstring)."""

from __future__ import annotations

import abc
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from excel_addin.server import messages
from excel_addin.server.auth import Identity
from excel_addin.sheets import layout

if TYPE_CHECKING:
    from excel_addin.server.progress import Progress
    from ml.config import TrainConfig
    from ml.run_lock import RunLock

# Where a run stands in a run book (``job.state``); the waiting and the training ones are ACTIVE.
QUEUED, RUNNING, ENDED, CANCELLED, FAILED = "queued", "running", "ended", "cancelled", "failed"
ACTIVE = (QUEUED, RUNNING)
TEST_ACC = layout.TRAIN_METRIC_COLUMNS.index("test_acc")
PER_USER = 1  # trainings a user of a shared server may have queued or running


class RunKey(NamedTuple):
    """Whose run: the owner's id (a safe folder name) and the workbook's id (``workbook.check_id``)."""

    owner: str
    workbook: str


class Refused(ValueError):  # noqa: N818 - the word buttons and tests use
    """Train refused by the server's limits (the message says which and what to do)."""


def owner_folder(root: Path, owner: Identity | str) -> Path:
    """The folder of everything a user has on the server: ``<runs>/<owner id>``."""
    return root / (owner.id if isinstance(owner, Identity) else owner)


def run_folder(root: Path, key: RunKey) -> Path:
    """The folder of a workbook's runs: ``<runs>/<owner>/<workbook>``."""
    return root / key.owner / key.workbook


class RunBook(abc.ABC):
    """What the server's buttons, cells and routes ask of the runs, whichever book keeps them. A job (what
    ``submit`` and ``latest`` return) has at least ``key``, ``config`` and ``state`` (one of QUEUED ...).
    ``root``: the runs folder on this machine."""

    root: Path

    @abc.abstractmethod
    def refusal(self, key: RunKey) -> str | None:
        """Why a new run of ``key``'s owner cannot be queued now (None: it can)."""

    @abc.abstractmethod
    def submit(self, key: RunKey, config: TrainConfig, lock: RunLock) -> Any:
        """Queue a run whose output folder's lock the Train button took; ``Refused`` past the limits."""

    @abc.abstractmethod
    def cancel(self, key: RunKey) -> Any | None:
        """Take the workbook's waiting run out of the queue; None when none waits."""

    @abc.abstractmethod
    def stop(self, key: RunKey) -> str:
        """Stop the workbook's run, whatever it is doing (a teacher's Stop): the text to show."""

    @abc.abstractmethod
    def request_stop(self, key: RunKey, out_dir: Path) -> Any | None:
        """Ask the workbook's run that trains into ``out_dir`` to stop after its batch (the Stop button);
        what was asked, None when nothing trains there."""

    @abc.abstractmethod
    def latest(self, key: RunKey) -> Any | None:
        """The workbook's latest job this book knows of."""

    @abc.abstractmethod
    def position(self, job: Any) -> int | None:
        """1 for the next job to start, 2 for the one after, ...; None when the job does not wait."""

    @abc.abstractmethod
    def counts(self) -> dict[str, int]:
        """How busy the server is: ``{"running", "queued", "slots"}``."""

    @abc.abstractmethod
    def say(self, key: RunKey, text: str, progress: float | None = None) -> None:
        """Keep what a button said to a workbook: its stream shows it until the run moves on."""

    @abc.abstractmethod
    def view(self, key: RunKey) -> Progress:
        """Where the workbook's current or last run stands, or what a button said to it since."""

    @abc.abstractmethod
    def known_keys(self) -> set[RunKey]:
        """The workbooks this server has runs of (in its queue or records, or with a folder here)."""

    @abc.abstractmethod
    def active_keys(self) -> set[RunKey]:
        """The workbooks with a run waiting or training."""

    def overview(self) -> list[dict[str, Any]]:
        """Every workbook's run on this server, for a teacher: owner, workbook, status, queue position,
        progress and last test accuracy; training and waiting runs first."""
        rows = []
        for key in sorted(self.known_keys()):
            view = self.view(key)
            accuracy = view.rows[-1][TEST_ACC] if view.rows else None
            status = messages.for_user(view.status, run_folder(self.root, key), self.root / key.owner)
            rows.append({"owner": key.owner, "workbook": key.workbook, "status": status,
                         "queue": view.queue, "progress": view.progress, "accuracy": accuracy})  # fmt: skip
        active = self.active_keys()
        return sorted(rows, key=lambda row: RunKey(row["owner"], row["workbook"]) not in active)


def folder_keys(root: Path) -> set[RunKey]:
    """The workbooks with a folder under the runs folder ``root`` (``<root>/<owner>/<workbook>``)."""
    return {RunKey(owner.name, workbook.name) for owner in _folders(root) for workbook in _folders(owner)}


def _folders(path: Path) -> list[Path]:
    """The sub-folders of ``path`` that can be user or workbook folders (not hidden, not links)."""
    try:
        return [p for p in path.iterdir() if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")]
    except OSError:
        return []
