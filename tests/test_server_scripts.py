"""The task pane's buttons (custom scripts) over HTTP, on workbooks shaped like the template, as Excel sends
them; their actions, applied to the workbook and read back through a remote-engine Book, give the expected
cells. Train runs real (tiny) trainings
through the server's queue: one at a time, the next one waits, Stop takes it out of the queue."""

from __future__ import annotations

import pytest
from server_app import LOCAL, Workbook, server_status, wait_for

from excel_addin import status_line
from excel_addin.server import workbook
from excel_addin.server.options import options
from excel_addin.server.runs import run_book
from excel_addin.sheets import layout
from ml import backprop, run_lock
from ml.run_dir import RunDir

STATUS = layout.TRAIN_STATUS_CELL


@pytest.mark.slow
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
    response = unsaved.press("train", expect=400)  # no usable id: the task pane shows the message
    assert "Not started: the workbook id GRADSHEET_ID must be 1 to 64 letters" in response.text


def test_a_workbook_without_gradsheets_sheets_is_told_to_set_up(client):
    book = Workbook(client)
    book.payload["sheets"] = [s for s in book.payload["sheets"] if s["name"] != layout.TRAIN_SHEET]
    response = book.press("train", expect=400)
    assert "has no Train sheet: press Set up gradsheet first" in response.text


@pytest.mark.slow
def test_trainings_wait_their_turn_and_stop(client):
    """One training at a time (the default on a machine without GPU): a second workbook's Train waits in
    the queue, a second Train of the same workbook is refused, Stop takes a waiting run out of the queue
    and stops a running one."""
    assert run_book().counts()["slots"] == 1
    alice = Workbook(client, document="https://school.example/alice.xlsx", epochs=30)
    bob = Workbook(client, document="https://school.example/bob.xlsx", epochs=1)
    alice.press("train")
    assert alice.status == "Starting: 30 epoch(s) of the small model on 1,000 images, device cpu..."
    assert server_status(client, alice.id)["progress"] == 0.0
    assert not [a for a in alice.actions if a["func"] == "setValues"]  # the sheet's status streams
    bob.press("train")
    assert bob.status.startswith("Queued: position 1 of 1 (this server trains 1 workbook(s) at a time)")
    assert server_status(client, bob.id)["queue"] == 1
    out_dir = workbook.folder(LOCAL, bob.id) / "runs" / "mnist"
    assert run_lock.active_run(out_dir) is not None  # the waiting run holds its folder already
    bob.press("train")
    assert bob.status == "Not started: this workbook's training is queued (position 1). Press Stop first."
    alice.press("train")
    assert alice.status.startswith("Not started: this workbook's training is still running")

    bob.press("stop")
    assert bob.status == status_line.CANCELLED_TEXT == server_status(client, bob.id)["status"]
    assert run_lock.active_run(out_dir) is None
    alice_dir = RunDir(workbook.folder(LOCAL, alice.id) / "runs" / "mnist")
    wait_for(lambda: server_status(client, alice.id)["status"].startswith("Training on cpu"), what="training")
    alice.press("stop")
    assert alice.status.startswith(("Stopping after the current batch", "Stopped"))  # it may be quick
    wait_for(lambda: run_book().counts()["running"] == 0, what="the run to end")
    state = server_status(client, alice.id)
    assert state["status"].startswith("Stopped")
    assert "Files in runs/mnist" in state["status"]  # what the sheet says, no path of the server
    assert state["epochs"] == len(alice_dir.read_metrics()) < 30
    assert alice_dir.progress.is_file() and options().runs in alice_dir.path.parents
