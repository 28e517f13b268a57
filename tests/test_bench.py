"""bench/mnist_bench.py: its FLOP count against a count by hand, and a short real run of its speed section
(the table and the JSON it writes). Speed itself is never asserted here: benchmarks report ratios."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mnist_bench  # bench/ is on the tests' path (pyproject.toml)
import pytest

from ml.run_dir import RunDir

ROOT = Path(__file__).resolve().parents[1]


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
    assert mnist_bench.training_flops_per_image("default") == 6 * macs  # 2 FLOPs per MAC, x3 with backward


def test_the_fast_model_costs_less_per_image_than_the_default():
    # its stride-2 stem leaves no 28x28 layer but the input: the reason it is fast
    fast, default = (mnist_bench.training_flops_per_image(name) for name in ("fast", "default"))
    assert fast < 0.7 * default  # 10.0 against 16.2 MFLOP, and no 28x28 activations to move


def test_the_speed_section_runs_and_writes_its_table_and_json(tmp_path):
    out = tmp_path / "speed.json"
    command = [
        sys.executable,
        str(ROOT / "bench" / "mnist_bench.py"),
        *("--skip-time", "--skip-accuracy", "--skip-predict"),
        *("--speed-threads", "1", "--speed-steps", "2"),
        *("--work", str(tmp_path / "work"), "--out", str(out)),
    ]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    pipelines = result["speed"]["by_threads"]["1"]["pipelines"]
    assert set(pipelines) == {"textbook", *mnist_bench.speed_pipelines(mnist_bench.parse_args([]))}
    for name, entry in pipelines.items():
        assert entry["epoch_s"] > 0
        assert entry["speedup_vs_textbook"] == pytest.approx(
            pipelines["textbook"]["epoch_s"] / entry["epoch_s"]
        )
        flops = result["speed"]["train_gflop_per_image"][name]
        assert entry["gflops"] == pytest.approx(entry["images_per_s"] * flops)
    assert "| 1 | project |" in done.stdout and f"written {out}" in done.stdout


def test_the_accuracy_runs_tta_figure_is_the_checkpoints_test_accuracy_with_shifted_views():
    from ml.checkpoint import load_checkpoint
    from ml.predict import shipped_model_path

    path = shipped_model_path()
    recorded = load_checkpoint(path)["history"][-1]["test_acc"]  # training's own final evaluation
    assert mnist_bench.tta_accuracy(path, views=0) == pytest.approx(recorded, abs=1e-4)
    with_tta = mnist_bench.tta_accuracy(path)
    assert abs(with_tta - recorded) < 0.003  # the average over shifted views: nearly the same figure


def test_a_run_without_a_final_tta_figure_reads_na_and_has_no_mean():
    runs = [{"final_test_acc": 0.99, "final_test_acc_tta": t, "wall_s": 1.0} for t in (0.995, None)]
    mean = mnist_bench._mean_of_all([r["final_test_acc_tta"] for r in runs])
    acc = {"params": 10, "epochs": 1, "runs": runs, "mean_final_test_acc": 0.99}
    acc["mean_final_test_acc_tta"] = mean
    assert mean is None
    assert "| 99.50%, n/a | n/a |" in mnist_bench.format_table({"accuracy": {"tiny": acc}})


def test_time_to_accuracy_counts_what_runs_between_epochs(tmp_path):
    # a real `python -m ml.train` process; its epochs' seconds leave out the checkpoint, the metrics files and
    # the charts drawn after each epoch, which a user waits for all the same: the figures must count them
    args = ["--subset", "600", "--epochs", "2", "--model", "tiny", "--threads", "1"]
    run = mnist_bench.train_process(args, tmp_path / "run", threads=1, device="cpu")
    assert run["exit_code"] == 0
    first, last = run["epochs"]
    seconds = [row["seconds"] for row in RunDir(tmp_path / "run").read_metrics()]
    assert last["at_s"] - (run["setup_s"] + sum(seconds)) > 0.05  # epoch 1's charts, drawn in line, at least
    assert run["setup_s"] < first["at_s"] < last["at_s"] < run["wall_s"]
    assert last["train_at_s"] == pytest.approx(last["at_s"] - run["setup_s"])
