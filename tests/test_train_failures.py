"""Every way a training run can end badly ends with a clear message and loses nothing.

Any valid setting trains (every step count, tiny subsets); a diverging run fails loudly and keeps its last
good checkpoint; an unusable output folder is refused before training; resuming from the wrong file says
why; a second Ctrl-C still records how the run ended, and `kill` (SIGTERM) or Ctrl-C (SIGINT) sent to a
real process stops it cleanly; a process killed between the checkpoint and the metrics loses no row.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ml import plots, run_lock
from ml.checkpoint import export_weights, load_checkpoint
from ml.config import TrainConfig
from ml.events import EpochEnd, Sink
from ml.predict import shipped_model_path
from ml.run_dir import RunDir, RunDirError
from ml.train import main, train


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv(run_lock.STATE_ENV, str(tmp_path / "state"))


def config(out: Path, **kw) -> TrainConfig:
    base = dict(epochs=1, batch_size=10, lr=0.05, subset=100, model="small", threads=1, seed=0)
    return TrainConfig(**{**base, **kw, "out_dir": str(out)})


class Epochs(Sink):
    def __init__(self):
        self.rows = []

    def on_epoch(self, event: EpochEnd):
        self.rows.append(event)


@pytest.mark.parametrize("steps", range(1, 21))
def test_every_step_count_trains(tmp_path, steps):
    """OneCycleLR divided by zero for exactly 4 steps; every count from 1 to 20 completes."""
    ended = train(config(tmp_path, subset=10 * steps), [])
    assert ended.status == "completed" and ended.error is None
    assert load_checkpoint(tmp_path / "model.pt")["steps"] == steps


@pytest.mark.parametrize("images", [1, 3, 100])
def test_tiny_subsets_train_with_the_default_batch_size(tmp_path, images):
    ended = train(config(tmp_path, subset=images, batch_size=512, epochs=2), [])
    assert ended.status == "completed" and ended.epochs_done == 2


def test_the_4_step_run_of_the_issue_trains_from_the_command_line(tmp_path):
    out = tmp_path / "run"
    assert main(["--subset", "2000", "--epochs", "1", "--threads", "1", "--run-dir", str(out)]) == 0
    assert load_checkpoint(out / "model.pt")["steps"] == 4


def test_a_diverging_run_fails_loudly_and_keeps_the_last_good_checkpoint(tmp_path):
    first = train(config(tmp_path, epochs=1), [])
    assert first.status == "completed"
    good = load_checkpoint(tmp_path / "model.pt")["state_dict"]
    rows = Epochs()
    ended = train(config(tmp_path, epochs=2, lr=1e30, resume=True), [rows])
    assert ended.status == "failed" and rows.rows == []
    assert "training diverged: the loss became" in ended.error and "at epoch 2, step" in ended.error
    assert "lower learning rate" in ended.error and "checkpoint of epoch 1 is kept" in ended.error
    kept = load_checkpoint(tmp_path / "model.pt")
    assert kept["epoch"] == 1 and all(torch.equal(kept["state_dict"][k], v) for k, v in good.items())
    record = json.loads((tmp_path / "metrics.json").read_text())
    assert record["run"]["status"] == "failed" and [r["epoch"] for r in record["epochs"]] == [1]
    assert "training diverged" in record["run"]["end"]["error"]


def test_a_run_that_diverges_at_once_saves_no_model(tmp_path, capsys):
    assert main(["--lr", "1e30", "--subset", "200", "--batch-size", "50", "--threads", "1",
                 "--model", "small", "--run-dir", str(tmp_path)]) == 1  # fmt: skip
    assert "training diverged" in capsys.readouterr().err
    assert not (tmp_path / "model.pt").exists()
    assert json.loads((tmp_path / "metrics.json").read_text())["run"]["status"] == "failed"


def test_an_output_folder_that_is_a_file_is_refused_before_training(tmp_path):
    a_file = tmp_path / "results"
    a_file.write_text("not a folder")
    with pytest.raises(RunDirError, match=f"output folder {a_file} is a file, not a folder"):
        train(config(a_file), [])
    with pytest.raises(RunDirError, match="cannot create the output folder"):
        train(config(a_file / "sub"), [])


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_an_unwritable_output_folder_is_refused_before_training(tmp_path):
    """/proc refuses new files even for root, as a read-only folder does for a user."""
    with pytest.raises(RunDirError, match="the output folder /proc/self is not writable"):
        RunDir("/proc/self").prepare()
    with pytest.raises(RunDirError, match="cannot create the output folder /proc/gradsheet"):
        train(config(Path("/proc/gradsheet")), [])
    if os.geteuid() != 0:  # a read-only folder refuses a normal user (root writes anyway)
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        with pytest.raises(RunDirError, match=f"the output folder {ro} is not writable"):
            train(config(ro), [])


def test_resuming_from_exported_or_shipped_weights_says_why_not(tmp_path):
    shutil.copyfile(shipped_model_path(), tmp_path / "model.pt")
    with pytest.raises(ValueError, match="holds exported weights without the training state"):
        train(config(tmp_path, model="default", epochs=20, resume=True), [])
    trained = tmp_path / "trained"
    train(config(trained), [])
    export_weights(trained / "model.pt", trained / "model.pt")
    with pytest.raises(ValueError, match="train without --resume to start a new run"):
        train(config(trained, epochs=2, resume=True), [])


def test_resuming_a_checkpoint_of_another_model_or_a_finished_run_says_why_not(tmp_path):
    train(config(tmp_path), [])
    with pytest.raises(ValueError, match="holds a 'small' model .* but the settings ask for 'default'"):
        train(config(tmp_path, model="default", epochs=2, resume=True), [])
    with pytest.raises(ValueError, match="has already trained 1 of 1 epochs"):
        train(config(tmp_path, resume=True), [])


def test_a_second_ctrl_c_while_finishing_still_records_the_end(tmp_path, monkeypatch):
    presses = iter([False] * 15 + [True])

    def ctrl_c() -> bool:
        if next(presses, True):
            raise KeyboardInterrupt
        return False

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt  # the second Ctrl-C, while the final charts are drawn

    monkeypatch.setattr(plots, "plot_confusion_matrix", interrupted)
    ended = train(config(tmp_path, epochs=3), [], should_stop=ctrl_c)
    assert ended.status == "stopped" and ended.epochs_done == 1
    record = json.loads((tmp_path / "metrics.json").read_text())
    assert record["run"]["status"] == "stopped" and len(record["epochs"]) == 1


def test_a_process_killed_between_checkpoint_and_metrics_loses_no_row_on_resume(tmp_path):
    train(config(tmp_path, epochs=1), [])
    run_dir = RunDir(tmp_path)
    record = json.loads(run_dir.metrics_json.read_text())
    row = record["epochs"].pop()  # as if killed after saving model.pt, before writing the metrics
    run_dir.metrics_json.write_text(json.dumps(record))
    run_dir.metrics_csv.write_text(run_dir.metrics_csv.read_text().splitlines()[0] + "\n")
    train(config(tmp_path, epochs=2, resume=True), [])
    rows = run_dir.read_metrics()
    assert [r["epoch"] for r in rows] == [1, 2] and rows[0] == pytest.approx(row)
    assert len(run_dir.metrics_csv.read_text().splitlines()) == 3


def test_metrics_with_a_non_finite_value_are_still_valid_json(tmp_path):
    from ml.events import RunStarted
    from ml.sinks import MetricsFileSink

    sink = MetricsFileSink(RunDir(tmp_path))
    sink.handle(RunStarted({}, "cpu", 1, [], 1, 1, 1, str(tmp_path)))
    sink.handle(EpochEnd(1, 0.5, 0.9, math.inf, 0.9, 0.1, 1.0, 1, ""))
    sink.handle(EpochEnd(2, math.nan, 0.9, 0.2, 0.9, 0.1, 1.0, 1, ""))
    data = json.loads((tmp_path / "metrics.json").read_text())  # strict JSON: no NaN/Infinity
    assert data["epochs"][0]["test_loss"] is None and data["epochs"][1]["train_loss"] is None
    rows = RunDir(tmp_path).read_metrics()  # a missing test value reads as "not evaluated"; a missing
    assert [r["epoch"] for r in rows] == [1] and math.isnan(rows[0]["test_loss"])  # train value: no row


def test_the_thread_count_is_restored_when_a_run_ends(tmp_path):
    before = torch.get_num_threads()
    train(config(tmp_path, threads=1 if before > 1 else 2), [])
    assert torch.get_num_threads() == before


def test_the_gpu_style_loop_without_per_step_reads_trains_the_same(tmp_path, monkeypatch):
    """On a GPU progress is read back every PROGRESS_EVERY_S, not every step: same run, fewer reads."""
    from ml import training as train_module
    from ml.events import BatchEnd

    class Batches(Sink):
        def __init__(self):
            self.seen = []

        def on_batch(self, event: BatchEnd):
            self.seen.append(event.step)

    every_step = Batches()
    a = train(config(tmp_path / "a", subset=400, epochs=2), [every_step])
    monkeypatch.setattr(train_module, "syncs_every_step", lambda device: False)
    monkeypatch.setattr(train_module, "PROGRESS_EVERY_S", 3600.0)
    throttled = Batches()
    b = train(config(tmp_path / "b", subset=400, epochs=2), [throttled])
    assert every_step.seen == list(range(1, 41)) * 2 and throttled.seen == [40, 40]  # the last step only
    assert a.final_test_acc == b.final_test_acc
    wa, wb = (load_checkpoint(p / "model.pt")["state_dict"] for p in (tmp_path / "a", tmp_path / "b"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    rows = [RunDir(p).read_metrics() for p in (tmp_path / "a", tmp_path / "b")]
    assert [r["train_loss"] for r in rows[0]] == pytest.approx([r["train_loss"] for r in rows[1]], rel=1e-6)


def test_a_divergence_is_caught_by_the_gpu_style_loop_too(tmp_path, monkeypatch):
    from ml import training as train_module

    monkeypatch.setattr(train_module, "syncs_every_step", lambda device: False)
    ended = train(config(tmp_path, lr=1e30, subset=400), [])
    assert ended.status == "failed" and "at epoch 1, step " in ended.error


@pytest.mark.parametrize("sent", [signal.SIGTERM, signal.SIGINT], ids=["kill", "ctrl-c"])
def test_a_signalled_training_process_stops_cleanly(tmp_path, sent):
    """A real ``python -m ml.train`` process, signalled after its first epoch: it stops after the current
    batch, exits 0, keeps the checkpoint and its metrics say "stopped" (not "running")."""
    out = tmp_path / "run"
    command = [sys.executable, "-m", "ml.train", "--subset", "500", "--batch-size", "50", "--epochs", "500"]
    process = subprocess.Popen(
        [*command, "--threads", "1", "--run-dir", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    metrics = RunDir(out).metrics_json
    deadline = time.monotonic() + 120
    while not (metrics.is_file() and json.loads(metrics.read_text())["epochs"]):
        assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
        time.sleep(0.2)
    process.send_signal(sent)
    assert process.wait(timeout=120) == 0
    record = json.loads(metrics.read_text())
    assert record["run"]["status"] == "stopped"
    assert 1 <= len(record["epochs"]) < 500
    assert load_checkpoint(RunDir(out).checkpoint)["epoch"] == record["epochs"][-1]["epoch"]


@pytest.fixture
def small_disk(tmp_path):
    """A 200 KB tmpfs: room for a small model's first checkpoint and files, not for the second checkpoint
    beside it (mounting needs root, as in CI and on the development machine; skipped otherwise)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    yield disk
    subprocess.run(["umount", str(disk)], check=True)


def test_a_full_disk_says_so_naming_the_folder_and_keeps_the_last_checkpoint(small_disk):
    """A real full disk mid-run (torch's writer reports it as "unexpected pos"): the run fails saying the
    disk is full, naming the file and its folder, and the previous epoch's checkpoint stays loadable."""
    out_dir = small_disk / "run"
    quick = ["--subset", "1000", "--batch-size", "100", "--model", "small", "--epochs", "3", "--threads", "1"]
    command = [sys.executable, "-m", "ml.train", *quick, "--run-dir", str(out_dir)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    said = done.stdout + done.stderr
    assert done.returncode != 0
    assert f"the disk is full: cannot write model.pt in {out_dir}; free some space there" in said
    assert (
        "the checkpoint of epoch 1 is kept" in said and "inline_container" not in said.split("Run failed")[-1]
    )
    assert load_checkpoint(out_dir / "model.pt")["epoch"] == 1
