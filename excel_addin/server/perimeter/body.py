"""Request bodies over their limit are refused before they are read (413).

xlwings Server reads a request's body whole into memory and parses it as JSON on the event loop, so a
50-200 MB body cost half a gigabyte that stayed, and seconds in which the server answered nobody.
``BodyLimit`` refuses a body whose Content-Length is over the limit without reading any of it, and stops
reading a body sent without a length (chunked) as soon as it passes the limit. A body within the limit is
read here, then handed to the app as one message (the app would have read it whole anyway).

Two limits: a button's request (a custom script) carries the sheets it reads, so it may be large; a cell
function call, and any other request, carries a few arguments.
"""

from __future__ import annotations

from dataclasses import dataclass

from excel_addin.server.perimeter.refusal import refuse


@dataclass(frozen=True)
class BodyRule:
    """At most ``limit`` bytes for ``what`` (e.g. "a cell function call"), set by the flag ``flag``."""

    limit: int
    what: str
    flag: str

    def message(self) -> str:
        limit = size_text(self.limit)
        return f"request too large: {self.what} may send at most {limit} (server setting {self.flag})"


def size_text(size: int) -> str:
    """``64 KiB``, ``8 MiB``, ``1.5 MiB``, ``1000 bytes``."""
    for unit, factor in (("MiB", 2**20), ("KiB", 2**10)):
        if size >= factor:
            return f"{size / factor:.4g} {unit}"
    return f"{size} bytes"


class BodyLimit:
    """ASGI middleware: ``button`` for paths that start with ``button_prefix``, ``other`` for the rest."""

    def __init__(self, app, button_prefix: str, button: BodyRule, other: BodyRule):
        self.app = app
        self.button_prefix, self.button, self.other = button_prefix, button, other

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rule = self.button if scope["path"].startswith(self.button_prefix) else self.other
        if declared_length(scope["headers"]) > rule.limit:
            await refuse(scope, send, 413, rule.message())
            return
        body = await read_body(receive, rule.limit)
        if body is None:
            await refuse(scope, send, 413, rule.message())
        elif body is not False:
            await self.app(scope, replay(body, receive), send)


def declared_length(headers) -> int:
    """The Content-Length (0 when there is none; the server has already refused a malformed one)."""
    for name, value in headers:
        if name == b"content-length" and value.strip().isdigit():
            return int(value)
    return 0


async def read_body(receive, limit: int) -> bytes | None | bool:
    """The whole body, None as soon as it passes ``limit`` bytes, False if the client went away."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return False
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def replay(body: bytes, receive):
    """A ``receive`` that gives ``body`` as one message, then whatever the client sends next (disconnect)."""
    sent = False

    async def receive_again():
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive_again
