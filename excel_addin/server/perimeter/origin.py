"""Refuse requests that a web page of another site makes from the user's browser.

xlwings Server does not check the Origin header: with no CORS origins configured (the default), socket.io
even switches its own origin check off, and ``/xlwings/custom-scripts-call`` also accepts a form field
``bookData``, a "simple" request that browsers send across sites without asking first. So any web page
open in the user's browser could press Train on 127.0.0.1. ``SameOriginGuard`` lets through requests
without an Origin (Python, VBA, curl: not a browser page) and those from this server's own origin or from
``XLWINGS_CORS_ALLOW_ORIGINS``; every other one gets 403 (a websocket: close code 1008). ``Origin: null``
(sandboxed frames, local files) is refused too.
"""

from __future__ import annotations

from collections.abc import Iterable

REFUSED = b"Cross-origin request refused"


class SameOriginGuard:
    """ASGI middleware: the same-origin check described above, before anything else runs."""

    def __init__(self, app, allowed: Iterable[str] = ()):
        self.app = app
        self.allowed = {origin.rstrip("/") for origin in allowed}

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket") and not self.permits(dict(scope.get("headers") or [])):
            await self._refuse(scope, send)
            return
        await self.app(scope, receive, send)

    def permits(self, headers: dict[bytes, bytes]) -> bool:
        """No Origin, this host (as the client or a proxy in front of us addressed it), or an allowed one."""
        origin = headers.get(b"origin", b"").decode("latin-1").rstrip("/")
        if not origin:
            return True
        hosts = {headers.get(b"host", b""), headers.get(b"x-forwarded-host", b"")}
        here = {host.decode("latin-1").split(",")[0].strip() for host in hosts} - {""}
        return origin in self.allowed or origin.split("://", 1)[-1] in here

    @staticmethod
    async def _refuse(scope, send) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        await send(
            {"type": "http.response.start", "status": 403, "headers": [(b"content-type", b"text/plain")]}
        )
        await send({"type": "http.response.body", "body": REFUSED})
