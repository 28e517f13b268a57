"""What the network sees, from the command line: ``python -m ml.explain PATH [PATH ...] [--out-dir DIR]``.

For each picture it draws one PNG (``DIR/<picture>-explained.png``; default folder runs/explained): the
input as the network gets it, the first layer's filters and feature maps, and the class evidence maps
(``ml.explanation``). Like ``ml.predict`` it says which model file it used; the arguments are checked
before torch is imported. ``explain``, ``plot_explanation`` and ``Explanation`` stay importable from here
(torch loads on first use).
"""

from __future__ import annotations

import sys
from pathlib import Path

from .cli import Parser, fail
from .errors import PredictionError
from .predict import CHECKPOINT_HELP, chosen_classifier

PROG = "python -m ml.explain"
DEFAULT_OUT_DIR = Path("runs") / "explained"  # under runs/, which git ignores
EXPLANATION_NAMES = ("Explanation", "explain", "plot_explanation")


def __getattr__(name: str):
    """``ml.explain.explain`` and friends: ``ml.explanation``'s, imported on first use."""
    if name in EXPLANATION_NAMES:
        from . import explanation

        return getattr(explanation, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def picture_path(out_dir: str | Path, image: str | Path) -> Path:
    """Where the picture of ``image`` goes: ``out_dir/<image's name>-explained.png``."""
    return Path(out_dir) / f"{Path(image).stem}-explained.png"


def build_parser() -> Parser:
    parser = Parser(
        prog=PROG,
        description="Draw what the network sees in pictures of digits: the first layer's filters and "
        "feature maps, and the class evidence maps; one PNG per picture.",
        renamed={"--model": "--checkpoint FILE", "--out": "--out-dir DIR (a folder: one PNG per picture)"},
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files (PNG, JPEG, ...)")
    parser.add_argument("--checkpoint", metavar="FILE", help=CHECKPOINT_HELP)
    parser.add_argument(
        "--out-dir",
        metavar="DIR",
        default=str(DEFAULT_OUT_DIR),
        help=f"the pictures' folder: DIR/<picture>-explained.png (default: {DEFAULT_OUT_DIR.as_posix()})",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        clf = chosen_classifier(args.checkpoint)
    except PredictionError as exc:
        return fail(PROG, str(exc))
    from .explanation import explain, plot_explanation

    status = 0
    for image in args.paths:
        try:
            expl = explain(clf, image)
        except PredictionError as exc:
            print(f"{image}: error: {exc}", file=sys.stderr)
            status = 1
            continue
        written = plot_explanation(expl, picture_path(args.out_dir, image))
        print(f"{image}: {expl.prediction.digit} (p={expl.prediction.confidence:.4f}) -> {written}")
    return status


if __name__ == "__main__":
    sys.exit(main())
