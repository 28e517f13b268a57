"""Write the Classify sheet's example pictures: examples/digits/0.png .. 9.png.

Each is the first MNIST test digit of its class drawn the way a user's scan looks: dark ink on light grey
paper, four times MNIST's size, off centre. The classifier must undo all of that (see ml/preprocess.py).

    python examples/make_digits.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ml.data import load_mnist

OUT = Path(__file__).parent / "digits"
PAPER, INK = 235, 25


def main() -> None:
    mnist = load_mnist()
    images, labels = mnist.test_x.numpy(), mnist.test_y.numpy()
    OUT.mkdir(parents=True, exist_ok=True)
    for digit in range(10):
        img28 = images[np.flatnonzero(labels == digit)[0]].astype(np.float32) / 255.0
        drawn = Image.fromarray(PAPER + (INK - PAPER) * img28, mode="F")
        drawn = drawn.resize((112, 112), Image.Resampling.BICUBIC)
        page = np.full((150, 180), float(PAPER), dtype=np.float32)
        page[12 + digit : 124 + digit, 20 + 3 * digit : 132 + 3 * digit] = np.asarray(drawn)
        Image.fromarray(np.clip(page, 0, 255).astype(np.uint8), mode="L").save(OUT / f"{digit}.png")
    print(f"wrote {OUT}/0.png .. 9.png")


if __name__ == "__main__":
    main()
