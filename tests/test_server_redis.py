"""The distributed mode end to end on loopback: a real ``redis-server``, two web processes
(``python -m excel_addin.server --redis URL``, sharing one runs folder as the web side of a department
does) and two training workers (``python -m excel_addin.worker --redis URL``, one slot each, training in
scratch folders of their own), python-socketio clients subscribed to TRAIN_PROGRESS, real small trainings.

A stream opened on one web process shows a training pressed on the other and ends with the rows of the
run's own metrics.json, whose files reach the owner's folder through Redis; Stop works through either web
process, for a waiting run and a training one; a worker killed with SIGKILL mid-run reads "Interrupted" and
its slot comes back; a web process killed with SIGKILL loses no row for a client that reconnects to the
other; Redis stopped mid-run gives its words in the stream and the status, and once it is back the run
ends with every row and new runs train.
"""

from __future__ import annotations

import os
import signal

import httpx
import pytest
from server_app import QUICK, LiveServer, call_body, press

from excel_addin import status_line
from excel_addin.jobs import keys
from excel_addin.sheets.classify_sheet import shipped_grid
from excel_addin.sheets.train_sheet import metric_cells
from excel_addin.testing.progress_stream import ProgressStream, metric_rows, status_of
from excel_addin.testing.redis_server import RedisServer
from excel_addin.testing.training_workers import TrainingWorkers, slot_pid
from excel_addin.testing.waiting import wait_for
from ml.run_dir import DEFAULT_RUN_DIR, RunDir

pytest.importorskip("socketio")
pytest.importorskip("websocket")  # python-socketio[client]: its websocket transport
pytestmark = pytest.mark.slow

OWNER = "local"  # the one user of a server without sign-in
LONG = {**QUICK, "epochs": 30}  # a run that trains until it is stopped


class Cluster:
    """Redis, the web processes and the training workers of one department, on loopback."""

    def __init__(self, folder):
        self.folder = folder
        self.redis = RedisServer(folder / "redis").start()
        self.runs = folder / "runs"
        self.webs = [self.web(f"web{k}") for k in (1, 2)]
        self.workers = [TrainingWorkers(folder, self.redis.url, name=f"worker{k}") for k in (1, 2)]
        for web in self.webs:
            web.wait_ready()
        for workers in self.workers:
            workers.wait_warm()

    def web(self, name: str) -> LiveServer:
        (self.folder / name).mkdir()
        args = ("--http", "--redis", self.redis.url, "--runs", str(self.runs))
        return LiveServer(self.folder / name, *args)

    def run_dir(self, workbook: str) -> RunDir:
        return RunDir(self.runs / OWNER / workbook / DEFAULT_RUN_DIR)

    def run_id(self, workbook: str) -> str:
        return keys.connect(self.redis.url).hget(keys.LATEST, keys.field(OWNER, workbook)).decode()

    def close(self) -> None:
        for workers in self.workers:
            workers.stop()
        for web in self.webs:
            web.stop()
        self.redis.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    department = Cluster(tmp_path_factory.mktemp("department"))
    yield department
    department.close()


def status(url: str, workbook: str) -> dict:
    return httpx.get(f"{url}/gradsheet/status", params={"workbook": workbook}, timeout=60).json()


def wait_status(url: str, workbook: str, *starts: str, timeout: float = 240.0) -> str:
    """The workbook's status once it starts with one of ``starts`` (polled as the task pane does)."""

    def shown() -> str | None:
        text = status(url, workbook)["status"]
        return text if text.startswith(starts) else None

    return wait_for(
        shown, timeout, what=lambda: f"{starts} for {workbook}: {status(url, workbook)}", interval=0.5
    )


def training(table: list[list]) -> bool:
    return status_of(table).startswith("Training on cpu: epoch")


def own_rows(run_dir: RunDir) -> list[list]:
    """The run's epoch rows as its own metrics.json holds them, in the cells' form."""
    return [metric_cells(row) for row in run_dir.read_record()["epochs"]]


def test_a_stream_on_one_web_process_shows_a_training_pressed_on_the_other(cluster):
    web1, web2 = cluster.webs
    stream = ProgressStream(web1.url, "across")
    try:
        stream.wait_for(lambda v: status_of(v) == status_line.NO_RUN_TEXT, timeout=60)
        press(web2.url, "train", "across", **QUICK, epochs=2)
        _, done = stream.wait_for(lambda v: status_of(v).startswith("Completed: 2 epochs"), timeout=300)
        assert any(s.startswith("Training on cpu: epoch 1 of 2, step") for s in stream.statuses())
    finally:
        stream.close()
    run_dir = cluster.run_dir("across")  # on the web side: the worker trained in a scratch folder
    assert metric_rows(done) == own_rows(run_dir) and len(own_rows(run_dir)) == 2
    assert {"model.pt", "metrics.json", "loss_curves.png", "misclassified.png"} <= {
        p.name for p in run_dir.path.iterdir()
    }
    assert status_of(done).endswith(f"Files in {DEFAULT_RUN_DIR}")  # the owner's words, no server path
    scratch_left = [path for workers in cluster.workers for path in workers.scratch.iterdir()]
    wait_for(lambda: not any(p.exists() for p in scratch_left), 60, what="the scratch folders to empty")
    body = call_body(
        "CLASSIFY_PIXELS",
        [[list(r) for r in shipped_grid()], [[True]], [[""]], [[f"across/{DEFAULT_RUN_DIR}"]]],
    )
    probabilities = httpx.post(f"{web1.url}/xlwings/custom-functions-call", json=body, timeout=60).json()
    assert abs(sum(probabilities["result"][0]) - 1) < 1e-3  # the cell reads the delivered model


def test_stop_through_either_web_process(cluster):
    web1, web2 = cluster.webs
    press(web1.url, "train", "long1", **LONG)
    press(web2.url, "train", "long2", **LONG)
    for workbook in ("long1", "long2"):  # both slots train
        wait_status(web2.url, workbook, "Training on cpu: epoch")
    press(web1.url, "train", "waits", **QUICK)
    assert status(web2.url, "waits")["status"] == status_line.waiting_text(1, 1, 2)
    press(web2.url, "stop", "waits", **QUICK)
    assert status(web1.url, "waits")["status"] == status_line.CANCELLED_TEXT
    press(web2.url, "stop", "long1", **LONG)
    press(web1.url, "stop", "long2", **LONG)
    for workbook in ("long1", "long2"):
        assert wait_status(web1.url, workbook, "Stopped", timeout=120)
    assert status(web1.url, "")["server"] == {"running": 0, "queued": 0, "slots": 2}


def test_a_worker_killed_mid_run_reads_interrupted_and_its_slot_comes_back(cluster):
    web1, web2 = cluster.webs
    stream = ProgressStream(web1.url, "killed")
    try:
        press(web2.url, "train", "killed", **LONG)
        stream.wait_for(training, timeout=240)
        os.kill(slot_pid(cluster.redis.url, cluster.run_id("killed")), signal.SIGKILL)
        _, ended = stream.wait_for(
            lambda v: status_of(v).startswith(status_line.ENDED_EARLY_TEXT), timeout=90
        )
        assert "Training on cpu: epoch" in status_of(ended)  # where it was when it died
    finally:
        stream.close()
    wait_for(lambda: status(web1.url, "")["server"]["slots"] == 2, 240, what="the killed slot to come back")
    press(web1.url, "train", "after-kill", **QUICK, epochs=1)
    assert wait_status(web2.url, "after-kill", "Completed", "Failed", "Interrupted").startswith("Completed")


def test_a_web_process_killed_mid_run_loses_no_row_for_a_client_that_reconnects(cluster):
    web1, web2 = cluster.webs
    web3 = cluster.web("web3").wait_ready()
    first = ProgressStream(web3.url, "reconnect")
    press(web1.url, "train", "reconnect", **QUICK, epochs=4)
    _, before = first.wait_for(lambda v: len(metric_rows(v)) >= 1 and training(v), timeout=300)
    web3.process.kill()  # SIGKILL: the client's socket is gone with it
    web3.process.wait()
    second = ProgressStream(web2.url, "reconnect")  # the client reconnects, through the other process
    try:
        _, done = second.wait_for(lambda v: status_of(v).startswith("Completed: 4 epochs"), timeout=300)
    finally:
        second.close()
    rows = own_rows(cluster.run_dir("reconnect"))
    assert metric_rows(done) == rows and [row[0] for row in rows] == [1, 2, 3, 4]
    assert metric_rows(before) == rows[: len(metric_rows(before))]


def test_redis_stopped_mid_run_and_started_again(cluster):
    web1, web2 = cluster.webs
    stream = ProgressStream(web1.url, "outage")
    try:
        press(web2.url, "train", "outage", **QUICK, epochs=4)
        stream.wait_for(training, timeout=240)
        cluster.redis.stop()
        unreachable = status_line.QUEUE_UNREACHABLE_TEXT
        stream.wait_for(lambda v: status_of(v).startswith(unreachable), timeout=30)
        assert status(web2.url, "outage")["status"].startswith(unreachable)
        press(web1.url, "train", "refused", **QUICK)  # answered, and its status says why nothing queued
        assert status(web1.url, "refused")["status"].startswith(unreachable)
        cluster.redis.start()
        _, done = stream.wait_for(lambda v: status_of(v).startswith("Completed: 4 epochs"), timeout=300)
    finally:
        stream.close()
    rows = own_rows(cluster.run_dir("outage"))
    assert metric_rows(done) == rows and [row[0] for row in rows] == [1, 2, 3, 4]
    press(web1.url, "train", "after-outage", **QUICK, epochs=1)
    assert wait_status(web2.url, "after-outage", "Completed", "Failed", "Interrupted").startswith("Completed")


def test_several_web_processes_on_one_port(cluster):
    """``--workers 2``: uvicorn's two web processes behind one port, each serving socket.io itself."""
    import psutil

    (cluster.folder / "web-pair").mkdir()
    pair = LiveServer(cluster.folder / "web-pair", "--http", "--redis", cluster.redis.url,
                      "--runs", str(cluster.runs), "--workers", "2").wait_ready()  # fmt: skip
    try:
        children = psutil.Process(pair.process.pid).children()
        assert sum("spawn_main" in " ".join(child.cmdline()) for child in children) == 2
        streams = [ProgressStream(pair.url, "across") for _ in range(4)]  # spread over both by the kernel
        try:
            shown = [
                stream.wait_for(lambda v: status_of(v).startswith("Completed"), 60)[1] for stream in streams
            ]
        finally:
            for stream in streams:
                stream.close()
        assert all(metric_rows(table) == own_rows(cluster.run_dir("across")) for table in shown)
    finally:
        pair.stop()
