"""Hostile and absurd inputs get a clear message within bounded time and memory, never a traceback:
decompression bombs and huge pictures, checkpoints that lie about their model, NaN weights, a zero std,
malformed fields, and backprop cells with numbers too large for floating point."""

from __future__ import annotations

import itertools
import math
import shutil
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from excel_addin.cells import ERROR_PREFIX
from excel_addin.classic.udfs import BACKPROP_CURVE, BACKPROP_LOSS, BACKPROP_TABLE, CLASSIFY_IMAGE
from ml import backprop
from ml.checkpoint import load_checkpoint, save_checkpoint
from ml.data import load_mnist
from ml.predict import ModelNotFoundError, UnreadableImageError, load_classifier, shipped_model_path
from ml.preprocess import MAX_PIXELS, preprocess_file
from ml.spec import MAX_PARAMS, ModelSpec, ModelSpecError


def png_claiming(path: Path, width: int, height: int) -> Path:
    """A tiny PNG file whose header claims width x height pixels (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\0" * 2**20, 9)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )
    return path


@pytest.mark.parametrize(("width", "height"), [(60_000, 60_000), (6_000, 6_000), (20_000, 2_000)])
def test_a_decompression_bomb_is_refused_from_its_header(tmp_path, width, height):
    bomb = png_claiming(tmp_path / "bomb.png", width, height)
    start = time.perf_counter()
    with pytest.raises(UnreadableImageError, match=r"megapixels\); crop or scale it down"):
        preprocess_file(bomb)
    assert time.perf_counter() - start < 1.0
    assert CLASSIFY_IMAGE(str(bomb), str(shipped_model_path())).startswith(f"{ERROR_PREFIX}{bomb}")


def test_refusing_a_bomb_stays_within_bounded_memory(tmp_path):
    """In a fresh process: the peak memory after refusing a 3.6-gigapixel PNG is that of the imports."""
    bomb = png_claiming(tmp_path / "bomb.png", 60_000, 60_000)
    code = (
        "import resource, sys\n"
        "from ml.preprocess import preprocess_file, UnreadableImageError\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        f"try:\n    preprocess_file({str(bomb)!r})\nexcept UnreadableImageError:\n    pass\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n"
    )
    grown_kb = int(
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    )
    assert grown_kb < 50 * 1024


def test_a_file_too_big_to_be_a_digit_picture_is_refused_unread(tmp_path):
    huge = tmp_path / "huge.png"
    with huge.open("wb") as f:
        f.truncate(65 * 2**20)  # sparse: no disk, no reading
    with pytest.raises(UnreadableImageError, match="65 MB: too large for a picture of one digit"):
        preprocess_file(huge)


def test_a_big_photo_is_downscaled_on_load_and_still_read(tmp_path):
    digit = load_mnist().test_x[0].numpy()  # a 7
    big = Image.fromarray(255 - digit).resize((4000, 4000), Image.Resampling.BILINEAR)
    path = tmp_path / "photo.jpg"
    big.convert("RGB").save(path, quality=90)
    assert 4000 * 4000 <= MAX_PIXELS
    assert load_classifier(shipped_model_path()).predict(path).digit == 7


# ---- checkpoints that lie ----------------------------------------------------------------------------


def shipped() -> dict:
    return load_checkpoint(shipped_model_path())


def saved(tmp_path: Path, **changes) -> Path:
    """The shipped checkpoint with some entries changed, saved without any checks (as an attacker would)."""
    ckpt = {**shipped(), **changes}
    path = tmp_path / "model.pt"
    torch.save(ckpt, path)
    return path


def conv(c_in, c_out, k=3):
    return ["conv", c_in, c_out, k, 1, k // 2, 1, False]


@pytest.mark.parametrize(
    ("model", "message"),
    [
        (
            {"layers": [conv(1, 2048), conv(2048, 2048), conv(2048, 10, 1), ["gap"]]},
            f"more than {MAX_PARAMS:,} parameters",
        ),
        ({"layers": [conv(1, 10**9)]}, "must be a whole number from 1 to 2,048"),
        ({"layers": [conv(1, 8), conv(16, 10, 1), ["gap"]]}, "expects 16 input channels but receives 8"),
        ({"layers": [["conv", 1, 10, 29, 1, 0, 1, False]]}, "kernel must be a whole number from 1 to 28"),
        ({"layers": [conv(1, 10)] + [["maxpool", 2]] * 6}, "a 2x2 window does not fit the 1x1 map"),
        ({"layers": [conv(1, 8)]}, "must end in 10 values"),
        ({"layers": [["softmax"]]}, "unknown kind 'softmax'"),
        ({"layers": [conv(1, 8), ["add", 1], conv(8, 10, 1), ["gap"]]}, "has no shortcut before it to add"),
        (
            {"layers": [conv(1, 8), ["shortcut"], ["shortcut"], ["add", 1], conv(8, 10, 1), ["gap"]]},
            "starts a residual connection inside another one",
        ),
        (
            {"layers": [conv(1, 8), ["shortcut"], conv(8, 16), ["add", 1], conv(16, 10, 1), ["gap"]]},
            "the shortcut's 8 channel\\(s\\) of 28x28, max-pooled by 1, do not match the 16",
        ),
        (
            {"layers": [conv(1, 8), ["shortcut"], conv(8, 8), ["add", 2], conv(8, 10, 1), ["gap"]]},
            "of 28x28, max-pooled by 2, do not match the 8 channel\\(s\\) of 28x28",
        ),
        ({"layers": [conv(1, 8), ["shortcut"], conv(8, 10, 1), ["gap"]]}, "a shortcut that no later add"),
        ({"layers": [conv(1, 8), ["shortcut"], ["add", 0]]}, "pool must be a whole number from 1 to 28"),
        ({"layers": "conv"}, "a model has 1 to 200 layers"),
        ({"layers": [conv(1, 10)], "extra": 1}, "unknown model spec fields: extra"),
        ("default", "a model spec must be a record"),
        ({"stages": "x"}, "the model spec is malformed"),
    ],
)
def test_a_checkpoint_whose_spec_is_absurd_or_malformed_is_refused_before_building(tmp_path, model, message):
    path = saved(tmp_path, model=model)
    start = time.perf_counter()
    with pytest.raises(ModelNotFoundError, match=message):
        load_classifier(path)
    assert time.perf_counter() - start < 1.0  # nothing was allocated
    assert CLASSIFY_IMAGE("examples/digits/3.png", str(path)).startswith(f"{ERROR_PREFIX}{path} describes")


def test_a_spec_is_checked_before_anything_is_allocated():
    with pytest.raises(ModelSpecError, match="more than 1,000,000 parameters"):
        ModelSpec(((*conv(1, 2048),), (*conv(2048, 2048),)))


def test_nan_weights_are_refused_for_prediction_and_never_saved(tmp_path):
    state = {k: v.clone() for k, v in shipped()["state_dict"].items()}
    state["net.0.weight"][0, 0, 0, 0] = math.nan
    with pytest.raises(ModelNotFoundError, match="holds non-finite weights .* diverged"):
        load_classifier(saved(tmp_path, state_dict=state))
    with pytest.raises(ValueError, match="refusing to save non-finite weights"):
        save_checkpoint(tmp_path / "nan.pt", {**shipped(), "state_dict": state})
    assert not (tmp_path / "nan.pt").exists()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"normalisation": {"mean": 0.13, "std": 0.0}}, "std must be a positive number"),
        ({"normalisation": {"mean": 0.13}}, "malformed normalisation"),
        ({"normalisation": "none"}, "malformed normalisation"),
        ({"state_dict": {"net.0.weight": torch.zeros(3)}}, "weights do not fit its model spec"),
        ({"state_dict": "weights"}, "has no weights"),
        ({"format": "something else"}, "is not a gradsheet MNIST checkpoint"),
    ],
)
def test_malformed_checkpoint_fields_give_a_message(tmp_path, changes, message):
    with pytest.raises(ModelNotFoundError, match=message):
        load_classifier(saved(tmp_path, **changes))


def test_a_checkpoint_file_too_large_to_be_ours_is_not_loaded(tmp_path):
    path = tmp_path / "model.pt"
    shutil.copyfile(shipped_model_path(), path)
    with path.open("r+b") as f:
        f.truncate(65 * 2**20)
    with pytest.raises(ModelNotFoundError, match="too large to be a gradsheet model checkpoint"):
        load_classifier(path)


# ---- backprop cells with absurd numbers ----------------------------------------------------------------

EXTREMES = [0.5, 1e300, 1e308, -1e308, 1e-308]


def test_backprop_cells_never_raise_for_extreme_numbers():
    """Rates, weights, inputs and biases up to the largest floats: a finite number or a message."""
    for lr, weight, value, output in itertools.product(
        [0.5, 1e10, 1e300], EXTREMES, EXTREMES, backprop.OUTPUTS
    ):
        args = (lr, 3, [value, -value], [0.5, 0.5], [weight, -weight] * 4, [value, value], output)
        loss = BACKPROP_LOSS(*args)
        assert (isinstance(loss, float) and math.isfinite(loss)) or loss.startswith(ERROR_PREFIX), args
        for cell in sum(BACKPROP_CURVE(*args), []) + sum(BACKPROP_TABLE(*args)[1:], []):
            assert (isinstance(cell, int | float) and math.isfinite(cell)) or cell.startswith(ERROR_PREFIX)


def test_an_overflowing_network_names_the_epoch_where_it_overflows():
    loss = BACKPROP_LOSS(1.0, 3, [1e300, 1e300], None, [1e10, -1e10, 1, 1, 1, 1, 1, 1])
    assert loss.startswith(f"{ERROR_PREFIX}the numbers overflow from epoch 0 on (learning rate 1)")
    assert backprop.sigmoid(-1e308) == 0.0 and backprop.sigmoid(1e308) == 1.0  # no OverflowError


def test_trajectory_caches_are_bounded_in_bytes():
    cache = backprop.TrajectoryCache(max_bytes=2**20)
    network = backprop.Network()
    for k in range(12):
        table = cache.get(0.1 + k, 1000, network)  # 1,001 rows x 28 columns x 8 bytes = 224 kB each
        assert table.shape[0] > 1000
        assert cache.bytes <= 2**20
    assert len(cache.tables) == 2**20 // table.nbytes and cache.computed == 12
    assert np.array_equal(
        cache.get(11.1, 500, network)[:501], backprop.compute_trajectory(11.1, 500, network)
    )
    assert backprop.cache_info()["bytes"] <= backprop._cache.max_bytes


def test_devices_pipes_and_folders_are_named_as_what_they_are_and_never_opened(tmp_path):
    """/dev/zero (reading it never ends), a FIFO (reading it waits for a writer) and a folder, given as an
    image or a model file: each is named as what it is, at once, and nothing is read from it."""
    import os

    from excel_addin.buttons import out_dir_from_settings
    from excel_addin.cells import Files

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    digit = "examples/digits/3.png"
    assert CLASSIFY_IMAGE("/dev/zero") == f"{ERROR_PREFIX}/dev/zero is a device, not an image file"
    assert CLASSIFY_IMAGE(str(fifo)) == f"{ERROR_PREFIX}{fifo} is a pipe (FIFO), not an image file"
    assert CLASSIFY_IMAGE(str(tmp_path)) == f"{ERROR_PREFIX}{tmp_path} is a folder, not an image file"
    assert CLASSIFY_IMAGE(digit, str(fifo)).startswith(
        f"{ERROR_PREFIX}{fifo} is a pipe (FIFO), not a model file"
    )
    from ml.run_dir import RunDir, RunDirError

    out_dir = out_dir_from_settings({"out_dir": str(fifo)}, Files(tmp_path))
    with pytest.raises(RunDirError, match=r"is a pipe \(FIFO\), not a folder: choose another output folder"):
        RunDir(out_dir).prepare()
