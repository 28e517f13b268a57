"""What every run book shares: a run's key (``RunKey``), where its folder is, and the refusal of a run
beyond the server's limits (``Refused``)."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from excel_addin.server.auth import Identity


class RunKey(NamedTuple):
    """Whose run: the owner's id (a safe folder name) and the workbook's id (``workbook.check_id``)."""

    owner: str
    workbook: str


class Refused(ValueError):  # noqa: N818 - a refusal, not an error of the program
    """Train refused by the server's limits (the message says which and what to do)."""


def owner_folder(root: Path, owner: Identity | str) -> Path:
    """The folder of everything a user has on the server: ``<runs>/<owner id>``."""
    return root / (owner.id if isinstance(owner, Identity) else owner)


def run_folder(root: Path, key: RunKey) -> Path:
    """The folder of a workbook's runs: ``<runs>/<owner>/<workbook>``."""
    return root / key.owner / key.workbook
