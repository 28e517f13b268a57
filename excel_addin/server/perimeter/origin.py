"""Refuse requests that a web page of another site makes from the user's browser.

xlwings Server does not check the Origin header: with no CORS origins configured (the default), socket.io
even switches its own origin check off, and ``/xlwings/custom-scripts-call`` also accepts a form field
``bookData``, a "simple" request that browsers send across sites without asking first. So any web page
open in the user's browser could press Train on 127.0.0.1. ``SameOriginGuard`` lets through requests
without an Origin (Python, VBA, curl: not a browser page) and those whose Origin is

- this server as the request addressed it (scheme://Host, the Host that ``TrustedHosts`` already checked
  against the allowlist, so a rebound name never gets here),
- on a name configured for this server (``--hostname``, ``--allowed-host``; any port), as the task pane's
  page is behind a reverse proxy that forwards its own Host, or
- one of ``XLWINGS_CORS_ALLOW_ORIGINS``;

every other one gets 403 (a websocket: closed unaccepted). ``Origin: null`` (sandboxed frames, local files)
is refused too. Forwarded headers (X-Forwarded-Host) are never read: a client can send any.
"""

from __future__ import annotations

from collections.abc import Iterable

from excel_addin.server.options import host_name
from excel_addin.server.perimeter.refusal import refuse

REFUSED = "Cross-origin request refused"


class SameOriginGuard:
    """ASGI middleware: the same-origin check described above."""

    def __init__(self, app, names: Iterable[str] = (), cors_origins: Iterable[str] = ()):
        self.app = app
        self.names = frozenset(host_name(name) for name in names)
        self.cors_origins = {origin.rstrip("/") for origin in cors_origins}

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket") and not self.permits(scope["headers"]):
            await refuse(scope, send, 403, REFUSED)
            return
        await self.app(scope, receive, send)

    def permits(self, headers: Iterable[tuple[bytes, bytes]]) -> bool:
        """No Origin, this server as addressed, a configured name, or an allowed CORS origin."""
        headers = list(headers)
        origins = [value.decode("latin-1").rstrip("/") for name, value in headers if name == b"origin"]
        if not origins:
            return True
        if len(origins) > 1:
            return False
        origin = origins[0]
        scheme, separator, authority = origin.partition("://")
        if origin in self.cors_origins:
            return True
        if not separator or scheme.lower() not in ("http", "https") or not authority:
            return False
        hosts = [value.decode("latin-1").lower() for name, value in headers if name == b"host"]
        if hosts == [authority.lower()]:
            return True
        try:
            return host_name(authority) in self.names
        except ValueError:
            return False
