"""MNIST benchmark, one command: ``python bench/mnist_bench.py [--out FILE.json]``.

It prints a table and writes its record as JSON: by default to runs/bench/mnist.json (git ignores runs/);
the committed records are written by naming them, e.g. ``--out bench/results/mnist.json``. Its trainings
go to ``--work-dir`` (default runs/bench). Each section is its own module (``mnist_time``, ``mnist_speed``,
``mnist_accuracy``; the tables: ``mnist_table``). Measures, on this machine:

* time to accuracy (``--target``, 99.5%): each preset (``--presets``: ``standard`` = the defaults,
  ``fast``) trained as a real ``python -m ml.train`` process per seed, timed from process start to the
  first evaluation at or above the target (data loading included), with its final accuracy, process wall
  time and peak RSS; and the textbook pipeline (``bench/textbook.py``) trained epoch by epoch to the same
  target (``--reuse-textbook`` takes its last figure from the record at ``--out``). ``--concurrent N``
  also runs N trainings at once (a classroom server) and reports their images per second together;
* speed: seconds per training epoch (training only, no evaluation) of the project's pipeline against the
  textbook pipeline in the same run: torchvision-style dataset of PIL images with per-sample
  ``transforms`` (RandomAffine, ToTensor, Normalize) through a ``DataLoader`` (batch 128, 1 worker),
  plain NCHW fp32, same model and optimizer. Also fp32 and each preset's model, images per second and the
  fraction of the CPU's peak FP32 rate that each model's training FLOPs represent. Each pipeline first
  runs a few untimed steps in the same process (``WARMUP_STEPS``), so one-time kernel set-up (oneDNN
  primitives, first allocations), which later epochs of a real run don't pay, is not counted; the
  textbook's DataLoader worker start-up is a per-epoch cost and stays in its time;
* accuracy: each model of ``--models`` trained with the default settings, final-epoch test accuracy per
  seed (``--seeds``), without and with 5-view test-time augmentation (``ACCURACY_TTA``), parameters,
  wall time;
* prediction latency of one image file through the Python API (warm), and how reliably user-style
  pictures of MNIST test digits (dark ink on light paper, rescaled, off centre) are classified with the
  MNIST-style preprocessing versus fed as-is.

``--device cuda`` (or ``cuda:N``) runs the time-to-accuracy trainings on a GPU. Use ``--seeds``,
``--epochs``, ``--speed-steps`` and ``--skip-*`` to shorten it; the JSON records what ran. The arguments
are checked before torch is imported.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import mnist_time  # bench/mnist_time.py, beside this script (torch-free, as is mnist_table)
from bench_record import RUNS_BENCH, add_out_option, write_record
from mnist_table import format_table

from ml.cli import Parser
from ml.config import PRESETS, TrainConfig, parse_setting

ROOT = Path(__file__).resolve().parents[1]
PROG = "python bench/mnist_bench.py"
DEFAULT_WORK_DIR = RUNS_BENCH  # the training runs beside the record
PARTS = ("time", "speed", "accuracy", "predict")


def device(text: str) -> str:
    """A device as ml.train's --device takes it (auto, cpu, cuda, cuda:N, mps)."""
    try:
        return parse_setting("device", text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def build_parser() -> Parser:
    p = Parser(
        prog=PROG,
        description="Time to accuracy, epoch speed, accuracy and prediction of gradsheet's MNIST training, "
        "against the textbook pipeline; prints tables and writes a JSON record.",
        renamed=RENAMED,
    )
    p.add_argument(
        "--device",
        type=device,
        default="auto",
        help="device of the timed trainings: auto, cpu, cuda, cuda:N, mps (default: auto)",
    )
    p.add_argument(
        "--threads", type=int, default=0, help="torch threads per training (default: 0, torch's own)"
    )
    add_time_options(p)
    add_measure_options(p)
    for part in PARTS:
        p.add_argument(f"--skip-{part}", action="store_true", help=f"leave the {part} section out")
    p.add_argument(
        "--work-dir",
        metavar="DIR",
        default=str(DEFAULT_WORK_DIR),
        help="the folder of the bench's training runs (default: runs/bench)",
    )
    add_out_option(p, "mnist.json")
    return p  # fmt: skip


def add_time_options(p: Parser) -> None:
    """The time-to-accuracy section's options."""
    p.add_argument(
        "--target",
        type=float,
        default=0.995,
        help="the test accuracy of time-to-accuracy (default: %(default)s)",
    )
    p.add_argument(
        "--presets",
        nargs="*",
        default=list(PRESETS),
        help="presets timed to the target (default: all: %(default)s)",
    )
    p.add_argument(
        "--ttt-seeds",
        type=int,
        nargs="*",
        default=[1, 2, 3],
        help="seeds of the timed runs (default: %(default)s)",
    )
    p.add_argument(
        "--textbook-epochs",
        type=int,
        default=20,
        help="at most this many textbook epochs (default: %(default)s; 0: none, e.g. on a GPU "
        "machine: it trains on the CPU)",
    )
    p.add_argument(
        "--reuse-textbook", action="store_true", help="take the textbook's time from the --out record"
    )
    p.add_argument(
        "--concurrent", type=int, nargs="*", default=[],
        help="also time this many trainings at once, like a classroom server (default: none)",
    )  # fmt: skip


def add_measure_options(p: Parser) -> None:
    """The speed, accuracy and prediction sections' options."""
    p.add_argument(
        "--models",
        nargs="*",
        default=["default"],
        help="models whose accuracy is measured (default: %(default)s)",
    )
    p.add_argument(
        "--seeds",
        type=int,
        nargs="*",
        default=[1, 2, 3],
        help="seeds of the accuracy runs (default: %(default)s)",
    )
    p.add_argument(
        "--epochs",
        type=int,
        default=TrainConfig().epochs,
        help="epochs of the accuracy runs (default: %(default)s)",
    )
    p.add_argument(
        "--speed-steps",
        type=int,
        default=0,
        help="time only N steps per pipeline (default: 0, a whole epoch)",
    )
    p.add_argument("--time-compiled", action="store_true", help="also time the pipeline under torch.compile")
    p.add_argument(
        "--speed-threads",
        type=int,
        nargs="+",
        default=[2, 1],
        help="thread counts to time (default: %(default)s)",
    )
    p.add_argument("--predict-images", type=int, default=400,
                   help="pictures of the prediction checks (default: %(default)s)")  # fmt: skip


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


RENAMED = {"--work": "--work-dir DIR", "--compile": "--time-compiled"}


def run_section(part: str, args: argparse.Namespace, work: Path, previous: dict) -> dict:
    """One section's figures. The speed, accuracy and prediction sections' modules load torch (seconds), so
    they are imported here, once the arguments are checked."""
    if part == "time":
        return mnist_time.run_time(args, work, previous)
    if part == "speed":
        import mnist_speed

        return mnist_speed.run_speed(args, work)
    import mnist_accuracy

    if part == "accuracy":
        return mnist_accuracy.run_accuracies(args, work)
    return mnist_accuracy.run_predict(args, work)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    out = args.out
    previous = json.loads(out.read_text()) if out.is_file() else {}
    result: dict = {"machine": machine(), "args": vars(args)}
    t_start = time.perf_counter()
    for part in PARTS:
        if not getattr(args, f"skip_{part}"):
            result[part] = run_section(part, args, work, previous)
    result["machine"]["load_avg_end"] = os.getloadavg()
    result["wall_s"] = time.perf_counter() - t_start
    print()
    print(format_table(result))
    print()
    write_record(out, result)
    return 0


def machine() -> dict:
    """What the figures were measured on: the CPU (its model and whether it has native bf16, which decides
    the CPU training's precision), the GPU, the versions and the load."""
    import torch

    from ml.device import cpu_has_native_bf16

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu": platform.processor() or platform.machine(),
        "cpu_model": cpu_model(),
        "cpu_native_bf16": cpu_has_native_bf16(),
        "cpu_count": os.cpu_count(),
        "gpu": gpu,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "load_avg_start": os.getloadavg(),
    }


def cpu_model() -> str | None:
    """The CPU's model name (Linux: /proc/cpuinfo), or None where it cannot be read."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor() or None
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), None)


if __name__ == "__main__":
    sys.exit(main())
