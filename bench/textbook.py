"""The textbook MNIST pipeline trained to a target accuracy: ``python bench/textbook.py --out FILE.json``.

The time-to-accuracy baseline of ``bench/mnist_bench.py``, which runs it as its own process: the default
model through a torchvision-style dataset of PIL images with per-sample transforms and a ``DataLoader``
(``bench/textbook_pipeline.py``), evaluated after every epoch until ``--target`` or ``--epochs``. Writes the
per-epoch record (test accuracy, elapsed seconds) as JSON to ``--out``. The arguments are checked before
torch is imported.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ml.cli import Parser

PROG = "python bench/textbook.py"


def build_parser() -> Parser:
    parser = Parser(prog=PROG, description="Train the textbook MNIST pipeline to a target test accuracy.")
    parser.add_argument("--target", type=float, default=0.995, help="test accuracy to reach (default: 0.995)")
    parser.add_argument("--epochs", type=int, default=20, help="at most this many epochs (default: 20)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default: 1)")
    parser.add_argument(
        "--lr", type=float, default=0.1, help="peak one-cycle learning rate, batch 128 (default: 0.1)"
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: 0, torch's own)")
    parser.add_argument("--out", metavar="FILE", required=True, help="the JSON file of the record")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import textbook_pipeline  # only now: it loads torch (seconds)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    record = textbook_pipeline.train_to(args.target, args.epochs, args.seed, args.lr)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
