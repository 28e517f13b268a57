"""Requests for a name that is not this server's are refused (DNS rebinding).

A web page on ``evil.example`` can make its own name resolve to 127.0.0.1 (or to the classroom server's
address) after it loaded: the browser then treats this server as part of ``evil.example`` and sends it
requests with ``Host: evil.example`` and ``Origin: http://evil.example``, same-origin in the browser's eyes.
``TrustedHosts`` answers only requests whose Host header names this server: localhost, 127.0.0.1, ::1,
the name of ``--hostname`` and those of ``--allowed-host`` (the port is not compared). Everything else,
websockets included, gets 400. Starlette's ``TrustedHostMiddleware`` does the same; this one says which
setting allows a name, and parses the Host header with the same rules as the settings.
"""

from __future__ import annotations

from collections.abc import Iterable

from excel_addin.server.options import host_name
from excel_addin.server.perimeter.refusal import refuse


def request_host(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The host part of the request's single Host header (lowercase, no port), or None if it has none,
    several or a malformed one."""
    hosts = [value for name, value in headers if name == b"host"]
    if len(hosts) != 1:
        return None
    try:
        return host_name(hosts[0].decode("latin-1"))
    except ValueError:
        return None


class TrustedHosts:
    """ASGI middleware: 400 for an http request or websocket whose Host is not in ``allowed``."""

    def __init__(self, app, allowed: Iterable[str]):
        self.app = app
        self.allowed = frozenset(allowed)

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket") and request_host(scope["headers"]) not in self.allowed:
            message = (
                "this server does not answer to that name: its administrator can allow a name with "
                "--allowed-host NAME (or --hostname)"
            )
            await refuse(scope, send, 400, message)
            return
        await self.app(scope, receive, send)
