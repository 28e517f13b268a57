"""Who is calling: ``identity(user)`` turns the user xlwings Server authenticated (its ``User``, from the
configured auth provider) into gradsheet's ``Identity(id, name, teacher)``. Every part of the server
that needs to know whose request it serves asks this function, never the workbook.

- No provider (the one-person server on 127.0.0.1): xlwings gives every request its anonymous user
  (id "n/a"); that is the one local user, id ``local``.
- ``classtoken``: the class list's id, name and role (``student`` or ``teacher``).
- ``entraid`` (Microsoft Entra ID): the token's object id (``oid``) as the id (a GUID: immutable and
  folder-safe; unlike the e-mail-like ``preferred_username``, which an admin may rename or reassign),
  the ``name`` claim as the name, and teacher when the token carries the app role ``teacher``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from excel_addin.server.auth import entra, names
from excel_addin.server.options import options

STUDENT, TEACHER = "student", "teacher"  # the class list's roles; TEACHER is also the Entra app role's value
ROLES = (STUDENT, TEACHER)
# The detail of the 401 for no, a wrong or a revoked sign-in: xlwings' client shows it in the cell, as
# "#VALUE! sign in in the gradsheet pane", and in the pane after a button.
SIGN_IN = "sign in in the gradsheet pane"
ANONYMOUS_ID = "n/a"  # xlwings Server's user when no provider is configured


@dataclass(frozen=True)
class Identity:
    """``id``: a folder-safe user id (``[a-z0-9_-]{1,64}``), the user's folder under the runs folder;
    ``name``: what to show; ``teacher``: may see and act on the whole class."""

    id: str
    name: str
    teacher: bool = False


LOCAL = Identity(names.LOCAL_ID, "Local user")


class NotSignedInError(PermissionError):
    """A user the server cannot tell apart from others (the message is SIGN_IN)."""

    def __init__(self):
        super().__init__(SIGN_IN)


def identity(user: Any) -> Identity:
    """The identity of an authenticated xlwings ``User``; NotSignedInError for a user without a usable id."""
    if not options().auth:
        if getattr(user, "id", None) == ANONYMOUS_ID:
            return LOCAL
        raise NotSignedInError()
    if getattr(user, "claims", None):
        return _from_entra(user)
    if not names.is_user_id(user.id) or user.id in names.RESERVED_IDS:
        raise NotSignedInError()
    return Identity(user.id, user.name or user.id, TEACHER in (user.roles or ()))


def _from_entra(user: Any) -> Identity:
    user_id = entra.user_id(user.claims)
    if user_id is None:
        raise NotSignedInError()
    name = user.name or user.claims.get("preferred_username") or user_id
    return Identity(user_id, name, TEACHER in (user.roles or ()))
