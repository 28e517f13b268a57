"""HTTP/1.1 over a plain socket, for the perimeter's tests: the request line, headers and body go out
byte for byte as given (no client normalises ``%2e%2e`` or ``//``, sets a Host or drops a header), and the
connection may come from another loopback address (127.0.0.2 is a different client than 127.0.0.1)."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


def connect(port: int, source: str = "127.0.0.1", timeout: float = 30) -> socket.socket:
    """A TCP connection to 127.0.0.1:``port`` from the loopback address ``source``."""
    return socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0))


def head(method: str, target: str, headers: dict[str, str]) -> bytes:
    """The request line and headers, as bytes (``Host`` only if given: a test may leave it out)."""
    lines = [f"{method} {target} HTTP/1.1", *(f"{name}: {value}" for name, value in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def read_reply(sock: socket.socket) -> Reply:
    """The response on ``sock``, read until the server closes it (requests say Connection: close)."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    top, _, body = data.partition(b"\r\n\r\n")
    lines = top.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return Reply(int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body)


def request(
    port: int,
    method: str,
    target: str,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
    host: str | None = None,
    source: str = "127.0.0.1",
) -> Reply:
    """One request; ``host`` is the Host header (default 127.0.0.1:port; "" sends none)."""
    host = f"127.0.0.1:{port}" if host is None else host
    given = {**({"Host": host} if host else {}), "Connection": "close", **(headers or {})}
    if body or method == "POST":
        given.setdefault("Content-Length", str(len(body)))
    with connect(port, source) as sock:
        sock.sendall(head(method, target, given) + body)
        return read_reply(sock)


def post_json(port: int, target: str, payload, **options) -> Reply:
    headers = {"Content-Type": "application/json", **options.pop("headers", {})}
    return request(port, "POST", target, headers, json.dumps(payload).encode(), **options)
