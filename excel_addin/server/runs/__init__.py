"""The one source of a run's state on the add-in server: the run book.

A run belongs to a user and one of their workbooks (``RunKey``: the owner's id from sign-in, never from the
workbook, and the workbook's id, which only separates one user's workbooks); its folder is
``<runs>/<owner>/<workbook>/``. The run book takes Train (``submit``) and Stop (``stop``), says where a
run stands (``view``: queued, running, finished, its rows), keeps what a button said to a workbook
(``say``), and counts the server's trainings (``counts``, ``overview`` for a teacher). ``local`` keeps the
queue in this process and trains in worker processes on this machine (the default).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import NamedTuple

from excel_addin.server.auth import Identity


class RunKey(NamedTuple):
    """Whose run: the owner's id (a safe folder name) and the workbook's id (``workbook.check_id``)."""

    owner: str
    workbook: str


class Refused(ValueError):
    """Train refused by the server's limits (the message says which and what to do)."""


def owner_folder(root: Path, owner: Identity | str) -> Path:
    """The folder of everything a user has on the server: ``<runs>/<owner id>``."""
    return root / (owner.id if isinstance(owner, Identity) else owner)


def run_folder(root: Path, key: RunKey) -> Path:
    """The folder of a workbook's runs: ``<runs>/<owner>/<workbook>``."""
    return root / key.owner / key.workbook


@functools.cache
def run_book():
    """This server's run book, set up from its options on first use."""
    from excel_addin.server.options import options
    from excel_addin.server.runs.local import LocalRuns

    return LocalRuns.from_options(options())
