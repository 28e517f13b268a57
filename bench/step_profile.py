"""Where a GPU training epoch's time goes: ``python bench/step_profile.py [--device cuda:N]`` (needs a GPU).

Times, in one process, epochs of the default model with the step as a CUDA graph, without it (eager), with
cuDNN's autotuning on, and the ``fast`` model; for each: set-up, the first two epochs (training only), two
evaluations, and 60 steps' host time (the Python loop) against their time with the GPU drained. Then one
checkpoint save, one pair of curve charts, and the top kernels of 10 profiled steps. No charts or metrics
files are written during the epochs, so the figures are the training loop's own. It prints, and writes
nothing but a temporary folder; the measurements are ``bench/step_timing.py``, imported once the arguments
are checked (torch loads in seconds).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runnable from a plain checkout
from ml.cli import Parser  # noqa: E402
from ml.config import parse_setting  # noqa: E402

PROG = "python bench/step_profile.py"


def gpu(text: str) -> str:
    """cuda or cuda:N (the GPU to profile)."""
    device = parse_setting("device", text) if text.startswith("cuda") else None
    if device is None:
        raise argparse.ArgumentTypeError(f"the device must be cuda or cuda:N, got {text!r}")
    return device


def build_parser() -> Parser:
    parser = Parser(
        prog=PROG, description="Where a GPU training epoch's time goes (needs a CUDA GPU); prints."
    )
    parser.add_argument("--device", type=gpu, default="cuda", help="the GPU: cuda or cuda:N (default: cuda)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print(f"{PROG}: error: it needs a CUDA GPU; torch sees none", file=sys.stderr)
        return 2
    import step_timing

    step_timing.profile(args.device)
    return 0


if __name__ == "__main__":
    sys.exit(main())
