"""The task pane's sign-in route, ``GET /gradsheet/me`` (who the request's credentials sign in as), what
the pane needs to know about signing in, and the answers for ``NotSignedInError`` (401, SIGN_IN) and for
a Microsoft that cannot be reached (503).

Imported after xlwings Server is configured (``asgi``): it uses xlwings' own ``User`` dependency, which
authenticates with the configured providers exactly as a custom function or script call does.
"""

from __future__ import annotations

import logging

import httpx
from fastapi import APIRouter, FastAPI, Request, status
from fastapi.responses import JSONResponse
from xlwings_server import dependencies

from excel_addin.server.auth import tokens
from excel_addin.server.auth.identities import SIGN_IN, NotSignedInError, identity
from excel_addin.server.options import CLASS_TOKEN

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/gradsheet")
ME_PATH = "/me"
# xlwings' entraid provider fetches Microsoft's signing keys: without them no sign-in can be checked.
MICROSOFT_UNREACHABLE = "the server cannot reach Microsoft to check your sign-in: tell your teacher"


@router.get(ME_PATH)
async def me(user: dependencies.User) -> dict:
    """``{"id", "name", "teacher"}`` of the signed-in user (the pane shows "Signed in as <name>"); the
    providers' 401 when the credentials sign in no one."""
    who = identity(user)
    return {"id": who.id, "name": who.name, "teacher": who.teacher}


async def _not_signed_in(request: Request, error: NotSignedInError) -> JSONResponse:
    return JSONResponse({"detail": SIGN_IN}, status_code=status.HTTP_401_UNAUTHORIZED)


async def _microsoft_unreachable(request: Request, error: httpx.HTTPError) -> JSONResponse:
    logger.error("sign-in: cannot reach Microsoft's keys: %r", error)
    return JSONResponse({"detail": MICROSOFT_UNREACHABLE}, status_code=status.HTTP_503_SERVICE_UNAVAILABLE)


def install(app: FastAPI, app_path: str) -> dict:
    """Add the route and the two answers to ``app``; what the task pane's template and scripts need:
    ``{"me_url", "code_placeholder", "class_token"}`` (the provider's name, for the headers they send)."""
    app.include_router(router, prefix=app_path)
    app.add_exception_handler(NotSignedInError, _not_signed_in)
    app.add_exception_handler(httpx.HTTPError, _microsoft_unreachable)
    me_url = f"{app_path}{router.prefix}{ME_PATH}"
    return {"me_url": me_url, "code_placeholder": tokens.PLACEHOLDER, "class_token": CLASS_TOKEN}
