"""The ``classtoken`` auth provider of xlwings Server: a class code from the class list signs in.

xlwings Server imports a provider as ``auth.<name>`` and awaits its ``validate_token`` with the request's
Authorization header (a socket.io connection: its ``auth`` token), which gradsheet's task pane fills with
the code the person typed (project/static/js/auth.js). ``providers.configure`` puts this module into
``sys.modules`` as ``auth.classtoken``.

Unlike xlwings Server's example provider, the answer is not cached: the class list is consulted on every
call (it is re-read only when its file changed), so a revoked code stops working at once.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from fastapi import HTTPException, status
from xlwings_server.models import User

from excel_addin.server.auth.identities import SIGN_IN
from excel_addin.server.auth.roster import RosterError, RosterFile
from excel_addin.server.options import options

logger = logging.getLogger(__name__)
UNREADABLE = "the server cannot read its class list: tell your teacher"  # no path: students see it


@functools.cache
def _roster_file(path: Path) -> RosterFile:
    return RosterFile(path)


def roster_file() -> RosterFile:
    """This server's class list (``options().class_file``), watched for changes."""
    return _roster_file(options().class_file)


def code_of(token_string: str | None) -> str:
    """The class code in an Authorization value: the value itself, or what follows ``Bearer``."""
    text = (token_string or "").strip()
    scheme, _, rest = text.partition(" ")
    return rest.strip() if scheme.lower() == "bearer" else text


async def validate_token(token_string: str) -> User:
    """The enrolled person whose code this is, as xlwings' User (id, name, roles [role]); a 401 with the
    detail SIGN_IN for a missing, wrong or revoked code; a 503 when the class list cannot be read."""
    try:
        person = roster_file().current().person_with_code(code_of(token_string))
    except RosterError as error:
        logger.error("classtoken: %s", error)
        raise HTTPException(status_code=status.HTTP_503_SERVICE_UNAVAILABLE, detail=UNREADABLE) from None
    if person is None:
        raise HTTPException(status_code=status.HTTP_401_UNAUTHORIZED, detail=SIGN_IN)
    return User(id=person.id, name=person.name, roles=[person.role])
