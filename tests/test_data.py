"""MNIST loading and batch augmentation."""

import numpy as np
import pytest
import torch

from ml.augment import AffineAugment
from ml.data import MNIST_MEAN, MNIST_STD, batches, load_mnist, normalise, steps_per_epoch, to_float

# The published class counts of MNIST's training and test sets.
TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(scope="module")
def mnist():
    return load_mnist()


@pytest.mark.slow
def test_full_dataset_sizes_labels_and_statistics(mnist):
    assert tuple(mnist.train_x.shape) == (60000, 28, 28) and mnist.train_x.dtype == torch.uint8
    assert tuple(mnist.test_x.shape) == (10000, 28, 28)
    assert torch.bincount(mnist.train_y, minlength=10).tolist() == TRAIN_COUNTS
    assert torch.bincount(mnist.test_y, minlength=10).tolist() == TEST_COUNTS
    pixels = mnist.train_x.double() / 255
    assert pixels.mean().item() == pytest.approx(MNIST_MEAN, abs=1e-4)
    assert pixels.std().item() == pytest.approx(MNIST_STD, abs=1e-4)


def test_normalised_training_images_have_zero_mean_unit_std(mnist):
    x = normalise(to_float(mnist.train_x[:20000]))
    assert x.shape == (20000, 1, 28, 28)
    assert x.mean().item() == pytest.approx(0.0, abs=0.01)
    assert x.std().item() == pytest.approx(1.0, abs=0.01)


def test_shuffled_batches_visit_every_image_once():
    x = torch.arange(1000).reshape(1000, 1, 1).expand(1000, 28, 28).contiguous()
    y = torch.arange(1000)
    seen = []
    for xb, yb in batches(x, y, 128, shuffle=True, generator=torch.Generator().manual_seed(0)):
        assert torch.equal(xb[:, 0, 0], yb)  # images and labels stay paired
        seen += yb.tolist()
    assert sorted(seen) == list(range(1000)) and seen != list(range(1000))
    assert steps_per_epoch(1000, 128) == 8 and steps_per_epoch(1000, 128, drop_last=True) == 7
    assert sum(1 for _ in batches(x, y, 128, shuffle=True, drop_last=True)) == 7


def test_augmentation_with_zero_ranges_is_the_identity(mnist):
    x = to_float(mnist.train_x[:64])
    same = AffineAugment(degrees=0, scale=(1, 1), shear=0, shift=0)(x)
    assert torch.allclose(same, x, atol=1e-5)


def test_pure_shift_moves_the_centre_of_mass_by_the_sampled_pixels(mnist):
    x = to_float(mnist.train_x[:256])
    aug = AffineAugment(degrees=0, scale=(1, 1), shear=0, shift=3)
    gen = torch.Generator().manual_seed(3)
    theta = aug.matrices(256, 28, torch.Generator().manual_seed(3), x.device)
    out = aug(x, gen)
    idx = torch.arange(28, dtype=torch.float32)

    def com(img):
        m = img.sum((1, 2, 3))
        return (img.sum((1, 2)) * idx).sum(1) / m, (img.sum((1, 3)) * idx).sum(1) / m

    (cx0, cy0), (cx1, cy1) = com(x), com(out)
    # theta holds -t in normalised units: the content moves by +t = -theta[:, :, 2] * 14 pixels
    tx, ty = -theta[:, 0, 2] * 14, -theta[:, 1, 2] * 14
    inside = (out.sum((1, 2, 3)) / x.sum((1, 2, 3))) > 0.999  # skip digits pushed partly off the edge
    assert inside.sum() > 200
    assert np.allclose((cx1 - cx0)[inside], tx[inside], atol=0.05)
    assert np.allclose((cy1 - cy0)[inside], ty[inside], atol=0.05)


def test_default_augmentation_keeps_digits_recognisable(mnist):
    x = to_float(mnist.train_x[:512])
    out = AffineAugment()(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    ink_ratio = out.sum((1, 2, 3)) / x.sum((1, 2, 3))
    assert 0.7 < ink_ratio.mean().item() < 1.3
    # most of each image is still correlated with the original (small warps, not new images)
    corr = torch.nn.functional.cosine_similarity(out.flatten(1), x.flatten(1))
    assert corr.median().item() > 0.5 and not torch.allclose(out, x)
