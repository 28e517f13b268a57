"""Signing in on a real classroom server (``python -m excel_addin.server --shared`` under uvicorn on
loopback, a class list made with the real command line): cell functions, pane buttons and socket.io
refuse a request without a valid class code with "sign in in the gradsheet pane" and serve it with one;
a revoke and a re-issue take effect while the server runs; the server starts only with sign-in it can
check. And the task pane in headless Chromium: it asks for the class code, says so when one is wrong,
shows who signed in, remembers the code, sends it with its requests and its socket.io connection,
forgets a revoked one, and signs out. A server without sign-in shows no sign-in at all."""

from __future__ import annotations

import threading
import uuid

import httpx
import pytest
import xlwings as xw
from server_app import QUICK, LiveServer, call_body

from excel_addin.server.auth.identities import SIGN_IN
from excel_addin.server.streams import SIGN_IN_TEXT
from excel_addin.sheets import layout
from excel_addin.testing.chromium import browser
from excel_addin.testing.class_codes import class_command, codes_in, enrol, signed_in
from excel_addin.testing.remote_book import book_payload, only_sheets
from excel_addin.testing.student import Student
from excel_addin.testing.waiting import wait_for

socketio = pytest.importorskip("socketio")
pytest.importorskip("websocket")
WORKED_EXAMPLE = ([[[0.5]], [[0]], [[0.05], [0.1]], [[0.01, 0.99]], [[""]], [[0.35, 0.6]]], 0.298371109)


def cell(server, headers=None) -> httpx.Response:
    body = call_body("BACKPROP_LOSS", WORKED_EXAMPLE[0])
    return httpx.post(f"{server.url}/xlwings/custom-functions-call", json=body, headers=headers, timeout=30)


def button(server, headers=None) -> httpx.Response:
    """The pane's Clear button (the Classify sheet's drawing grid), as xlwings' client presses it."""
    payload = only_sheets(book_payload({}, client="Office.js"), layout.CLASSIFY_SHEET)
    url = f"{server.url}/xlwings/custom-scripts-call/clear_grid"
    return httpx.post(url, json=payload, headers=headers, timeout=30)


@pytest.mark.slow
def test_the_server_says_how_users_sign_in(classroom):
    server, codes = classroom  # the test run's classroom server (conftest.py)
    assert f"Sign-in: class codes of {server.folder / 'class.json'} ({len(codes)} active)." in server.output()


@pytest.mark.slow
def test_cells_and_buttons_need_a_class_code(classroom):
    server, codes = classroom
    wrong = (None, signed_in(""), signed_in("AAAA-BBBB-CCCC-DDDD"), {"Authorization": codes["bob"][:-1]})
    for headers in wrong:
        for response in (cell(server, headers), button(server, headers)):
            # a cell shows "#VALUE! sign in in the gradsheet pane", the pane the message alone
            assert response.status_code == 401, response.text
            assert response.json() == {"detail": SIGN_IN}
    answer = cell(server, signed_in(codes["alice-smith"]))
    assert answer.status_code == 200
    assert answer.json()["result"][0][0] == pytest.approx(WORKED_EXAMPLE[1], abs=1e-9)
    pressed = button(server, signed_in(codes["bob"]))
    assert pressed.status_code == 200 and pressed.json()["actions"]  # the grid cleared
    # one provider: the Auth-Provider header may be left out
    assert button(server, {"Authorization": codes["bob"]}).status_code == 200


def test_who_the_pane_is_signed_in_as(classroom):
    server, codes = classroom
    me = f"{server.url}/gradsheet/me"
    assert httpx.get(me, headers=signed_in(codes["alice-smith"])).json() == {
        "id": "alice-smith", "name": "Alice Smith", "teacher": False,
    }  # fmt: skip
    assert httpx.get(me, headers=signed_in(codes["ms-smith"])).json()["teacher"] is True
    assert httpx.get(me).status_code == 401


@pytest.mark.slow
def test_revoke_and_reissue_while_the_server_runs(classroom):
    server, _ = classroom
    runs = server.folder / "runs"
    codes = enrol(runs, "Dave")  # enrolled after the start: no other test uses Dave
    assert cell(server, signed_in(codes["dave"])).status_code == 200
    class_command(runs, "revoke", "dave")
    assert cell(server, signed_in(codes["dave"])).json() == {"detail": SIGN_IN}
    new = codes_in(class_command(runs, "reissue", "dave").stdout)["dave"]
    assert cell(server, signed_in(new)).status_code == 200
    assert cell(server, signed_in(codes["dave"])).status_code == 401


class Listener:
    """A socket.io client as the task pane's: its auth payload is getAuth's {token, provider}; it streams
    =GRADSHEET.TRAIN_PROGRESS(workbook) and records what arrives."""

    def __init__(self, url: str, token: str):
        self.values, self.disconnected = [], threading.Event()
        self.workbook = f"wb-{uuid.uuid4().hex[:8]}"
        self.sio = socketio.Client(reconnection=False)
        self.sio.on(f"xlwings:set-result-TRAIN_PROGRESS_{self.workbook}", self.values.append)
        self.sio.on("disconnect", lambda *args: self.disconnected.set())
        self.sio.connect(url, transports=["websocket"], auth={"token": token, "provider": "classtoken"})

    def stream(self):
        body = {
            "client": "Office.js", "version": xw.__version__, "runtime": "1.4",
            "func_name": "TRAIN_PROGRESS", "args": [[[self.workbook]]],
            "task_key": f"TRAIN_PROGRESS_{self.workbook}", "caller_address": None,
        }  # fmt: skip
        self.sio.emit("xlwings:function-call", body)


@pytest.mark.slow
def test_socketio_connects_with_a_class_code_and_not_without(classroom):
    server, codes = classroom
    signed = Listener(server.url, codes["bob"])
    anonymous = Listener(server.url, "")
    try:
        anonymous.stream()  # connected, but nobody: its streaming cell says how to sign in
        values = wait_for(lambda: anonymous.values, 30, what="the anonymous stream's value")
        assert values[0]["result"] == [[SIGN_IN_TEXT]] and not anonymous.disconnected.is_set()
        signed.stream()
        first = wait_for(lambda: signed.values, 30, what="a TRAIN_PROGRESS value for the signed-in client")
        assert first[0]["result"][0][0]  # the stream's table: a status row
        assert signed.sio.connected and not signed.disconnected.is_set()
    finally:
        signed.sio.disconnect()
        anonymous.sio.disconnect()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--shared", "--auth", "none"], "gradsheet server: a shared server needs sign-in: classtoken"),
        (["--auth", "entraid"], "Microsoft Entra ID needs: set XLWINGS_AUTH_ENTRAID_CLIENT_ID to"),
    ],
)
@pytest.mark.slow
def test_a_server_without_sign_in_it_can_check_does_not_start(tmp_path, options, message):
    from test_server_cli import run_cli

    out = run_cli(tmp_path, "--http", *options)
    assert out.returncode == 1 and message in out.stderr


def test_an_unreadable_class_list_stops_the_start_naming_the_file(tmp_path):
    from test_server_cli import run_cli

    (tmp_path / "class.json").write_text('{"format": "something else"}')
    out = run_cli(tmp_path, "--http", "--shared", "--runs", str(tmp_path / "runs"))
    assert out.returncode == 1
    assert f"gradsheet server: {tmp_path / 'class.json'} is not a class list gradsheet can read" in out.stderr


@pytest.mark.slow
def test_entra_id_puts_the_app_registration_into_the_manifest(tmp_path, monkeypatch):
    client_id, tenant_id = str(uuid.uuid4()), str(uuid.uuid4())
    monkeypatch.setenv("XLWINGS_AUTH_ENTRAID_CLIENT_ID", client_id)
    monkeypatch.setenv("XLWINGS_AUTH_ENTRAID_TENANT_ID", tenant_id)
    server = LiveServer(tmp_path, "--http", "--auth", "entraid").wait_ready()
    try:
        manifest = httpx.get(f"{server.url}/manifest.xml").text
        assert f"<WebApplicationInfo>\n      <Id>{client_id}</Id>" in manifest
        assert f"/{client_id}</Resource>" in manifest  # the Application ID URI: api://<host>/<client id>
        refused = cell(server, {"Authorization": "not a token", "Auth-Provider": "entraid"})
        assert refused.status_code == 401 and refused.json()["detail"].startswith("Auth error")
    finally:
        server.stop()
    assert f"Sign-in: Microsoft 365 accounts of the tenant {tenant_id}." in server.output()


def test_a_server_without_sign_in_shows_none(live_server):
    server = live_server  # the test run's default server (conftest.py)
    pane = httpx.get(f"{server.url}/taskpane.html").text
    assert 'id="gs-signin"' not in pane and "Your class code" not in pane
    assert "WebApplicationInfo" not in httpx.get(f"{server.url}/manifest.xml").text
    local = {"id": "local", "name": "Local user", "teacher": False}
    assert httpx.get(f"{server.url}/gradsheet/me").json() == local
    assert cell(server).status_code == 200
    assert "Sign-in: none (one person: this computer's user)." in server.output()


# The task pane in headless Chromium


@pytest.fixture
def pane(classroom):
    """The classroom server's task pane in a fresh headless Chromium (Office.js runs outside Office:
    xlwings' reload-until-Office-answers is spent up front, as after its last try)."""
    if browser() is None:
        pytest.skip("needs chromium")
    from excel_addin.testing.devtools import Page

    page = Page(width=350, height=900)
    page.before_each_page("sessionStorage.setItem('xlwingsTaskpaneReloadCount', '99')")
    server, _ = classroom
    page.url = f"{server.url}/taskpane.html?preview"
    yield page
    page.close()


# The first cell of the TRAIN_PROGRESS value the page's socket.io connection (xlwings' socketio.js) gets,
# asked as xlwings' custom-functions code asks (which Excel alone runs); false when the server drops it.
STREAMS = """new Promise((resolve) => {
  const key = `TRAIN_PROGRESS_pane-${Math.random()}`;
  const socket = globalThis.socket;
  const done = (value) => {
    socket.off(`xlwings:set-result-${key}`);
    socket.off("disconnect", dropped);
    resolve(value);
  };
  const dropped = () => done(false);
  socket.on(`xlwings:set-result-${key}`, (data) => done(data.result[0][0]));
  socket.on("disconnect", dropped);
  const call = () => socket.emit("xlwings:function-call", {
    client: "Office.js", version: config.xlwingsVersion, runtime: "1.4",
    func_name: "TRAIN_PROGRESS", args: [[["pane"]]], task_key: key, caller_address: null,
  });
  socket.connected ? call() : socket.once("connect", call);
  setTimeout(() => done(false), 15000);
})"""


def load(page):
    page.open(page.url)
    page.wait("document.readyState === 'complete' && !!document.getElementById('gs-signin')")


def text(page, element_id: str) -> str:
    """What the element shows ("" when hidden)."""
    shown = "(e => e.hidden ? '' : e.textContent.trim())"
    return page.evaluate(f"{shown}(document.getElementById('{element_id}'))")


def type_code(page, code: str) -> None:
    page.evaluate(f"document.getElementById('gs-class-code').value = {code!r}; 1")
    page.evaluate("document.getElementById('gs-signin-button').click(); 1")


@pytest.mark.slow
def test_the_pane_signs_in_with_a_class_code(classroom, pane):
    server, codes = classroom
    load(pane)
    assert text(pane, "gs-signin-form").startswith("Your class code")
    assert pane.evaluate("document.getElementById('gs-class-code').placeholder") == "XXXX-XXXX-XXXX-XXXX"
    assert pane.evaluate(STREAMS) == SIGN_IN_TEXT  # not signed in: the cell says how to
    type_code(pane, "AAAA-BBBB-CCCC-DDDD")
    answered = (
        "(t => !t.startsWith('Checking') && t)(document.getElementById('gs-signin-message').textContent)"
    )
    assert pane.wait(answered) == (
        "That class code was not accepted. Check it against your slip, or ask your teacher for a new one."
    )
    typed = codes["alice-smith"].lower().replace("-", " ")  # as a student may type it
    type_code(pane, typed)
    assert pane.wait("document.getElementById('gs-user-name').textContent") == "Alice Smith"
    assert text(pane, "gs-signed-in").startswith("Signed in as Alice Smith")
    assert text(pane, "gs-signin-form") == "" and text(pane, "gs-signin-message") == ""
    assert pane.evaluate("localStorage.getItem('gradsheetClassCode')") == typed.upper()
    assert pane.evaluate(STREAMS) == "status"  # the socket reconnected with the code: its streams are served
    status = pane.request_to("/gradsheet/status", after=len(pane.requests))
    assert status["headers"]["Authorization"] == typed.upper()
    assert status["headers"]["Auth-Provider"] == "classtoken"
    auth = pane.evaluate("globalThis.getAuth()")
    assert auth == {"token": typed.upper(), "provider": "classtoken"}
    load(pane)  # the pane opened again: remembered
    assert pane.wait("document.getElementById('gs-user-name').textContent") == "Alice Smith"
    assert text(pane, "gs-signin-form") == ""
    assert pane.evaluate(STREAMS) == "status"


@pytest.mark.slow
def test_the_pane_forgets_a_revoked_code_and_signs_out(classroom, pane):
    server, _ = classroom
    erin = enrol(server.folder / "runs", "Erin")["erin"]  # enrolled now, to be revoked: no other test's
    load(pane)
    type_code(pane, erin)
    assert pane.wait("document.getElementById('gs-user-name').textContent") == "Erin"
    pane.evaluate("document.getElementById('gs-sign-out').click(); 1")
    assert text(pane, "gs-signin-message") == "Signed out. Type a class code to sign in again."
    assert pane.evaluate("localStorage.getItem('gradsheetClassCode')") is None
    assert text(pane, "gs-signed-in") == "" and text(pane, "gs-signin-form").startswith("Your class code")
    type_code(pane, erin)
    pane.wait("document.getElementById('gs-user-name').textContent")
    class_command(server.folder / "runs", "revoke", "erin")
    load(pane)
    assert pane.wait("document.getElementById('gs-signin-message').textContent") == (
        "Your saved class code no longer works (your teacher may have replaced it): type your new one."
    )
    assert pane.evaluate("localStorage.getItem('gradsheetClassCode')") is None
    assert text(pane, "gs-signin-form").startswith("Your class code")


@pytest.mark.slow
def test_a_teachers_pane_shows_the_class_and_stops_a_run(classroom, pane):
    """Signed in with a teacher's code, the pane lists the class's runs (a student's training among them,
    with a Stop button that stops it); a student's pane shows no class at all."""
    server, codes = classroom
    dana_code = enrol(server.folder / "runs", "Dana")["dana"]  # enrolled now: other tests revoke theirs
    dana = Student(server.url, "dana", dana_code)
    try:
        dana.press("train", "danas-book", **QUICK, epochs=20)
        load(pane)
        type_code(pane, codes["ms-smith"])
        assert pane.wait("document.getElementById('gs-user-name').textContent") == "Ms Smith"
        rows = "Array.from(document.querySelectorAll('#gs-class-rows tr')).map(r => r.textContent)"
        found = pane.wait(f"({rows}).find(t => t.startsWith('danadanas-book'))", timeout=60)
        assert "Stop" in found
        pane.evaluate("document.querySelector('#gs-class-rows tr button').click(); 1")
        said = pane.wait("document.getElementById('gs-class-message').textContent")
        assert said.startswith("dana / danas-book: ") and ("Stopping" in said or "Taken out" in said)
        wait_for(
            lambda: dana.status("danas-book")["status"].startswith(("Stopped", "Taken out")), 120, what="stop"
        )
        pane.evaluate("document.getElementById('gs-sign-out').click(); 1")
        type_code(pane, dana_code)
        assert pane.wait("document.getElementById('gs-user-name').textContent") == "Dana"
        pane.wait("document.getElementById('gs-class').hidden === true")
    finally:
        dana.close()
