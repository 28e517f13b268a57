"""bench/mnist_bench.py: its FLOP count against a count by hand, and a short real run of its speed section
(the table and the JSON it writes). Speed itself is never asserted here: benchmarks report ratios."""

from __future__ import annotations

import json

import mnist_accuracy  # bench/ is on the tests' path (pyproject.toml)
import mnist_bench
import mnist_speed
import mnist_table
import mnist_time
import numpy as np
import pytest
import torch

from ml.checkpoint import load_checkpoint, model_from_checkpoint
from ml.data import MNIST_MEAN, MNIST_STD, load_mnist
from ml.predict import shipped_model_path
from ml.run_dir import RunDir

TTA_IMAGES = 2000  # the TTA figure is checked on the first 2,000 test images (a fifth of the time)
FIVE_SHIFTS = ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1))  # the image and its four 1-pixel shifts


def conv_macs(side: int, c_in: int, c_out: int, kernel: int = 3) -> int:
    """Multiply-adds of a convolution whose output is side x side x c_out."""
    return side * side * c_out * c_in * kernel * kernel


def test_training_flops_of_the_default_model_match_a_count_by_hand():
    # stage 1 at 28x28 (1->8, 8->16), stage 2 at 14x14 (16->16, 16->24), stage 3 at 7x7 (24->24, 24->32),
    # then the 1x1 head to 10 classes; each stage's pooling follows its last convolution
    macs = (
        conv_macs(28, 1, 8)
        + conv_macs(28, 8, 16)
        + conv_macs(14, 16, 16)
        + conv_macs(14, 16, 24)
        + conv_macs(7, 24, 24)
        + conv_macs(7, 24, 32)
        + conv_macs(7, 32, 10, kernel=1)
    )
    assert macs == 2_696_960
    assert mnist_speed.training_flops_per_image("default") == 6 * macs  # 2 FLOPs per MAC, x3 with backward


def test_the_fast_model_costs_less_per_image_than_the_default():
    # its stride-2 stem leaves no 28x28 layer but the input: the reason it is fast
    fast, default = (mnist_speed.training_flops_per_image(name) for name in ("fast", "default"))
    assert fast < 0.7 * default  # 10.0 against 16.2 MFLOP, and no 28x28 activations to move


@pytest.mark.slow
def test_the_speed_section_runs_and_writes_its_table_and_json(bench_speed_run, fresh_clone):
    done = bench_speed_run  # its smallest size, with its default output, in a fresh clone (conftest.py)
    assert done.returncode == 0, done.stderr[-3000:]
    out = fresh_clone / "runs" / "bench" / "mnist.json"
    result = json.loads(out.read_text())
    pipelines = result["speed"]["by_threads"]["1"]["pipelines"]
    assert set(pipelines) == {"textbook", *mnist_speed.speed_pipelines(mnist_bench.parse_args([]))}
    for name, entry in pipelines.items():
        assert entry["epoch_s"] > 0
        assert entry["speedup_vs_textbook"] == pytest.approx(
            pipelines["textbook"]["epoch_s"] / entry["epoch_s"]
        )
        flops = result["speed"]["train_gflop_per_image"][name]
        assert entry["gflops"] == pytest.approx(entry["images_per_s"] * flops)
    assert "| 1 | project |" in done.stdout and f"wrote {out}" in done.stdout


def shifted_by_hand(images: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """(N, 1, 28, 28) images moved by (dy, dx) pixels with black shifted in: torch.roll, then the rows and
    columns that wrapped around cleared (independent of ml.augment.shifted)."""
    out = torch.roll(images, shifts=(dy, dx), dims=(-2, -1))
    if dy:
        out[..., slice(0, dy) if dy > 0 else slice(dy, None), :] = 0
    if dx:
        out[..., slice(0, dx) if dx > 0 else slice(dx, None)] = 0
    return out


@pytest.mark.slow
def test_the_accuracy_runs_tta_figure_is_the_checkpoints_test_accuracy_with_shifted_views():
    """On the first 2,000 test images, against a forward pass by hand: with 0 views the figure is the
    checkpoint's plain test accuracy; with 5 that of the softmax averaged over the image and its shifts."""
    path = shipped_model_path()
    data = load_mnist()
    images = data.test_x[:TTA_IMAGES].float().unsqueeze(1) / 255
    labels = data.test_y[:TTA_IMAGES].numpy()
    model = model_from_checkpoint(load_checkpoint(path), str(path)).eval()
    with torch.no_grad():
        probs = [
            model(((shifted_by_hand(images, dy, dx) - MNIST_MEAN) / MNIST_STD).contiguous(
                memory_format=torch.channels_last
            )).softmax(1)
            for dy, dx in FIVE_SHIFTS
        ]  # fmt: skip
    plain = float(np.mean(probs[0].argmax(1).numpy() == labels))  # the first view is the image itself
    averaged = float(np.mean((sum(probs) / len(probs)).argmax(1).numpy() == labels))
    assert mnist_accuracy.tta_accuracy(path, views=0, images=TTA_IMAGES) == pytest.approx(plain, abs=1e-4)
    with_tta = mnist_accuracy.tta_accuracy(path, images=TTA_IMAGES)
    assert with_tta == pytest.approx(averaged, abs=1e-4)
    assert abs(with_tta - plain) < 0.003  # the average over shifted views: nearly the same figure


def test_a_run_without_a_final_tta_figure_reads_na_and_has_no_mean():
    runs = [{"final_test_acc": 0.99, "final_test_acc_tta": t, "wall_s": 1.0} for t in (0.995, None)]
    mean = mnist_table.mean_of_all([r["final_test_acc_tta"] for r in runs])
    acc = {"params": 10, "epochs": 1, "runs": runs, "mean_final_test_acc": 0.99}
    acc["mean_final_test_acc_tta"] = mean
    assert mean is None
    assert "| 99.50%, n/a | n/a |" in mnist_table.format_table({"accuracy": {"tiny": acc}})


@pytest.mark.slow
def test_time_to_accuracy_counts_what_runs_between_epochs(tmp_path):
    # a real `python -m ml.train` process; its epochs' seconds leave out the checkpoint, the metrics files and
    # the charts drawn after each epoch, which a user waits for all the same: the figures must count them
    args = ["--subset", "600", "--epochs", "2", "--model", "tiny", "--threads", "1"]
    run = mnist_time.train_process(args, tmp_path / "run", threads=1, device="cpu")
    assert run["exit_code"] == 0
    first, last = run["epochs"]
    seconds = [row["seconds"] for row in RunDir(tmp_path / "run").read_metrics()]
    assert last["at_s"] - (run["setup_s"] + sum(seconds)) > 0.05  # epoch 1's charts, drawn in line, at least
    assert run["setup_s"] < first["at_s"] < last["at_s"] < run["wall_s"]
    assert last["train_at_s"] == pytest.approx(last["at_s"] - run["setup_s"])
