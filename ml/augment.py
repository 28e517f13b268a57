"""Batch-level data augmentation with tensor ops: one random affine warp per image, for a whole batch at once.

Small rotations, scalings, shears and shifts are the variations real handwriting has and MNIST's training
set under-represents; they are what lets a <20k-parameter network pass 99.6%. Doing them per sample through
PIL (torchvision's ``RandomAffine`` in a DataLoader) costs more than the network itself on a CPU; building
the (N, 2, 3) matrices and one ``affine_grid`` + ``grid_sample`` call costs a few percent of a step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812 - the conventional name


@dataclass(frozen=True)
class AffineAugment:
    """Random affine warp parameters (uniformly sampled per image)."""

    degrees: float = 10.0  # rotation in [-degrees, degrees]
    scale: tuple[float, float] = (0.9, 1.1)  # zoom factor range
    shear: float = 8.0  # shear angle in degrees, [-shear, shear] along x
    shift: float = 2.5  # translation in pixels, [-shift, shift] along each axis

    def matrices(
        self, n: int, size: int, generator: torch.Generator | None, device: torch.device
    ) -> torch.Tensor:
        """(n, 2, 3) matrices mapping output to input coordinates, in affine_grid's normalised units."""

        def uniform(lo: float, hi: float) -> torch.Tensor:
            where = generator.device if generator is not None else "cpu"
            return torch.rand(n, generator=generator, device=where) * (hi - lo) + lo

        angle = uniform(-self.degrees, self.degrees) * (math.pi / 180)
        shear = uniform(-self.shear, self.shear) * (math.pi / 180)
        inv_scale = 1.0 / uniform(*self.scale)
        # normalised coordinates span 2 units over `size` pixels
        tx, ty = (uniform(-self.shift, self.shift) * (2.0 / size) for _ in range(2))
        cos, sin, tan = torch.cos(angle), torch.sin(angle), torch.tan(shear)
        # inverse map: sample input at R(-a) * Shear * (1/s) * (p - t)
        a = cos * inv_scale
        b = (cos * tan + sin) * inv_scale
        c = -sin * inv_scale
        d = (-sin * tan + cos) * inv_scale
        theta = torch.stack(
            [
                torch.stack([a, b, -(a * tx + b * ty)], dim=1),
                torch.stack([c, d, -(c * tx + d * ty)], dim=1),
            ],
            dim=1,
        )
        return theta.to(device, non_blocking=True)  # a no-op when the generator is on the images' device

    def __call__(self, images01: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Warp a batch of (N, 1, H, W) float images with black (0) background; returns a new tensor."""
        n, c, h, w = images01.shape
        theta = self.matrices(n, h, generator, images01.device).to(images01.dtype)
        grid = F.affine_grid(theta, [n, c, h, w], align_corners=False)
        return F.grid_sample(images01, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def shifted(images: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """(..., H, W) images moved by (dy, dx) pixels, black (0) shifted in."""
    if (dy, dx) == (0, 0):
        return images
    out = torch.zeros_like(images)
    h, w = images.shape[-2:]
    out[..., max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = images[
        ..., max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def view_averaged_softmax(
    model: torch.nn.Module,
    images01: torch.Tensor,
    views: tuple[tuple[int, int], ...],
    prepare: Callable[[torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """The (N, 10) softmax of ``model`` averaged over the ``views`` (pixel shifts, ``ml.tta.TTA_VIEWS[n]``) of
    (N, 1, 28, 28) images in 0..1: test-time augmentation, as evaluation and prediction both do it.
    ``prepare`` turns a shifted view into the model's input (normalisation, memory format); the view of
    (0, 0) is the images tensor itself, so ``prepare`` must not change its argument in place."""
    return sum(model(prepare(shifted(images01, dy, dx))).float().softmax(1) for dy, dx in views) / len(views)
