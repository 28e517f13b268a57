"""Per-client rate limits, counted by the ``limits`` package (what slowapi is built on).

A client is its token (a hash of the Authorization header) when the server signs users in, else its
address (the socket peer, or what the configured proxy reports: see ``forwarded``). Each group of paths
has its own limits, e.g. cell function calls ("2500 per 10 seconds; 5000 per minute": a recalculating
workbook fires one call per cell) and button presses; other paths (static files, the task pane's page,
socket.io) are not counted. A request over a limit gets 429 with ``too many requests: wait N s`` and
``Retry-After``, which a cell shows as ``#VALUE! too many requests: wait N s``.

Counts live in the storage the URI names: ``memory://`` (this process) or ``redis://...`` (shared by the
processes of a distributed server). Counting uses the sliding window counter strategy (two counters per
client and limit). If the storage fails, requests are let through and the failure logged: an unreachable
Redis must not lock a class out.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from limits import RateLimitItem
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError
from limits.storage import storage_from_string

from excel_addin.server.perimeter.refusal import refuse

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RateGroup:
    """Requests whose path starts with one of ``prefixes`` share ``rates`` per client, under ``name``."""

    name: str
    prefixes: tuple[str, ...]
    rates: tuple[RateLimitItem, ...]


def async_storage(uri: str):
    """The asyncio storage of ``uri`` (memory://, redis://, rediss://), raising its errors as StorageError."""
    options = {"implementation": "redispy"} if uri.startswith("redis") else {}
    return storage_from_string(f"async+{uri}", wrap_exceptions=True, **options)


def client_key(scope, by_token: bool) -> str:
    """Who is asking: ``token:<hash>`` of a non-empty Authorization header when ``by_token``, else
    ``address:<client address>``."""
    if by_token:
        token = next((value for name, value in scope["headers"] if name == b"authorization"), b"").strip()
        if token:
            return "token:" + hashlib.sha256(token).hexdigest()[:32]
    client = scope.get("client")
    return f"address:{client[0] if client else 'unknown'}"


class RateLimit:
    """ASGI middleware: each client's requests of each group within that group's rates, else 429."""

    def __init__(self, app, groups: Sequence[RateGroup], storage_uri: str, by_token: bool):
        self.app = app
        self.groups, self.storage_uri, self.by_token = tuple(groups), storage_uri, by_token
        async_storage(storage_uri)  # a bad URI fails when the server starts, not at the first request
        self._loop, self._limiter = None, None

    async def __call__(self, scope, receive, send):
        group = self.group_of(scope)
        wait = await self.wait_for(group, client_key(scope, self.by_token)) if group else 0
        if wait:
            message = f"too many requests: wait {wait} s"
            await refuse(scope, send, 429, message, [(b"retry-after", str(wait).encode())])
            return
        await self.app(scope, receive, send)

    def group_of(self, scope) -> RateGroup | None:
        if scope["type"] != "http":
            return None
        return next((g for g in self.groups if scope["path"].startswith(g.prefixes)), None)

    async def wait_for(self, group: RateGroup, client: str) -> int:
        """0 if this request is within every rate of ``group`` (and counted), else the seconds to wait."""
        limiter = self.limiter()
        try:
            for rate in group.rates:
                if not await limiter.hit(rate, group.name, client):
                    stats = await limiter.get_window_stats(rate, group.name, client)
                    return max(1, math.ceil(stats.reset_time - time.time()))
        except StorageError as error:
            logger.warning("rate limit storage failed, request let through: %r", error.storage_error)
        return 0

    def limiter(self) -> SlidingWindowCounterRateLimiter:
        """The limiter of the running event loop (asyncio storages belong to one loop)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop, self._limiter = loop, SlidingWindowCounterRateLimiter(async_storage(self.storage_uri))
        return self._limiter
