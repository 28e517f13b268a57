"""The task pane rendered by a real browser (headless Chromium) against the server on loopback, at the
width of an Excel task pane: the picture is produced and shows the pane (not a blank page, not xlwings'
"didn't load" prompt)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from excel_addin.testing.chromium import browser, screenshot

pytestmark = pytest.mark.skipif(browser() is None, reason="needs chromium")
TRAIN_GREEN = np.array([33, 115, 70])  # the Train button (bootstrap-xlwings' primary colour)


@pytest.fixture(scope="module")
def server(live_server):
    """The test run's default server (conftest.py: ``--http --max-trainings 1``)."""
    return live_server


@pytest.mark.slow
@pytest.mark.parametrize("width", [300, 350, 400])
def test_the_task_pane_renders(server, tmp_path, width):
    picture = screenshot(
        f"{server.url}/taskpane.html?preview", tmp_path / "pane.png", width=width, height=700
    )
    image = np.asarray(Image.open(picture).convert("RGB"), dtype=np.int16)
    assert image.shape == (700, width, 3)
    ink = (image.min(axis=2) < 200).mean()  # share of pixels that are not (near) white
    assert 0.04 < ink < 0.6, ink  # xlwings' "didn't load" prompt alone: about 0.015
    green = (np.abs(image - TRAIN_GREEN).max(axis=2) < 30).sum()
    assert green > 4000, green  # the icon and the filled Train button (the prompt's button alone: ~2,600)
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 50  # text and controls, not a flat page
