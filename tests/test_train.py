"""Training on real MNIST subsets: it learns, writes its files, checkpoints, resumes, stops cleanly."""

import csv
import json
import math
from dataclasses import asdict

import numpy as np
import pytest
import torch
import torch.nn.functional as F  # noqa: N812
from run_recorder import Recorder

from ml.checkpoint import export_weights, load_checkpoint, model_from_checkpoint, save_checkpoint
from ml.data import load_mnist, normalise, to_float
from ml.events import CHART_NAMES, METRIC_COLUMNS, BatchEnd, EpochEnd, RunEnded, RunStarted, Sink
from ml.model import MnistCNN, build_model
from ml.run_dir import RunDir
from ml.stages import Stage, staged
from ml.train import TrainConfig, main, stop_file_checker, train
from ml.variants import VARIANTS


def quick(out, **kw):
    """A short real run; tests that don't check learning use 1,000 images (7 steps an epoch).

    One thread: on a CPU shared with other jobs, two spinning threads per process are several times slower.
    """
    base = dict(epochs=2, batch_size=128, lr=0.2, subset=1000, out_dir=str(out), seed=0, threads=1)
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture
def short_run(finished_run):
    """The session's finished tiny run (conftest.py): quick(out, subset=4000), its folder, events and end."""
    return finished_run


@pytest.mark.slow
def test_short_run_learns_far_above_chance(short_run):
    out, rec, ended = short_run
    assert rec.of(RunStarted)[0].config == asdict(quick(out, subset=4000))  # the shared run is this one
    assert ended.status == "completed" and ended.epochs_done == 2 and ended.error is None
    assert ended.final_test_acc > 0.85  # chance is 0.10
    # the reported accuracy is real: recompute it from the saved model on the held-out digits
    data = load_mnist().subset(4000)
    model = model_from_checkpoint(load_checkpoint(out / "model.pt"))
    with torch.no_grad():
        pred = model(normalise(to_float(data.test_x))).argmax(1)
    assert (pred == data.test_y).float().mean().item() == pytest.approx(ended.final_test_acc, abs=1e-6)


def test_events_in_order_with_consistent_content(short_run):
    _, rec, ended = short_run
    start = rec.of(RunStarted)
    assert len(start) == 1 and rec.events[0] is start[0] and rec.events[-1] is ended
    assert start[0].n_params == sum(r[2] for r in start[0].summary) and start[0].epochs == 2
    batches = rec.of(BatchEnd)
    assert len(batches) == 2 * start[0].steps_per_epoch
    assert all(0 <= b.acc <= 1 and b.loss > 0 for b in batches)
    epochs = rec.of(EpochEnd)
    assert [e.epoch for e in epochs] == [1, 2] and epochs[-1].test_acc == ended.final_test_acc


def test_metrics_files_and_charts(short_run):
    out, rec, ended = short_run
    with open(out / "metrics.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert tuple(rows[0]) == METRIC_COLUMNS and len(rows) == 3
    doc = json.loads((out / "metrics.json").read_text())
    assert [r["epoch"] for r in doc["epochs"]] == [1, 2] and doc["run"]["status"] == "completed"
    for row, event in zip(doc["epochs"], rec.of(EpochEnd), strict=True):
        assert [row[c] for c in METRIC_COLUMNS] == event.row()
        assert 0 <= row["test_acc"] <= 1
    charts = RunDir(out).charts()
    assert set(charts) == set(CHART_NAMES)
    for name in CHART_NAMES:
        assert charts[name] == out / f"{name}.png" and charts[name].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_checkpoint_loads_safely_and_exports_small(short_run, tmp_path):
    out, _, _ = short_run
    raw = torch.load(out / "model.pt", weights_only=True)
    assert raw["epoch"] == 2 and raw["model"] == VARIANTS["default"].to_dict()
    assert raw["normalisation"] == {"mean": 0.1307, "std": 0.3081}
    assert {"optimizer", "scheduler", "history", "config"} <= set(raw)
    slim = export_weights(out / "model.pt", tmp_path / "w.pt")
    assert slim.stat().st_size < 0.7 * (out / "model.pt").stat().st_size
    a, b = model_from_checkpoint(raw), model_from_checkpoint(load_checkpoint(slim))
    x = torch.randn(4, 1, 28, 28)
    assert torch.equal(a(x), b(x))


def test_small_variant_checkpoint_round_trips_and_older_checkpoints_still_load(tmp_path):
    """The separable small model rebuilds from its checkpoint; one saved before separable layers did too."""
    small = build_model("small").eval()
    save_checkpoint(
        tmp_path / "small.pt", {"model": VARIANTS["small"].to_dict(), "state_dict": small.state_dict()}
    )
    x = torch.randn(3, 1, 28, 28)
    assert torch.equal(model_from_checkpoint(load_checkpoint(tmp_path / "small.pt"))(x), small(x))
    old_layout = MnistCNN(staged([Stage((8, 12)), Stage((12, 12)), Stage((16, 16))])).eval()
    old_config = {
        "variant": "small",
        "stages": [[8, 12], [12, 12], [16, 16]],
        "dropout": 0.0,
        "pool_first": True,
    }
    save_checkpoint(tmp_path / "old.pt", {"model": old_config, "state_dict": old_layout.state_dict()})
    assert torch.equal(model_from_checkpoint(load_checkpoint(tmp_path / "old.pt"))(x), old_layout(x))


@pytest.mark.slow
def test_resume_continues_where_it_stopped(tmp_path):
    first = train(quick(tmp_path, epochs=1), [])
    assert first.epochs_done == 1
    ckpt1 = load_checkpoint(tmp_path / "model.pt")
    rec = Recorder()
    second = train(quick(tmp_path, epochs=2, resume=True), [rec])
    assert rec.of(RunStarted)[0].start_epoch == 2
    assert [e.epoch for e in rec.of(EpochEnd)] == [2]
    assert second.status == "completed" and second.epochs_done == 2
    ckpt2 = load_checkpoint(tmp_path / "model.pt")
    assert [h["epoch"] for h in ckpt2["history"]] == [1, 2] and ckpt2["history"][0] == ckpt1["history"][0]
    assert not torch.equal(ckpt1["state_dict"]["net.0.weight"], ckpt2["state_dict"]["net.0.weight"])
    rows = json.loads((tmp_path / "metrics.json").read_text())["epochs"]
    assert [r["epoch"] for r in rows] == [1, 2]


def test_resume_without_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="nothing to resume"):
        train(quick(tmp_path, resume=True), [])


@pytest.mark.slow
def test_stop_file_stops_after_the_current_batch_and_keeps_the_last_checkpoint(tmp_path):
    stop = tmp_path / "STOP"

    class PressStop(Sink):
        def on_batch(self, event):
            if event.epoch == 2 and event.step == 3:
                stop.touch()

    rec = Recorder()
    ended = train(quick(tmp_path / "run"), [rec, PressStop()], stop_file_checker(stop))
    assert ended.status == "stopped" and ended.epochs_done == 1
    assert [b.step for b in rec.of(BatchEnd) if b.epoch == 2] == [1, 2, 3]
    assert load_checkpoint(tmp_path / "run" / "model.pt")["epoch"] == 1
    assert len(json.loads((tmp_path / "run" / "metrics.json").read_text())["epochs"]) == 1
    assert "confusion_matrix" in RunDir(tmp_path / "run").charts()  # drawn from the kept (epoch 1) model


@pytest.mark.slow
def test_ctrl_c_is_a_clean_stop(tmp_path):
    class CtrlC(Sink):
        def on_batch(self, event):
            if event.epoch == 2 and event.step == 2:
                raise KeyboardInterrupt

    rec = Recorder()
    ended = train(quick(tmp_path), [rec, CtrlC()])
    assert ended.status == "stopped" and ended.epochs_done == 1 and rec.events[-1] is ended
    assert json.loads((tmp_path / "metrics.json").read_text())["run"]["status"] == "stopped"


@pytest.mark.slow
def test_a_failing_sink_is_reported_once_and_training_goes_on(tmp_path, capsys):
    class Broken(Sink):
        calls = 0

        def on_batch(self, event):
            Broken.calls += 1
            raise RuntimeError("workbook closed")

    ended = train(quick(tmp_path, epochs=1), [Broken()])
    assert ended.status == "completed"
    assert Broken.calls > 1
    assert capsys.readouterr().err.count("RuntimeError: workbook closed") == 1


def test_bad_settings_raise_before_training(tmp_path):
    for kw, msg in [
        ({"epochs": 0}, "epochs"),
        ({"schedule": "warp"}, "schedule"),
        ({"model": "huge"}, "huge"),
        ({"device": "tpu"}, "device"),
        ({"lr": -1.0}, "lr"),
    ]:
        with pytest.raises(ValueError, match=msg):
            train(quick(tmp_path, **kw), [])
    assert not (tmp_path / "model.pt").exists()


@pytest.mark.slow
def test_cli_dry_run_and_options(tmp_path, capsys):
    assert main(["--dry-run", "--run-dir", str(tmp_path), "--model", "small", "--schedule", "cosine"]) == 0
    assert load_checkpoint(tmp_path / "model.pt")["model"]["name"] == "small"
    lines = capsys.readouterr().err.splitlines()
    assert lines[-2].startswith(
        f"Dry run completed: data, model, training steps, evaluation and the run's files in {tmp_path}"
    )
    assert lines[-1] == "Set-up OK: train for real without --dry-run"  # not "final test accuracy 7.1%"
    with pytest.raises(SystemExit) as exit_info:
        main(["--epochs", "0", "--run-dir", str(tmp_path)])
    assert exit_info.value.code == 2 and "epochs must be at least 1, got 0" in capsys.readouterr().err


def test_run_ended_is_complete_even_when_stopped_before_any_epoch(tmp_path):
    ended = train(quick(tmp_path), [], should_stop=lambda: True)
    assert isinstance(ended, RunEnded) and ended.status == "stopped" and ended.epochs_done == 0
    assert ended.final_test_acc is None and (tmp_path / "metrics.csv").exists()


@pytest.mark.slow
def test_dry_run_leaves_the_real_run_alone(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["--dry-run", "--threads", "1"]) == 0
    assert (tmp_path / "runs" / "dry-run" / "model.pt").is_file()
    assert not (tmp_path / "runs" / "mnist").exists()


@pytest.mark.slow
def test_a_custom_design_trains_and_its_checkpoint_rebuilds_it(tmp_path):
    stages = "6,8 drop=0.05 | 12 sep | 16"
    assert main(["--model", "custom", "--stages", stages, "--subset", "500", "--epochs", "1",
                 "--threads", "1", "--run-dir", str(tmp_path)]) == 0  # fmt: skip
    ckpt = load_checkpoint(tmp_path / "model.pt")
    assert ckpt["model"]["name"] == "custom" and ckpt["config"]["stages"] == stages
    from ml.stages import custom_spec

    assert tuple(map(tuple, ckpt["model"]["layers"])) == custom_spec(stages).layers
    model = model_from_checkpoint(ckpt)
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    with pytest.raises(SystemExit):
        main(["--model", "custom", "--run-dir", str(tmp_path)])  # no stages: a usage error naming them


@pytest.mark.slow
def test_evaluating_only_after_the_last_epoch_keeps_every_row(tmp_path):
    """eval_every 0 (the fast preset): the test columns of the other epochs are missing, not zero, in the
    files, the charts and a resume."""
    ended = train(quick(tmp_path, epochs=3, eval_every=0), [])
    rows = RunDir(tmp_path).read_metrics()
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert [math.isnan(r["test_acc"]) for r in rows] == [True, True, False]
    assert ended.final_test_acc == rows[-1]["test_acc"] == ended.best_test_acc
    assert json.loads((tmp_path / "metrics.json").read_text())["epochs"][0]["test_acc"] is None
    assert (tmp_path / "metrics.csv").read_text().splitlines()[1].split(",")[3:5] == ["", ""]
    assert set(RunDir(tmp_path).charts()) == set(CHART_NAMES)
    train(quick(tmp_path, epochs=4, eval_every=0, resume=True), [])
    assert [r["epoch"] for r in RunDir(tmp_path).read_metrics()] == [1, 2, 3, 4]


@pytest.mark.slow
def test_test_time_augmentation_averages_the_shifted_views(tmp_path):
    from ml.augment import shifted
    from ml.data import MNIST_MEAN, MNIST_STD
    from ml.predict import load_classifier
    from ml.training import evaluate
    from ml.tta import TTA_VIEWS

    torch.manual_seed(0)
    model = build_model("small").eval()
    data = load_mnist().subset(1000)
    x, y = data.test_x[:200], data.test_y[:200]
    result = evaluate(model, x, y, batch_size=64, channels_last=False, tta=5)
    images = to_float(x)
    with torch.no_grad():
        views = [model(normalise(shifted(images, dy, dx).clone())).softmax(1) for dy, dx in TTA_VIEWS[5]]
    expected = torch.stack(views).mean(0)
    assert np.array_equal(result.preds, expected.argmax(1).numpy())
    assert result.loss == pytest.approx(float(F.nll_loss(expected.log(), y)), rel=1e-5)
    # a run evaluated with TTA predicts with it too
    train(quick(tmp_path, epochs=1, tta=5), [])
    classifier = load_classifier(tmp_path / "model.pt")
    assert len(classifier.views) == 5
    digits = data.test_x[:50].numpy() / 255.0
    with torch.no_grad():
        one = classifier.model(
            torch.from_numpy(((digits - MNIST_MEAN) / MNIST_STD).astype("float32")).unsqueeze(1)
        )
    assert not np.allclose(classifier.probabilities(digits), one.softmax(1).numpy())


@pytest.mark.slow
def test_the_fast_preset_from_the_command_line(tmp_path):
    assert (
        main(
            [
                "--preset",
                "fast",
                "--subset",
                "600",
                "--epochs",
                "2",
                "--threads",
                "1",
                "--run-dir",
                str(tmp_path),
            ]
        )
        == 0
    )
    ckpt = load_checkpoint(tmp_path / "model.pt")
    config = ckpt["config"]
    assert (config["preset"], config["model"], config["eval_every"], config["tta"]) == ("fast", "fast", 0, 5)
    assert config["epochs"] == 2  # an explicit option wins over the preset's value
    assert ckpt["model"]["name"] == "fast"
