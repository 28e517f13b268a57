"""Which workbook a button press comes from, on a server where a workbook has no folder of its own.

xlwings Server hands a script a Book built from what Excel sends: cells, sheet names, defined names and
the file's *name* only (Excel on the web has no path, and students' copies are often called the same).
So a workbook carries its own id, in a defined name (``layout.WORKBOOK_ID_NAME``, a text constant such as
``="3f9c0a1be2d47c55"``), written by Set up or the first Train; the server keeps the workbook's runs in
``<runs>/<owner>/<id>/`` (the owner is the signed-in user, never the workbook: an id only separates one
user's workbooks, so another user's id leads to one's own folder), and
``=GRADSHEET.TRAIN_PROGRESS(GRADSHEET_ID)`` streams them. Ids may be given by hand (``="alice"``):
letters, digits, ``-`` and ``_``, compared without case.

A copy of a workbook carries the same id. The task pane therefore sends the document's location
(``Office.context.document.url``) with each button press; a fingerprint of it sits in a second name
(``layout.WORKBOOK_FILE_NAME``), and a workbook that arrives from another file than the one its id was
given to is a copy: it gets an id of its own. A workbook that was never saved adopts the first location it
reports.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from pathlib import Path
from typing import Any

from excel_addin.server.auth import Identity
from excel_addin.server.options import options
from excel_addin.server.runs import RunKey, run_folder
from excel_addin.sheets import layout

ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")
ID_RULE = "1 to 64 letters, digits, '-' or '_'"
_CONSTANT = re.compile(r'="((?:[^"]|"")*)"')


def read_constant(book: Any, name: str) -> str | None:
    """The text of a defined name holding a text constant (="..."), None when the workbook has no such
    name; ValueError when the name holds something else."""
    if name not in book.names:
        return None
    refers_to = str(book.names[name].refers_to or "").strip()
    match = _CONSTANT.fullmatch(refers_to)
    if match is None:
        raise ValueError(
            f'the name {name} must hold text such as ="abc" (Formulas > Name Manager), got {refers_to!r}'
        )
    return match[1].replace('""', '"')


def write_constant(book: Any, name: str, text: str) -> None:
    """Define ``name`` as the text constant ``text`` (added, or changed when it exists)."""
    book.names[name] = '="' + text.replace('"', '""') + '"'


def fingerprint(document: str) -> str:
    """A short, one-way fingerprint of a document's location (the location itself is not stored)."""
    return hashlib.sha256(document.strip().encode("utf-8")).hexdigest()[:16]


def check_id(text: Any) -> str:
    """A workbook id as the server uses it (lower case); ValueError naming the rule otherwise."""
    if not isinstance(text, str) or not ID_PATTERN.fullmatch(text.strip()):
        raise ValueError(f"the workbook id {layout.WORKBOOK_ID_NAME} must be {ID_RULE}, got {text!r}")
    return text.strip().lower()


def workbook_id(book: Any, document: str = "", create: bool = True) -> str | None:
    """The workbook's id. With ``create``, a workbook without one, or a copy (``document`` differs from
    the file its id was given to), gets a new id written into its names; without, None for those."""
    current = read_constant(book, layout.WORKBOOK_ID_NAME)
    stored = read_constant(book, layout.WORKBOOK_FILE_NAME)
    here = fingerprint(document) if isinstance(document, str) and document.strip() else None
    is_copy = here is not None and stored not in (None, "", here)
    if current is None or is_copy:
        if not create:
            return None
        current = secrets.token_hex(8)
        write_constant(book, layout.WORKBOOK_ID_NAME, current)
    if here is not None and stored != here:
        write_constant(book, layout.WORKBOOK_FILE_NAME, here)
    return check_id(current)


def run_key(owner: Identity, wid: str) -> RunKey:
    """The key of a workbook's runs on this server: its owner's (from sign-in) and its id."""
    return RunKey(owner.id, check_id(wid))


def folder(owner: Identity, wid: str) -> Path:
    """The server-side folder of a workbook's runs: ``<runs>/<owner>/<id>``."""
    return run_folder(options().runs, run_key(owner, wid))
