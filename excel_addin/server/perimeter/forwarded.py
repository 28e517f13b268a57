"""Forwarded headers believed from the configured reverse proxy only.

``X-Forwarded-For``, ``X-Forwarded-Proto``, ``X-Forwarded-Host``, ``Forwarded`` and ``X-Real-IP`` are
what a reverse proxy tells the server about the client it serves; from anyone else they are lies a client
can type. So a request from a configured proxy (``--proxy``) gets its client address and scheme from them
(uvicorn's own ``ProxyHeadersMiddleware`` does that part), and any other request loses these headers before
anything reads them (the rate limit keys on the client address; xlwings Server records X-Forwarded-For as
the user's address). ``python -m excel_addin.server`` turns uvicorn's own handling off, which by default
believes these headers from 127.0.0.1, where every local process and every page a local browser shows
looks the same.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

FORWARDED_HEADERS = (b"forwarded", b"x-real-ip")
FORWARDED_PREFIX = b"x-forwarded-"


def is_forwarded_header(name: bytes) -> bool:
    return name in FORWARDED_HEADERS or name.startswith(FORWARDED_PREFIX)


class ForwardedHeaders:
    """ASGI middleware: believe forwarded headers from ``proxies`` (IP networks) only, drop them otherwise."""

    def __init__(self, app, proxies: Iterable[str] = ()):
        self.app = app
        self.proxies = tuple(ipaddress.ip_network(proxy, strict=False) for proxy in proxies)
        self.from_proxy = ProxyHeadersMiddleware(app, trusted_hosts=[str(net) for net in self.proxies])

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
        elif self.is_proxy(scope.get("client")):
            await self.from_proxy(scope, receive, send)
        else:
            headers = [(name, value) for name, value in scope["headers"] if not is_forwarded_header(name)]
            await self.app({**scope, "headers": headers}, receive, send)

    def is_proxy(self, client) -> bool:
        """Whether the socket peer ``client`` (host, port) is one of the configured proxies."""
        if not client or not self.proxies:
            return False
        try:
            address = ipaddress.ip_address(client[0])
        except ValueError:
            return False
        return any(address in network for network in self.proxies)
