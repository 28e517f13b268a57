"""gradsheet's optional extras (``pip install -e '.[server]'``, ``'.[dev]'``), checked before a command
needs one: a plain ``pip install -e .`` has neither, and a missing package used to surface as a
ModuleNotFoundError traceback from deep inside the add-in server or the template builder. The packages of
each extra are read from the installed project's own metadata (pyproject.toml, written once)."""

from __future__ import annotations

import re
import sys
from importlib import metadata

PROJECT = "gradsheet"


def missing(extra: str) -> list[str]:
    """The distributions of ``extra`` that are not installed ([] when gradsheet itself is not installed,
    e.g. run from a source tree: then nothing is known to be missing)."""
    try:
        requirements = metadata.requires(PROJECT) or []
    except metadata.PackageNotFoundError:
        return []
    absent = []
    for requirement in requirements:
        if not re.search(rf"""extra\s*==\s*["']{re.escape(extra)}["']""", requirement):
            continue
        name = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)[0]
        if name == PROJECT:  # dev = gradsheet[server] + ...: the server extra's own packages count
            inner = re.search(r"\[([^\]]+)\]", requirement)
            absent += [n for e in (inner[1].split(",") if inner else ()) for n in missing(e.strip())]
            continue
        try:
            metadata.version(name)
        except metadata.PackageNotFoundError:
            absent.append(name)
    return absent


def require(extra: str, command: str) -> None:
    """Exit with one line naming the install command when ``extra``'s packages are not all installed."""
    absent = missing(extra)
    if absent:
        sys.exit(
            f"error: {command} needs gradsheet's {extra!r} extra, which is not installed "
            f"(missing: {', '.join(absent)}): pip install -e '.[{extra}]' in the repository's folder"
        )
