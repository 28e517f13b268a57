"""The task pane's buttons (custom scripts) over HTTP, on workbooks shaped like the template, as Excel sends
them; their actions, applied to the workbook and read back through a remote-engine Book, give the expected
cells. Train runs real (tiny) trainings
through the server's queue: one at a time, the next one waits, Stop takes it out of the queue."""

from __future__ import annotations

import importlib.util
import time

import pytest
import xlwings as xw
from remote_book import apply_actions, book_payload, only_sheets
from server_app import client as make_client

from excel_addin import layout
from excel_addin.server import training, workbook
from excel_addin.server.buttons import SETUP_MODULE
from excel_addin.server.options import options
from ml import backprop, run_lock
from ml.run_dir import RunDir

QUICK = {
    "subset": 1000,
    "batch_size": 100,
    "model": "small",
    "device": "cpu",
    "lr": 0.05,
    "seed": 3,
    "out_dir": "",
}
STATUS = layout.TRAIN_STATUS_CELL


@pytest.fixture(scope="module")
def client():
    with make_client() as c:
        yield c


class Workbook:
    """A workbook in Excel as far as the server sees it: what the task pane sends, updated by the actions
    each button returns (as the task pane applies them)."""

    def __init__(self, client, document: str = "", **train_settings):
        self.client, self.document = client, document
        self.payload = book_payload({**QUICK, **train_settings}, client="Office.js")
        self.actions: list[dict] = []

    def press(self, script: str, expect: int = 200):
        meta = {m["function_name"]: m for m in self.client.get("/xlwings/custom-scripts-meta.json").json()}
        sent = only_sheets(self.payload, meta[script]["include"])
        if script != "refresh_backprop":
            sent["args"] = [self.document]
        response = self.client.post(f"/xlwings/custom-scripts-call/{script}", json=sent)
        assert response.status_code == expect, response.text
        if expect == 200:
            self.actions = response.json()["actions"]
            self.payload = apply_actions(self.payload, self.actions)
        return response

    @property
    def book(self) -> xw.Book:
        """The workbook as it is now, as a remote-engine Book (what the next script would get)."""
        return xw.Book(json=self.payload)

    def cell(self, sheet: str, address: str):
        return self.book.sheets[sheet][address].value

    @property
    def status(self) -> str:
        return self.cell(layout.TRAIN_SHEET, STATUS)

    @property
    def id(self) -> str | None:
        return workbook.read_constant(self.book, layout.WORKBOOK_ID_NAME)


def server_status(client, wid: str) -> dict:
    return client.get("/gradsheet/status", params={"workbook": wid}).json()


def wait_for(condition, timeout: float = 120.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_refresh_backprop_writes_the_engines_curves(client):
    book = Workbook(client)
    book.press("refresh_backprop")
    assert (
        book.cell(layout.BACKPROP_SHEET, layout.BACKPROP_STATUS_CELL)
        == "Refreshed: 6 rates x 100 epochs, sigmoid output"
    )
    for lr in layout.DEFAULT_RATES:
        sheet = layout.rate_sheet_name(lr)
        letters = layout.LR_REFRESH_HEADER_CELL.rstrip("0123456789")
        first = int(layout.LR_REFRESH_HEADER_CELL[len(letters) :])
        column = [book.cell(sheet, f"{letters}{first + 1 + epoch}") for epoch in range(101)]
        assert column == list(backprop.loss_curve(lr, 100))
    assert [a["func"] for a in book.actions].count("addPicture") == 1


def test_train_with_a_bad_setting_says_so_and_gives_the_workbook_an_id(client):
    book = Workbook(client, document="https://school.example/alice/gradsheet.xlsx", epochs="three")
    book.press("train")
    assert book.status == "Not started: check the settings: epochs must be a whole number, got 'three'"
    assert book.id is not None and workbook.ID_PATTERN.fullmatch(book.id)
    first = book.id
    book.press("train")
    assert book.id == first  # the same workbook keeps its id
    outside = Workbook(client, epochs=1, out_dir="/etc/gradsheet")
    outside.press("train")
    assert outside.status.startswith(
        "Not started: check the settings: out_dir must be a folder inside this workbook"
    )


def test_a_copy_of_a_workbook_gets_its_own_id(client):
    original = Workbook(client, document="https://school.example/teacher/gradsheet.xlsx", epochs="x")
    original.press("train")
    copy = Workbook(client, document="https://school.example/bob/gradsheet.xlsx", epochs="x")
    copy.payload["names"] = list(original.payload["names"])  # the teacher's file, copied
    copy.press("train")
    assert copy.id != original.id
    unsaved = Workbook(client, epochs="x")  # a new workbook: no location yet
    unsaved.press("train")
    saved_id = unsaved.id
    unsaved.document = "C:/Users/carol/gradsheet.xlsx"  # saved: it adopts the location, keeps its id
    unsaved.press("train")
    assert unsaved.id == saved_id
    unsaved.payload["names"] = [dict(n, refers_to='="not ok!"') if n["name"] == "GRADSHEET_ID" else n
                                for n in unsaved.payload["names"]]  # fmt: skip
    unsaved.press("train")
    assert unsaved.status.startswith("Not started: the workbook id GRADSHEET_ID must be 1 to 64 letters")


def test_a_workbook_without_gradsheets_sheets_is_told_to_set_up(client):
    book = Workbook(client)
    book.payload["sheets"] = [s for s in book.payload["sheets"] if s["name"] != layout.TRAIN_SHEET]
    response = book.press("train", expect=400)
    assert "has no Train sheet: press Set up gradsheet first" in response.text


@pytest.mark.skipif(
    importlib.util.find_spec(SETUP_MODULE) is not None, reason="Set up is tested with its module"
)
def test_set_up_without_its_module_says_so(client):
    response = Workbook(client).press("setup_gradsheet", expect=400)
    assert "Set up is not available" in response.text


def test_trainings_wait_their_turn_and_stop(client):
    """One training at a time (the default on a machine without GPU): a second workbook's Train waits in
    the queue, a second Train of the same workbook is refused, Stop takes a waiting run out of the queue
    and stops a running one."""
    assert training.queue().counts()["slots"] == 1
    alice = Workbook(client, document="https://school.example/alice.xlsx", epochs=30)
    bob = Workbook(client, document="https://school.example/bob.xlsx", epochs=1)
    alice.press("train")
    assert alice.status == "Starting: 30 epoch(s) of the small model on 1,000 images, device cpu..."
    assert alice.cell(layout.TRAIN_SHEET, layout.TRAIN_PROGRESS_CELL) == 0.0
    bob.press("train")
    assert bob.status.startswith("Queued: position 1 of 1 (this server trains 1 workbook(s) at a time)")
    assert server_status(client, bob.id)["queue"] == 1
    out_dir = workbook.folder(bob.id) / "runs" / "mnist"
    assert run_lock.active_run(out_dir) is not None  # the waiting run holds its folder already
    bob.press("train")
    assert bob.status == "Not started: this workbook's training is queued (position 1). Press Stop first."
    alice.press("train")
    assert alice.status.startswith("Not started: this workbook's training is still running")

    bob.press("stop")
    assert bob.status == training.CANCELLED_TEXT == server_status(client, bob.id)["status"]
    assert run_lock.active_run(out_dir) is None
    alice_dir = RunDir(workbook.folder(alice.id) / "runs" / "mnist")
    wait_for(lambda: server_status(client, alice.id)["status"].startswith("Training on cpu"), what="training")
    alice.press("stop")
    assert alice.status.startswith("Stopping after the current batch")
    wait_for(lambda: training.queue().counts()["running"] == 0, what="the run to end")
    state = server_status(client, alice.id)
    assert state["status"].startswith("Stopped after") and f"Files in {alice_dir.path}" in state["status"]
    assert state["epochs"] == len(alice_dir.read_metrics()) < 30
    assert alice_dir.progress.is_file() and options().runs in alice_dir.path.parents
