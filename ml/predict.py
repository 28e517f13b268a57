"""Classify digit images with a trained CNN: ``python -m ml.predict PATH [PATH ...] [--checkpoint FILE]``.

``load_classifier(path)`` loads a checkpoint once per (path, modification time) and reuses it, so a
spreadsheet recalculating CLASSIFY_IMAGE over many cells pays the load once; ``Classifier.predict`` runs the
MNIST-style preprocessing (``ml.preprocess``) and returns the digit and all 10 probabilities.

Which model: an explicit path if given; otherwise the latest training run's ``runs/mnist/model.pt`` if it
exists; otherwise the model shipped with the package (``ml/weights/mnist_cnn.pt``). The command line says
which one it used. torch is imported on first use (loading a model, classifying), so importing this
module, and a bad flag on the command line, cost no torch start-up.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .cli import Parser, fail
from .errors import (
    EmptyImageError,
    ImageNotFoundError,
    ModelNotFoundError,
    PredictionError,
    UnreadableImageError,
    kind_of,
)
from .preprocess import mnistify, preprocess_file
from .run_dir import DEFAULT_RUN_DIR, RunDir
from .tta import TTA_VIEWS

if TYPE_CHECKING:
    from torch import Tensor, nn

__all__ = [
    "Classifier",
    "EmptyImageError",
    "ImageNotFoundError",
    "ModelNotFoundError",
    "Prediction",
    "PredictionError",
    "UnreadableImageError",
    "default_model_path",
    "load_classifier",
    "shipped_model_path",
]

TRAIN_HINT = (
    f"train one with `python -m ml.train` (writes {RunDir().checkpoint.as_posix()}) or pass a model file"
)


@dataclass(frozen=True)
class Prediction:
    """The predicted digit and the probabilities of the 10 digits (summing to 1)."""

    digit: int
    probs: list[float]

    @property
    def confidence(self) -> float:
        """Probability of the predicted digit."""
        return self.probs[self.digit]

    @staticmethod
    def from_probs(probs: np.ndarray) -> Prediction:
        """The prediction of a vector of 10 probabilities."""
        return Prediction(int(np.argmax(probs)), [float(v) for v in probs])


def shipped_model_path() -> Path:
    """The trained model that ships with the package."""
    return Path(__file__).resolve().parent / "weights" / "mnist_cnn.pt"


def default_model_path(run_dir: str | os.PathLike = DEFAULT_RUN_DIR) -> Path:
    """The run's model (``run_dir/model.pt``) if one has been trained, else the shipped model."""
    run_model = RunDir(run_dir).checkpoint
    return run_model if run_model.is_file() else shipped_model_path()


class Classifier:
    """A loaded CNN with its normalisation; thread-safe for prediction. ``tta``: the test-time views its
    training was evaluated with (ml.tta.TTA_VIEWS), so a prediction is what the run's accuracy says."""

    def __init__(self, model: nn.Module, mean: float, std: float, path: str = "", tta: int = 0):
        self.model = model.eval()
        self.mean, self.std = float(mean), float(std)
        self.path = path
        self.views = TTA_VIEWS[tta]
        self._lock = threading.Lock()

    def probabilities(self, images28: np.ndarray) -> np.ndarray:
        """The (N, 10) digit probabilities of MNIST-style images (N, 28, 28), 0..1 with ink = 1, as they
        are: no preprocessing (``predict`` and ``predict_array`` prepare a picture first)."""
        import torch

        from .augment import view_averaged_softmax

        images = torch.from_numpy(np.ascontiguousarray(images28, dtype=np.float32)).reshape(-1, 1, 28, 28)
        with self._lock, torch.inference_mode():
            probs = view_averaged_softmax(self.model, images, self.views, self._normalised)
            return probs.numpy()

    def _normalised(self, images: Tensor) -> Tensor:
        return (images - self.mean) / self.std

    def predict_array(
        self, image: np.ndarray, source: str = "image", bright_ink: bool | None = None
    ) -> Prediction:
        """Classify an in-memory grayscale picture (2-D, 0..1 or 0..255, any size). ``bright_ink``: True
        when the ink is brighter than the paper (as in MNIST), False for dark ink, None to guess it."""
        gray = np.asarray(image, dtype=np.float32)
        if gray.size and gray.max() > 1.0:
            gray = gray / 255.0
        return Prediction.from_probs(self.probabilities(mnistify(gray, source, bright_ink))[0])

    def predict(self, image_path: str | os.PathLike) -> Prediction:
        """Classify one image file; raises a PredictionError subclass naming the file when it can't."""
        return Prediction.from_probs(self.probabilities(preprocess_file(image_path))[0])

    def predict_many(self, paths: Iterable[str | os.PathLike]) -> list[Prediction]:
        """Classify several files in one forward pass (raises on the first bad file)."""
        images = [preprocess_file(p) for p in paths]
        if not images:
            return []
        return [Prediction.from_probs(p) for p in self.probabilities(np.stack(images))]


_cache: dict[tuple[str, int, int], Classifier] = {}
_cache_lock = threading.Lock()


def load_classifier(model_path: str | os.PathLike | None = None) -> Classifier:
    """The classifier of a model file (default: ``default_model_path()``), loaded once and reused.

    The cache key includes the file's modification time and size, so retraining (which rewrites the file)
    is picked up by the next call.
    """
    from .checkpoint import CheckpointError, load_checkpoint, model_from_checkpoint, normalisation_of

    path = Path(model_path) if model_path is not None else default_model_path()
    try:
        stat = path.stat()
    except OSError:
        raise ModelNotFoundError(f"no trained model at {path}: {TRAIN_HINT}") from None
    if not path.is_file():
        raise ModelNotFoundError(f"{path} is {kind_of(path)}, not a model file: {TRAIN_HINT}")
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    with _cache_lock:
        clf = _cache.get(key)
        if clf is None:
            try:
                ckpt = load_checkpoint(path)
                model = model_from_checkpoint(ckpt, str(path))
                mean, std = normalisation_of(ckpt, str(path))
                tta = tta_of(ckpt)
            except CheckpointError as exc:
                raise ModelNotFoundError(f"{exc}; {TRAIN_HINT}") from exc  # the message names the file
            clf = Classifier(model, mean, std, str(path), tta)
            for stale in [k for k in _cache if k[0] == key[0]]:
                del _cache[stale]
            _cache[key] = clf
    return clf


def tta_of(ckpt: dict) -> int:
    """The test-time views a checkpoint's run was evaluated with (0 for older or odd checkpoints)."""
    config = ckpt.get("config")
    views = config.get("tta", 0) if isinstance(config, dict) else 0
    return views if isinstance(views, int) and not isinstance(views, bool) and views in TTA_VIEWS else 0


PROG = "python -m ml.predict"
CHECKPOINT_HELP = (
    "a trained model file (default: runs/mnist/model.pt if you trained one, else the shipped model)"
)


def chosen_classifier(checkpoint: str | os.PathLike | None) -> Classifier:
    """The classifier a command uses (``--checkpoint``, else ``default_model_path()``), saying which on
    stderr; PredictionError when it cannot be loaded."""
    path = Path(checkpoint) if checkpoint else default_model_path()
    classifier = load_classifier(path)
    print(model_note(path), file=sys.stderr)
    return classifier


def model_note(path: Path) -> str:
    """Which model a command uses, in words: the shipped one, the latest run's, or the file given."""
    if path == shipped_model_path():
        return f"model: {path} (the shipped model; train your own with python -m ml.train)"
    if path == RunDir().checkpoint:
        return f"model: {path} (your latest training run; --checkpoint FILE picks another)"
    return f"model: {path}"


def build_parser() -> Parser:
    parser = Parser(
        prog=PROG,
        description="Classify images of digits; says which model file it used.",
        renamed={"--model": "--checkpoint FILE", "--explain": "its own command: python -m ml.explain PATH"},
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files (PNG, JPEG, ...)")
    parser.add_argument("--checkpoint", metavar="FILE", help=CHECKPOINT_HELP)
    parser.add_argument("--probs", action="store_true", help="also print all 10 probabilities")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        clf = chosen_classifier(args.checkpoint)
    except PredictionError as exc:
        return fail(PROG, str(exc))
    status = 0
    for image in args.paths:
        try:
            pred = clf.predict(image)
        except PredictionError as exc:
            print(f"{image}: error: {exc}", file=sys.stderr)
            status = 1
            continue
        line = f"{image}: {pred.digit} (p={pred.confidence:.4f})"
        if args.probs:
            line += "  [" + " ".join(f"{p:.3f}" for p in pred.probs) + "]"
        print(line)
    return status


if __name__ == "__main__":
    sys.exit(main())
