"""How the perimeter refuses a request: one answer shape for every refusal.

An http request gets the status and ``{"detail": message}`` as JSON, the shape xlwings' JavaScript client
reads an error from (a cell shows ``#VALUE! message``, the task pane shows the message). A websocket is
closed before it is accepted (code 1008, policy violation), which the server answers with 403.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

POLICY_VIOLATION = 1008  # websocket close code


async def refuse(scope, send, status: int, message: str, headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
    """Answer ``scope`` with ``status`` and ``message`` (http) or close it unaccepted (websocket)."""
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": POLICY_VIOLATION, "reason": ""})
        return
    body = json.dumps({"detail": message}).encode()
    start_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),  # the rest of a refused body is not read: the connection cannot go on
        *headers,
    ]
    await send({"type": "http.response.start", "status": status, "headers": start_headers})
    await send({"type": "http.response.body", "body": body})
