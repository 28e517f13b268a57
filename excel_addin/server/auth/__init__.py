"""Who is calling: the signed-in user as gradsheet's server uses it (``identity``).

xlwings Server authenticates every call with its auth providers and hands gradsheet a ``User``; this turns
it into an ``Identity`` whose ``id`` is a safe folder name, never taken from the workbook. The server with no
provider (one person on 127.0.0.1) has one user, ``local``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

LOCAL_ID = "local"  # the one user of a server without sign-in
ANONYMOUS_ID = "n/a"  # xlwings Server's user when no auth provider is configured
TEACHER_ROLE = "teacher"
_SAFE = re.compile(r"[^a-z0-9_-]+")


@dataclass(frozen=True)
class Identity:
    """A user of this server: ``id`` names their folder (``[a-z0-9_-]{1,64}``), ``name`` is shown."""

    id: str
    name: str
    teacher: bool = False


def folder_name(raw: str) -> str:
    """A safe, stable folder name for an id from a provider (lower case; a hash keeps it unique)."""
    text = _SAFE.sub("-", raw.strip().lower()).strip("-")[:48]
    if text and text == raw:
        return text
    return f"{text or 'user'}-{hashlib.sha256(raw.encode('utf-8')).hexdigest()[:12]}"


def identity(user: Any) -> Identity:
    """The Identity of xlwings Server's ``User`` (None or the provider-less user: the local user)."""
    raw = getattr(user, "id", None)
    if user is None or raw in (None, "", ANONYMOUS_ID):
        return Identity(LOCAL_ID, "you")
    roles = getattr(user, "roles", None) or []
    return Identity(folder_name(str(raw)), str(getattr(user, "name", None) or raw), TEACHER_ROLE in roles)
