"""The buttons' macros end to end against real xlwings Books (the remote engine) and real training runs.

The training worker's core runs in a thread against the in-process Book (a remote Book cannot be shared
with another process); the process path (launch, lock with the worker's pid, stop file, clean exit) is
tested with a real worker process, which finds no Excel here and trains writing its files only.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from openpyxl.utils.cell import column_index_from_string, coordinate_from_string
from quick_training import QUICK

from excel_addin import buttons
from excel_addin.cells import Files
from excel_addin.sheets import layout
from excel_addin.sheets.spec import offset
from excel_addin.testing.remote_book import actions, make_book, picture_png, read
from excel_addin.testing.waiting import wait_for
from excel_addin.worker import run_with_lock
from ml import run_lock
from ml.events import METRIC_COLUMNS

# Tiny but real: 1,000 MNIST images, 10 steps of 100 per epoch, the small CNN on the CPU.


pytestmark = pytest.mark.usefixtures("state_dir")  # run locks in a folder of the test's own (conftest.py)


class ThreadLauncher:
    """Runs the worker's core (everything but process start-up) in a thread on the same Book."""

    def __init__(self):
        self.result = None
        self.thread = None

    def __call__(self, config, book, lock):
        def work():
            self.result = run_with_lock(config, lock, book, progress_every=0.0)

        self.thread = threading.Thread(target=work, daemon=True)
        self.thread.start()
        return self.thread

    def join(self, timeout=300):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "training did not finish"
        return self.result


class GatedLauncher(ThreadLauncher):
    """Like ThreadLauncher, but the worker's core waits for ``gate``: a worker process starting up."""

    def __init__(self):
        super().__init__()
        self.gate = threading.Event()

    def __call__(self, config, book, lock):
        def work():
            self.gate.wait(60)
            self.result = run_with_lock(config, lock, book, progress_every=0.0)

        self.thread = threading.Thread(target=work, daemon=True)
        self.thread.start()
        return self.thread


def status(book) -> str:
    return read(book, layout.TRAIN_SHEET, layout.TRAIN_STATUS_CELL)


def cell_position(address: str) -> tuple[int, int]:
    """(row, column), 0-based, as the remote engine's actions give them."""
    letters, row = coordinate_from_string(address)
    return row - 1, column_index_from_string(letters) - 1


def metrics_csv(out_dir: Path) -> list[dict[str, float]]:
    with open(out_dir / "metrics.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == list(METRIC_COLUMNS)
    return [dict(zip(rows[0], map(float, row), strict=True)) for row in rows[1:]]


@pytest.mark.slow
def test_train_writes_progress_metrics_and_pictures_then_releases_the_lock(tmp_path):
    out = tmp_path / "run"
    book = make_book({**QUICK, "epochs": 2, "out_dir": str(out)})
    launcher = ThreadLauncher()
    assert buttons.train(book, launcher=launcher) is launcher.thread
    ended = launcher.join()
    assert ended.status == "completed" and ended.epochs_done == 2

    # Status and progress as the run went: starting, per-step progress with an ETA, the end.
    status_at = cell_position(layout.TRAIN_STATUS_CELL)
    texts = [a["values"][0][0] for a in actions(book, "setValues", layout.TRAIN_SHEET)
             if (a["start_row"], a["start_column"]) == status_at]  # fmt: skip
    assert texts[0].startswith("Starting: 2 epoch(s) of the small model on 1,000 images, device cpu")
    assert any("epoch 1 of 2, step" in t and "ETA" in t for t in texts)
    assert any("epoch 2 of 2, step" in t for t in texts)
    assert status(book).startswith(f"Completed: 2 epochs, test accuracy {ended.final_test_acc:.2%}")
    assert read(book, layout.TRAIN_SHEET, layout.TRAIN_PROGRESS_CELL) == 1.0
    assert read(book, layout.TRAIN_SHEET, layout.TRAIN_DEVICE_CELL) == "cpu"

    # One metric row per epoch, the same numbers as the run's metrics.csv.
    header = layout.TRAIN_METRICS_HEADER_CELL
    (names,) = read(book, layout.TRAIN_SHEET, header, 1, len(METRIC_COLUMNS))
    rows = read(book, layout.TRAIN_SHEET, offset(header, rows=1), 3, len(METRIC_COLUMNS))
    assert rows[2] == [None] * len(METRIC_COLUMNS)
    for row, expected in zip(rows[:2], metrics_csv(out), strict=True):
        assert dict(zip(names, row, strict=True)) == pytest.approx(expected)
    assert 0.0 < rows[1][names.index("test_acc")] <= 1.0

    # The model summary, and the four charts as pictures with their names.
    summary_header = layout.TRAIN_SUMMARY_HEADER_CELL
    assert read(book, layout.TRAIN_SHEET, summary_header, 1, 5) == [
        ["Layer", "Output shape", "Params", "Jump", "RF"]
    ]
    pictures = {p.name for p in book.sheets[layout.TRAIN_SHEET].pictures}
    assert pictures == {"loss_curves", "accuracy_curves", "confusion_matrix", "misclassified"}
    assert run_lock.read_lock(out) is None
    assert (out / "model.pt").is_file()


@pytest.mark.slow
def test_stop_ends_the_run_after_the_current_batch_and_keeps_the_checkpoint(tmp_path):
    out = tmp_path / "run"
    book = make_book({**QUICK, "epochs": 20, "out_dir": str(out)})
    launcher = ThreadLauncher()
    buttons.train(book, launcher=launcher)
    wait_for(lambda: (out / "model.pt").exists(), what="the first checkpoint")
    lock = buttons.stop(book)
    assert lock is not None and run_lock.stop_path(out).exists()
    assert status(book).startswith("Stopping after the current batch") or status(book).startswith("Stopped")
    ended = launcher.join()
    assert ended.status == "stopped" and 1 <= ended.epochs_done < 20
    assert status(book).startswith(f"Stopped after {ended.epochs_done} epoch")
    assert len(metrics_csv(out)) == ended.epochs_done
    import torch

    checkpoint = torch.load(out / "model.pt", weights_only=True)
    assert checkpoint["epoch"] == ended.epochs_done
    assert run_lock.read_lock(out) is None and not run_lock.stop_path(out).exists()
    assert json.loads((out / "metrics.json").read_text())["run"]["status"] == "stopped"


def test_a_stop_pressed_while_the_run_starts_up_is_not_lost(tmp_path):
    """Stop between the Train button and the first batch (the worker still starting, a run queued on the
    add-in server) stops the run as soon as it starts."""
    out = tmp_path / "run"
    book = make_book({**QUICK, "epochs": 20, "out_dir": str(out)})
    launcher = GatedLauncher()
    buttons.train(book, launcher=launcher)
    assert buttons.stop(book) is not None
    launcher.gate.set()
    ended = launcher.join()
    assert ended.status == "stopped" and ended.epochs_done == 0
    assert not run_lock.stop_path(out).exists()


def test_second_train_is_refused_while_one_runs(tmp_path):
    out = tmp_path / "run"
    book = make_book({**QUICK, "epochs": 20, "out_dir": str(out)})
    launcher = ThreadLauncher()
    buttons.train(book, launcher=launcher)
    wait_for(lambda: run_lock.read_lock(out) is not None, what="the lock")
    other = make_book({**QUICK, "epochs": 1, "out_dir": str(out)})  # another workbook, the same folder
    second = ThreadLauncher()
    assert buttons.train(other, launcher=second) is None
    assert second.thread is None
    assert status(other).startswith("Not started: training started at")
    assert "Press Stop first" in status(other) and str(out) in status(other)
    assert str(run_lock.lock_path(out)) in status(other)  # the message names the lock file
    buttons.stop(book)
    assert launcher.join().status in ("stopped", "completed")


def test_bad_settings_start_nothing(tmp_path):
    book = make_book({**QUICK, "epochs": "three", "out_dir": str(tmp_path / "run")})
    assert buttons.train(book, launcher=ThreadLauncher()) is None
    assert status(book) == "Not started: check the settings: epochs must be a whole number, got 'three'"
    book = make_book({**QUICK, "epochs": 1, "model": "huge", "out_dir": str(tmp_path / "run")})
    assert buttons.train(book, launcher=ThreadLauncher()) is None
    assert status(book).startswith("Not started: check the settings: model must be one of default, small")
    assert run_lock.read_lock(tmp_path / "run") is None


def test_settings_from_cells():
    config = buttons.config_from_settings(
        {"epochs": 3.0, "batch_size": 256.0, "lr": 0.1, "model": " Small", "device": "CPU", "seed": 7.0,
         "subset": 0.0, "out_dir": "results", "model_path": None},
        Files(Path("/books")),
    )  # fmt: skip
    settings = (config.epochs, config.batch_size, config.lr, config.model, config.device, config.seed)
    assert settings == (3, 256, 0.1, "small", "cpu", 7)
    assert config.subset == 0 and config.out_dir == str(Path("/books/results"))
    defaults = buttons.config_from_settings({}, Files(Path("/books")))
    assert defaults.epochs == 15 and defaults.out_dir == str(Path("/books/runs/mnist"))
    with pytest.raises(ValueError, match="batch_size must be a whole number, got 2.5"):
        buttons.config_from_settings({"batch_size": 2.5}, Files(Path("/books")))
    for name in ("lr", "epochs"):  # a TRUE cell is not 1: both are refused alike
        with pytest.raises(ValueError, match=f"{name} must be a .*number, got True"):
            buttons.config_from_settings({name: True}, Files(Path("/books")))
    with pytest.raises(ValueError, match="out_dir must be text, got 3.0"):
        buttons.config_from_settings({"out_dir": 3.0}, Files(Path("/books")))


def test_stop_without_a_run_says_so(tmp_path):
    book = make_book({"out_dir": str(tmp_path / "run")})
    assert buttons.stop(book) is None
    assert status(book) == f"No training is running for {tmp_path / 'run'}."
    assert not run_lock.stop_path(tmp_path / "run").exists()


@pytest.mark.slow
def test_a_stale_lock_is_taken_over(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    out = tmp_path / "run"
    stale = run_lock.RunLock("0" * 16, dead.pid, time.time() - 60, str(out), None, time.time() - 60)
    run_lock.lock_path(out).write_text(json.dumps(dataclasses.asdict(stale)))
    book = make_book({**QUICK, "epochs": 1, "out_dir": str(out)})
    launcher = ThreadLauncher()
    assert buttons.train(book, launcher=launcher) is not None
    assert launcher.join().status == "completed"


@pytest.mark.slow
def test_real_worker_process_trains_refuses_a_second_train_and_stops(tmp_path):
    """The default launcher: a detached worker process; here it finds no Excel and writes files only."""
    out = tmp_path / "run"
    book = make_book({**QUICK, "epochs": 20, "out_dir": str(out)})
    process = buttons.train(book)
    assert isinstance(process, subprocess.Popen)
    try:
        wait_for(lambda: (out / "metrics.json").exists(), what="the worker to start training")
        lock = run_lock.active_run(out)
        assert lock is not None and lock.pid == process.pid and lock.out_dir == str(out)
        assert buttons.train(book) is None
        assert status(book).startswith("Not started: training started at")
        assert f"process {process.pid}" in status(book)
        assert buttons.stop(book) is not None
        assert process.wait(timeout=120) == 0
    finally:
        if process.poll() is None:
            process.kill()
    run = json.loads((out / "metrics.json").read_text())["run"]
    assert run["status"] == "stopped"
    assert run_lock.read_lock(out) is None
    log = (out / "train_worker.log").read_text()
    assert "training writes its files only" in log and "Run stopped" in log


# ---- Refresh backprop -------------------------------------------------------------------------------


def refreshed_column(book, lr_index: int, rows: int) -> list:
    name = layout.rate_sheet_name(layout.DEFAULT_RATES[lr_index])
    return [r[0] for r in read(book, name, layout.LR_REFRESH_HEADER_CELL, rows, 1)]


@pytest.mark.slow
def test_refresh_backprop_rewrites_rate_sheets_and_graphs_from_changed_cells():
    from ml import backprop

    cells = dict(layout.BACKPROP_INPUT_CELLS)
    changed = {  # the published worked example (targets 0.01/0.99, biases 0.35/0.6), one rate changed
        cells["t1"]: 0.01,
        cells["t2"]: 0.99,
        cells["b1"]: 0.35,
        cells["b2"]: 0.6,
        layout.BACKPROP_RATE_CELLS[2]: 0.3,
        layout.BACKPROP_EPOCHS_CELL: 20,
    }
    book = make_book(cells={layout.BACKPROP_SHEET: changed})
    curves = buttons.refresh_backprop(book)

    network = backprop.Network.worked_example()
    rates = list(layout.DEFAULT_RATES)
    rates[2] = 0.3
    assert list(curves) == rates
    for k, lr in enumerate(rates):
        column = refreshed_column(book, k, 1 + layout.DEFAULT_EPOCHS + 1)
        assert column[0] == f"E_total (Python) at lr {lr:g}"
        assert column[1:22] == pytest.approx(list(backprop.loss_curve(lr, 20, network)), rel=1e-12)
        assert column[22:] == [None] * (layout.DEFAULT_EPOCHS - 20)  # the old tail is blanked
    # The worked example's published error before training (the default network gives 0.01418...),
    # so the changed cells were read.
    assert refreshed_column(book, 3, 2)[1] == pytest.approx(0.298371109, abs=1e-9)
    assert read(book, layout.BACKPROP_SHEET, layout.BACKPROP_STATUS_CELL) == (
        "Refreshed: 6 rates x 20 epochs, sigmoid output"
    )

    added = actions(book, "addPicture", layout.GRAPHS_SHEET)
    assert len(added) == 1 and picture_png(added[0]).startswith(b"\x89PNG")
    letters, row = coordinate_from_string(layout.GRAPHS_PICTURE_CELL)
    assert (added[0]["args"][1], added[0]["args"][2]) == (column_index_from_string(letters) - 1, row - 1)
    assert [p.name for p in book.sheets[layout.GRAPHS_SHEET].pictures] == [buttons.GRAPHS_PICTURE]
    # A second refresh replaces the picture in place instead of adding another one.
    buttons.refresh_backprop(book)
    assert len(actions(book, "addPicture", layout.GRAPHS_SHEET)) == 1
    updated = actions(book, "updatePicture", layout.GRAPHS_SHEET)
    assert len(updated) == 1 and updated[0]["args"][2] == buttons.GRAPHS_PICTURE


def test_refresh_backprop_names_a_bad_cell():
    book = make_book(cells={layout.BACKPROP_SHEET: {layout.BACKPROP_RATE_CELLS[0]: "fast"}})
    assert buttons.refresh_backprop(book) == {}
    assert read(book, layout.BACKPROP_SHEET, layout.BACKPROP_STATUS_CELL) == (
        "Not refreshed: learning rate must be a number, got 'fast'"
    )
    assert actions(book, "addPicture") == []
    book = make_book(cells={layout.BACKPROP_SHEET: {layout.BACKPROP_INPUT_CELLS["output"]: "relu"}})
    buttons.refresh_backprop(book)
    assert read(book, layout.BACKPROP_SHEET, layout.BACKPROP_STATUS_CELL) == (
        "Not refreshed: output activation must be 'sigmoid' or 'softmax', got 'relu'"
    )
