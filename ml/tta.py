"""Test-time augmentation's views, by their number: the pixel shifts (dy, dx) whose softmax is averaged.

A setting (``tta``: 0, 5 or 9 views) checked without torch; ``ml.augment.view_averaged_softmax`` applies
the views in evaluation and prediction alike.
"""

from __future__ import annotations

TTA_VIEWS: dict[int, tuple[tuple[int, int], ...]] = {
    0: ((0, 0),),
    5: ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)),
    9: tuple((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)),
}
