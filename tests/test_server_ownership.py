"""A classroom server tried by a student who wants another student's run (issue 24, findings 2, 3, 4, 7):
real servers under uvicorn on loopback (``--shared``, class codes), real small trainings, a python-socketio
client per student that records every event it receives. Each attempt fails with a message that gives
nothing away, and the teacher sees and stops the class."""

from __future__ import annotations

import httpx
import pytest
from server_app import QUICK, LiveServer, wait_for

from excel_addin.server.streams import MAX_STREAMS_PER_USER, SIGN_IN_TEXT, TOO_MANY_TEXT
from excel_addin.testing.class_codes import enrol
from excel_addin.testing.student import Student
from ml import run_lock
from ml.run_dir import RunDir

pytest.importorskip("socketio")


@pytest.fixture(scope="module")
def classroom(tmp_path_factory):
    """A shared server with Alice, Bob and Carol enrolled, and their teacher."""
    folder = tmp_path_factory.mktemp("classroom")
    codes = enrol(folder / "runs", "Alice", "Bob", "Carol")
    codes |= enrol(folder / "runs", "Ms Smith", teacher=True)
    server = LiveServer(
        folder, "--http", "--shared", "--host", "127.0.0.1", "--max-trainings", "1"
    ).wait_ready()
    people = {user: Student(server.url, user, code) for user, code in codes.items()}
    yield server, people
    for person in people.values():
        person.close()
    server.stop()


def run_dir(server, user: str, workbook: str) -> RunDir:
    return RunDir(server.folder / "runs" / user / workbook / "runs" / "mnist")


def test_another_users_workbook_id_leads_to_ones_own_folder(classroom, monkeypatch):
    """Alice trains; Bob, using her workbook id, reads, trains and stops only in his own folder."""
    server, people = classroom
    monkeypatch.setenv(run_lock.STATE_ENV, str(server.folder / "state"))
    alice, bob = people["alice"], people["bob"]
    alice.press("train", "alice-book", **QUICK, epochs=30)
    wait_for(lambda: alice.status("alice-book")["status"].startswith("Training on cpu"), what="Alice's run")
    assert bob.status("alice-book")["status"] == "No training yet: press Train."  # his own, empty
    bob.press("stop", "alice-book", **QUICK)
    assert bob.status("alice-book")["status"] == "No training is running for runs/mnist."
    assert run_lock.active_run(run_dir(server, "alice", "alice-book").path) is not None  # still training
    # Stop with an output folder that leads out of his folder: refused, naming no one else's
    for out_dir in ("../../alice/alice-book/runs/mnist", str(run_dir(server, "alice", "alice-book").path)):
        bob.press("stop", "bob-book", **{**QUICK, "out_dir": out_dir})
        said = bob.status("bob-book")["status"]
        assert said.startswith("Not stopped: out_dir must be a folder inside this workbook's folder")
        assert "alice" not in said.replace(out_dir, "") and str(server.folder) not in said
    assert run_lock.active_run(run_dir(server, "alice", "alice-book").path) is not None
    alice.press("stop", "alice-book", **QUICK)
    wait_for(lambda: alice.status("alice-book")["status"].startswith("Stopped"), what="Alice's stop")


def test_cells_read_only_ones_own_files(classroom):
    server, people = classroom
    picture = server.folder / "runs" / "alice" / "secret.png"
    picture.parent.mkdir(parents=True, exist_ok=True)
    picture.write_bytes(b"Alice's picture")
    refused = "#VALUE! image path must be a path inside your folder on the server, got "
    bob = people["bob"]
    assert bob.cell("CLASSIFY_IMAGE", "../alice/secret.png") == [[f"{refused}'../alice/secret.png'"]]
    assert bob.cell("CLASSIFY_IMAGE", str(picture)) == [[f"{refused}'<server path>'"]]
    model = bob.cell("CLASSIFY_IMAGE", "x.png", "../alice/alice-book/runs/mnist/model.pt")[0][0]
    assert model.startswith("#VALUE! model_path must be a path inside your folder on the server")


def test_no_sign_in_no_service(classroom):
    server, _ = classroom
    nobody = Student(server.url, "nobody")
    try:
        for request in (
            lambda: nobody.cell("BACKPROP_LOSS", 0.5, 3),
            lambda: nobody.status("alice-book"),
            lambda: nobody.press("train", "alice-book", **QUICK),
        ):
            with pytest.raises(httpx.HTTPStatusError) as refused:
                request()
            assert refused.value.response.status_code == 401
            assert "sign in in the gradsheet pane" in refused.value.response.text
        nobody.connect()
        key = nobody.stream("TRAIN_PROGRESS", "alice-book", "status")
        assert nobody.wait_value(key, lambda v: True, timeout=30) == [[SIGN_IN_TEXT]]
    finally:
        nobody.close()


def test_streams_reach_their_user_only(classroom):
    """Alice and Bob each watch their own TRAIN_PROGRESS (with the same formula), Carol listens without
    asking: each receives only their own values, Carol nothing; and two of Alice's cells with the same
    formula are two subscriptions of one stream."""
    server, people = classroom
    alice, bob, carol = (people[user].connect() for user in ("alice", "bob", "carol"))
    alice_key, bob_key = (
        alice.stream("TRAIN_PROGRESS", "book", "status"),
        bob.stream("TRAIN_PROGRESS", "book", "status"),
    )
    assert alice_key == bob_key  # the same formula: the client's key is the same, the server's are not
    bob.press("train", "book", **QUICK, epochs=1)
    bob.wait_value(bob_key, lambda v: v[0][0].startswith("Completed"), timeout=180)
    alice.wait_value(alice_key, lambda v: v[0][0] == "No training yet: press Train.", timeout=30)
    assert not any(v[0][0].startswith(("Starting", "Training", "Completed")) for v in alice.values(alice_key))
    assert alice.foreign() == bob.foreign() == carol.foreign() == [] and carol.events == []


def test_the_teacher_sees_and_stops_the_class(classroom):
    server, people = classroom
    teacher, carol = people["ms-smith"], people["carol"]
    assert carol.http.get("/gradsheet/class").status_code == 403
    carol.press("train", "long", **QUICK, epochs=30)
    wait_for(lambda: carol.status("long")["status"].startswith(("Starting", "Training")), what="Carol's run")
    runs = teacher.http.get("/gradsheet/class").json()["runs"]
    mine = next(r for r in runs if (r["owner"], r["workbook"]) == ("carol", "long"))
    assert mine["status"].startswith(("Starting", "Training")) and str(server.folder) not in str(runs)
    stopped = teacher.http.post("/gradsheet/class/stop", json={"owner": "carol", "workbook": "long"}).json()
    assert stopped["status"].startswith(("Stopping", "Taken out of the queue"))
    wait_for(
        lambda: carol.status("long")["status"].startswith(("Stopped", "Taken out")), timeout=120, what="stop"
    )


def test_a_student_cannot_open_streams_without_end(classroom):
    """Each live TRAIN_PROGRESS cell polls its run: a student opening one per made-up workbook id gets a
    message past MAX_STREAMS_PER_USER, while another student's stream is still served."""
    server, people = classroom
    greedy, other = Student(server.url, "carol", people["carol"].headers["Authorization"]), people["alice"]
    try:
        greedy.connect()
        keys = [
            greedy.stream("TRAIN_PROGRESS", f"made-up-{k}", "status") for k in range(MAX_STREAMS_PER_USER + 5)
        ]
        refused = greedy.wait_value(keys[-1], lambda v: True, timeout=60)
        assert refused == [[TOO_MANY_TEXT]]
        assert greedy.wait_value(keys[0], lambda v: True, timeout=60) == [["No training yet: press Train."]]
        if other.sio is None:
            other.connect()
        mine = other.stream("TRAIN_PROGRESS", "alice-book", "status")
        assert other.wait_value(mine, lambda v: True, timeout=60)[0][0] != TOO_MANY_TEXT
    finally:
        greedy.close()
