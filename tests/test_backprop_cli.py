"""`python -m ml.backprop`: CSV tables, the summary table, the loss-curves plot and argument errors."""

import csv
import io
import subprocess
import sys

import pytest
from PIL import Image

from ml import backprop


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ml.backprop", *args], capture_output=True, text=True, check=False
    )


def test_csv_has_every_column_of_every_epoch_for_each_rate():
    result = run_cli("--lr", "0.1", "0.2", "0.5", "0.8", "1.0", "2.0", "--epochs", "100", "--format", "csv")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) == 6 * 101
    assert list(rows[0]) == ["lr", *backprop.COLUMNS]
    last = [r for r in rows if float(r["lr"]) == 2.0][-1]
    assert int(last["epoch"]) == 100
    assert float(last["E_total"]) == backprop.loss_at(2.0, 100)  # exact: repr round-trips float64


def test_csv_honours_the_network_options():
    result = run_cli(
        "--lr", "0.5", "--epochs", "1", "--format", "csv",
        "--inputs", "0.05", "0.1", "--targets", "0.01", "0.99", "--biases", "0.35", "0.6",
        "--weights", "0.15", "0.2", "0.25", "0.3", "0.4", "0.45", "0.5", "0.55",
    )  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert float(rows[0]["E_total"]) == pytest.approx(0.298371109, abs=1e-9)
    assert float(rows[1]["w5"]) == pytest.approx(0.35891648, abs=1e-8)
    softmax = run_cli("--lr", "0.5", "--epochs", "0", "--format", "csv", "--activation", "softmax")
    row = next(csv.DictReader(io.StringIO(softmax.stdout)))
    assert float(row["a_o1"]) + float(row["a_o2"]) == pytest.approx(1.0)


@pytest.mark.slow
def test_plot_writes_a_png_of_the_loss_curves(tmp_path):
    target = tmp_path / "curves.png"
    result = run_cli("--epochs", "100", "--plot", str(target))
    assert result.returncode == 0, result.stderr
    assert "E@100" in result.stdout  # the summary table
    with Image.open(target) as image:
        assert image.format == "PNG" and image.width >= 800


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--lr", "-1"], "learning rate must be a positive"),
        (["--epochs", "-3"], "epochs must not be negative"),
        (["--weights", "1", "2"], "expected 8 arguments"),
        (["--activation", "relu"], "invalid choice"),
        (["--output", "softmax"], "--output is now --activation"),
    ],
)
def test_bad_arguments_exit_with_a_clear_message(args, message):
    result = run_cli(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
