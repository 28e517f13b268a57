"""Training charts as PNG files: loss and accuracy curves, confusion matrix, misclassified test digits.

Drawn with matplotlib's object API on the Agg canvas (no pyplot state, no display needed), so they can be
refreshed from a training loop in any process, headless or not.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .run_dir import atomic_path


def _save(fig: Figure, path: str | os.PathLike) -> str:
    """Write the figure as a PNG atomically (a reader never sees half a picture)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, bbox_inches="tight")
    return str(path)


def _epochs(history: Sequence[dict]) -> list[float]:
    return [r["epoch"] for r in history]


def _per_epoch_axes(fig: Figure, history: Sequence[dict]):
    """Axes over the run's epochs with whole-epoch ticks (one epoch would otherwise get 0.96, 0.98, ...)."""
    ax = fig.add_subplot()
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    ax.set_xlim(0.5, max(_epochs(history), default=1) + 0.5)
    return ax


def _tested(history: Sequence[dict], key: str, scale: float = 1.0) -> tuple[list[float], list[float]]:
    """(epochs, values) of the epochs that were evaluated on the test set (the others are NaN)."""
    points = [(r["epoch"], scale * r[key]) for r in history if math.isfinite(r[key])]
    return [e for e, _ in points], [v for _, v in points]


def plot_loss_curves(history: Sequence[dict], path: str | os.PathLike) -> str:
    """Train and test loss per epoch."""
    fig = Figure(figsize=(6, 4))
    ax = _per_epoch_axes(fig, history)
    ax.plot(
        _epochs(history), [r["train_loss"] for r in history], "o-", label="train (augmented, label-smoothed)"
    )
    ax.plot(*_tested(history, "test_loss"), "s-", label="test")
    ax.set(xlabel="epoch", ylabel="cross-entropy loss", title="Loss")
    ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend()
    return _save(fig, path)


def plot_accuracy_curves(history: Sequence[dict], path: str | os.PathLike) -> str:
    """Train and test accuracy (percent) per epoch, with the best test accuracy marked."""
    fig = Figure(figsize=(6, 4))
    ax = _per_epoch_axes(fig, history)
    tested, test = _tested(history, "test_acc", 100)
    ax.plot(_epochs(history), [100 * r["train_acc"] for r in history], "o-", label="train (augmented)")
    ax.plot(tested, test, "s-", label="test")
    if test:
        best = int(np.argmax(test))
        ax.annotate(
            f"{test[best]:.2f}%",
            (tested[best], test[best]),
            textcoords="offset points",
            xytext=(0, 8),
            ha="center",
        )
        ax.set_ylim(*accuracy_limits(test, [100 * r["train_acc"] for r in history]))
    ax.set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best")  # lower right, below the curves, for a run that ends well
    return _save(fig, path)


ZOOM_FLOOR = 80.0  # percent: a run that ends well is drawn from here up, so its last epochs are told apart


def accuracy_limits(test: Sequence[float], train: Sequence[float]) -> tuple[float, float]:
    """The accuracy chart's y range (percent): from just below the lowest point to 100, but no lower than
    ZOOM_FLOOR for a run that ends above ZOOM_FLOOR + 10 (its first epoch may then leave the frame: the
    differences worth seeing are in the last ones). A weak run (a quick subset run, a bad design) is
    drawn whole, never out of frame."""
    low = min([*test, *train]) - 0.5
    if min(test[-1], train[-1]) >= ZOOM_FLOOR + 10:
        low = max(low, ZOOM_FLOOR)
    return max(low, 0.0), 100.0


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int = 10) -> np.ndarray:
    """counts[true, predicted]."""
    return np.bincount(n_classes * np.asarray(y_true) + np.asarray(y_pred), minlength=n_classes**2).reshape(
        n_classes, n_classes
    )


def plot_confusion_matrix(matrix: np.ndarray, path: str | os.PathLike) -> str:
    """Confusion matrix with counts; the diagonal's colour is capped so the errors stay visible."""
    n = matrix.shape[0]
    off = matrix.copy()
    np.fill_diagonal(off, 0)
    fig = Figure(figsize=(6, 5.4))
    ax = fig.add_subplot()
    ax.imshow(off, cmap="Reds", vmin=0, vmax=max(1, off.max()))
    for i in range(n):
        for j in range(n):
            if matrix[i, j]:
                ax.text(
                    j,
                    i,
                    str(matrix[i, j]),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="tab:green" if i == j else "black",
                )
    acc = np.trace(matrix) / max(1, matrix.sum())
    ax.set(
        xticks=range(n),
        yticks=range(n),
        xlabel="predicted",
        ylabel="true",
        title=f"Confusion matrix (test accuracy {acc:.2%}, {matrix.sum() - np.trace(matrix)} errors)",
    )
    return _save(fig, path)


def plot_misclassified(
    images: np.ndarray,
    y_true: Sequence[int],
    y_pred: Sequence[int],
    confidence: Sequence[float],
    path: str | os.PathLike,
    max_images: int = 40,
) -> str:
    """A grid of misclassified test digits titled 'true->predicted (confidence)'."""
    n = min(len(images), max_images)
    cols = 10
    rows = max(1, -(-n // cols))
    fig = Figure(figsize=(cols * 0.95, rows * 1.15 + 0.4))
    fig.suptitle(f"Misclassified test digits ({len(images)} in all): true->predicted (confidence)")
    for k in range(rows * cols):
        ax = fig.add_subplot(rows, cols, k + 1)
        ax.axis("off")
        if k < n:
            ax.imshow(images[k], cmap="gray_r", vmin=0, vmax=255)
            ax.set_title(f"{y_true[k]}->{y_pred[k]} ({confidence[k]:.0%})", fontsize=7)
    return _save(fig, path)
