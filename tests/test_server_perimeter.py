"""The server's perimeter against the attacks of issue 24 (findings 1, 5, 8), on real servers under uvicorn
on loopback with raw sockets (nothing normalises a path or sets a header we did not write):

- static files: ``..`` in every spelling, double encoding, backslashes, absolute paths, NUL bytes and
  symbolic links never leave the static folders (404), while the add-in's own files are served;
- DNS rebinding: a request or websocket for a name that is not the server's is refused (400/403);
  the allowed names, ``--hostname`` and ``--allowed-host`` work;
- origins: compared with the checked Host and the configured names, never with X-Forwarded-Host;
- forwarded headers: believed from ``--proxy`` only;
- argument conversion asks no import per cell;
- every perimeter setting has its flag and is documented in docs/security.md.
"""

from __future__ import annotations

import importlib.abc
import os
import re
import shutil
import sys

import pytest
from raw_http import post_json, request
from server_app import ROOT, LiveServer, call_body

from excel_addin.server.options import PERIMETER_SETTINGS, PerimeterOptions, host_name

DEEP = 30  # more ".." than any folder here is deep: the extra ones stay at /
SPELLINGS = {
    "%2e%2e/": "percent-encoded dots",
    "..%2f": "encoded slash",
    "%2e%2e%2f": "all encoded",
    ".%2e/": "half encoded",
    "%252e%252e/": "double encoding",
    "../": "plain dots",
    "..%5c": "encoded backslash",
    "..\\": "backslash",
}


@pytest.fixture(scope="module")
def server(live_server):
    """The test run's default server (conftest.py: the one-person server on 127.0.0.1), with another user's
    file in its runs (``server.secret``)."""
    secret = live_server.folder / "runs" / "bob" / "bobs-book" / "secret.txt"
    secret.parent.mkdir(parents=True, exist_ok=True)
    secret.write_text("bob's model, not yours")
    live_server.secret = secret
    return live_server


def leaks(reply, *secrets: bytes) -> bool:
    return any(secret in reply.body for secret in secrets)


@pytest.mark.slow
@pytest.mark.parametrize("spelling", SPELLINGS, ids=SPELLINGS.values())
@pytest.mark.parametrize("start", ["/static/", "/static/js/", "/static/vendor/"])
def test_no_spelling_of_dot_dot_leaves_the_static_folders(server, spelling, start):
    for target in ("etc/passwd", str(server.secret).lstrip("/")):
        path = start + spelling * DEEP + target.replace("/", "\\" if "\\" in spelling else "/")
        reply = request(server.port, "GET", path)
        assert reply.status in (400, 404), (path, reply.status)
        assert not leaks(reply, b"root:", b"not yours"), path


@pytest.mark.parametrize(
    "path",
    [
        "/static//etc/passwd",
        "/static/%2fetc%2fpasswd",
        "/static/%2Fetc/passwd",
        "/static///etc/passwd",
        "/static/js/gradsheet.js%00.png",
        "/static/%00",
        "/static/" + "x" * 5000,
    ],
)
def test_absolute_and_malformed_static_paths_are_refused(server, path):
    reply = request(server.port, "GET", path)
    assert reply.status in (400, 404), (path, reply.status)
    assert not leaks(reply, b"root:")


def test_the_add_ins_own_static_files_are_still_served(server):
    page = request(server.port, "GET", "/taskpane.html")
    assert page.status == 200
    urls = [
        url for url in re.findall(r'(?:src|href)="(/static/[^"]+)"', page.body.decode()) if "?" not in url
    ]
    assert "/static/js/gradsheet.js" in urls and any("office" in url.lower() for url in urls), urls
    for url in [*urls, "/static/images/icons/gradsheet-32.png", "/static/js/auth.js"]:
        reply = request(server.port, "GET", url)
        assert reply.status == 200 and len(reply.body) == int(reply.headers["content-length"]), url
    # gradsheet's files first, xlwings Server's beside them (the same two folders in the same order)
    ours = (ROOT / "excel_addin/server/project/static/js/gradsheet.js").read_bytes()
    assert request(server.port, "GET", "/static/js/gradsheet.js").body == ours


@pytest.mark.slow
def test_symbolic_links_out_of_the_static_folder_are_not_followed(tmp_path):
    """In a copy of the package whose static folder holds links to a file and a folder outside it."""
    copy = tmp_path / "copy"
    shutil.copytree(ROOT / "excel_addin", copy / "excel_addin", ignore=shutil.ignore_patterns("__pycache__"))
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("outside the static folder")
    static = copy / "excel_addin" / "server" / "project" / "static"
    (static / "leak.txt").symlink_to(outside / "secret.txt")
    (static / "leaks").symlink_to(outside)
    (static / "js" / "alias.js").symlink_to(static / "js" / "gradsheet.js")  # inside: fine
    server = LiveServer(tmp_path, "--http", env={"PYTHONPATH": f"{copy}{os.pathsep}{ROOT}"}).wait_ready()
    try:
        for path in ("/static/leak.txt", "/static/leaks/secret.txt", "/static/js/../leaks/secret.txt"):
            reply = request(server.port, "GET", path)
            assert reply.status == 404 and not leaks(reply, b"outside"), path
        # the copy is what runs: its link within the folder is served
        assert (
            request(server.port, "GET", "/static/js/alias.js").body
            == (static / "js/gradsheet.js").read_bytes()
        )
    finally:
        server.stop()


# ---- hosts and origins (DNS rebinding) ----------------------------------------------------------------


def websocket_handshake(port: int, host: str, origin: str) -> int:
    """The status a socket.io websocket handshake gets (101: accepted)."""
    headers = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Origin": origin}  # fmt: skip
    from raw_http import connect, head

    with connect(port) as sock:
        sock.sendall(head("GET", "/socket.io/?EIO=4&transport=websocket", {"Host": host, **headers}))
        first = sock.recv(4096).decode("latin-1")
    return int(first.split()[1])


def test_dns_rebinding_is_refused_on_http_and_websocket(server):
    port = server.port
    rebound = {"host": f"evil.example:{port}", "headers": {"Origin": f"http://evil.example:{port}"}}
    for method, path in (("GET", "/taskpane.html"), ("GET", "/gradsheet/status"), ("GET", "/manifest.xml"),
                         ("GET", "/socket.io/?EIO=4&transport=polling")):  # fmt: skip
        reply = request(port, method, path, **rebound)
        assert reply.status == 400, path
        assert (
            "does not answer to that name" in reply.json()["detail"]
            and "--allowed-host" in reply.json()["detail"]
        )
    call = call_body("BACKPROP_LOSS", [[[0.5]], [[1]]])
    assert post_json(port, "/xlwings/custom-functions-call", call, **rebound).status == 400
    assert websocket_handshake(port, f"evil.example:{port}", f"http://evil.example:{port}") in (400, 403)
    # the same websocket for this server's own name and origin is accepted
    assert websocket_handshake(port, f"127.0.0.1:{port}", f"http://127.0.0.1:{port}") == 101
    # no Host at all, or a malformed one
    assert request(port, "GET", "/taskpane.html", host="").status == 400
    assert request(port, "GET", "/taskpane.html", host="localhost:80:80").status == 400


def test_the_loopback_names_are_allowed(server):
    for host in ("localhost", "LOCALHOST", "127.0.0.1", "[::1]", "localhost."):
        assert request(server.port, "GET", "/taskpane.html", host=f"{host}:{server.port}").status == 200, host


@pytest.mark.slow
def test_origin_is_compared_with_the_checked_host_never_x_forwarded_host(server):
    port = server.port
    same = {"Origin": f"http://127.0.0.1:{port}"}
    assert request(port, "GET", "/gradsheet/status", headers=same).status == 200
    # another site's page, or another port of this machine, or one that claims a proxy named it
    claims = [
        {"Origin": "https://evil.example"},
        {"Origin": "http://127.0.0.1:1"},
        {"Origin": "https://school.example", "X-Forwarded-Host": "school.example"},
        {"Origin": f"http://evil.example:{port}", "X-Forwarded-Host": f"evil.example:{port}"},
    ]
    for headers in claims:
        reply = request(port, "GET", "/gradsheet/status", headers=headers)
        assert (reply.status, reply.json()) == (403, {"detail": "Cross-origin request refused"}), headers
    assert websocket_handshake(port, f"127.0.0.1:{port}", "https://evil.example") in (400, 403)


@pytest.mark.slow
def test_hostname_and_allowed_hosts_are_this_servers_names(tmp_path):
    server = LiveServer(
        tmp_path, "--http", "--hostname", "school.example", "--allowed-host", "Other.Example:8443"
    ).wait_ready()
    port = server.port
    try:
        for host in ("school.example", "school.example:443", "other.example:8443", "localhost"):
            assert request(port, "GET", "/taskpane.html", host=host).status == 200, host
        assert request(port, "GET", "/taskpane.html", host="evil.example").status == 400
        # the task pane behind a proxy that forwards to 127.0.0.1 without its Host: its origin is a name
        for origin in ("https://school.example", "https://other.example:8443"):
            assert request(port, "GET", "/gradsheet/status", headers={"Origin": origin}).status == 200
        assert (
            request(port, "GET", "/gradsheet/status", headers={"Origin": "https://evil.example"}).status
            == 403
        )
        assert websocket_handshake(port, "school.example", "https://school.example") == 101
    finally:
        server.stop()
    assert "Answers to: 127.0.0.1, [::1], localhost, other.example, school.example" in server.output()


@pytest.mark.slow
def test_forwarded_headers_count_only_from_the_configured_proxy(tmp_path, server):
    """Behind a proxy (--proxy 127.0.0.1) X-Forwarded-Proto makes the manifest's URLs https; from a client
    of a server without --proxy, it changes nothing (uvicorn alone would believe it from 127.0.0.1)."""
    https = {"X-Forwarded-Proto": "https"}
    plain = request(server.port, "GET", "/manifest.xml", headers=https).body.decode()
    assert (
        f"http://127.0.0.1:{server.port}/taskpane.html" in plain and "https://" not in plain.split("<Id>")[1]
    )
    proxied = LiveServer(tmp_path, "--http", "--proxy", "127.0.0.1").wait_ready()
    try:
        manifest = request(proxied.port, "GET", "/manifest.xml", headers=https).body.decode()
        assert f"https://127.0.0.1:{proxied.port}/taskpane.html" in manifest
    finally:
        proxied.stop()


# ---- settings ----------------------------------------------------------------------------------------


def test_host_names_are_parsed_one_way():
    assert [host_name(text) for text in ("School.Example:8443", "::1", "[::1]:8000", "10.0.0.5", "a.b.")] == [
        "school.example",
        "[::1]",
        "[::1]",
        "10.0.0.5",
        "a.b",
    ]
    for bad in ("", "evil.example/x", "a..b", "x:y", "[::g]", "http://a"):
        with pytest.raises(ValueError):
            host_name(bad)


def test_each_perimeter_setting_has_its_flag_its_default_and_its_documentation():
    from excel_addin.server.cli import build_parser

    help_text = " ".join(build_parser().format_help().split())
    docs = (ROOT / "docs" / "security.md").read_text()
    defaults = PerimeterOptions.from_env({})
    for name, setting in PERIMETER_SETTINGS.items():
        assert setting.flag in help_text and (not setting.default or setting.default in help_text), name
        assert setting.env in docs and setting.flag in docs, name
        assert getattr(defaults, name) == setting.parse(setting.default)
    with pytest.raises(ValueError, match=r"GRADSHEET_MAX_CALL_BODY \(--max-call-body\)"):
        PerimeterOptions.from_env({"GRADSHEET_MAX_CALL_BODY": "lots"})


@pytest.mark.slow
def test_a_bad_setting_stops_the_server_with_its_name(tmp_path):
    import subprocess

    env = {**os.environ, "PYTHONPATH": str(ROOT), "XLWINGS_LICENSE_KEY": "noncommercial"}
    for args, named in ((["--rate-calls", "often"], "--rate-calls"), (["--proxy", "a proxy"], "--proxy"),
                        (["--allowed-host", "http://x"], "--allowed-host")):  # fmt: skip
        command = [sys.executable, "-m", "excel_addin.server", "--http", *args]
        out = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode != 0 and named in out.stderr, out.stderr


# ---- argument conversion (finding 5) ---------------------------------------------------------------------


class CountPyodideLookups(importlib.abc.MetaPathFinder):
    """Counts how often an import of pyodide is attempted (and lets the normal finders answer)."""

    def __init__(self):
        self.count = 0

    def find_spec(self, name, path=None, target=None):
        self.count += name == "pyodide"
        return None


def test_range_arguments_are_converted_without_an_import_per_cell(client):
    """xlwings 0.37.8 tries ``from pyodide.ffi import JsNull`` for every cell of a range (each failed
    import searches all of sys.path again); the perimeter's replacement answers without importing (one
    probe per argument, in ``udfs_officejs.js_to_none``, remains)."""
    counter = CountPyodideLookups()
    sys.meta_path.insert(0, counter)
    try:
        response = client.post(
            "/xlwings/custom-functions-call", json=call_body("CLASSIFY_PIXELS", [[[0] * 100] * 100])
        )
    finally:
        sys.meta_path.remove(counter)
    assert response.status_code == 200 and "28 x 28" in response.json()["result"][0][0]
    assert counter.count <= 1  # xlwings' once-per-argument probe remains; on 0.37.8 alone: 10,001
