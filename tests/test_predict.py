"""Classifying image files: MNIST-style preprocessing, the shipped model, caching, and clear errors."""

import os
import shutil

import numpy as np
import pytest
from PIL import Image

from ml.data import load_mnist
from ml.predict import (
    EmptyImageError,
    ImageNotFoundError,
    ModelNotFoundError,
    PredictionError,
    UnreadableImageError,
    default_model_path,
    load_classifier,
    main,
    shipped_model_path,
)
from ml.preprocess import mnistify, preprocess_file
from ml.user_pictures import STYLES, as_is_28, user_style_png

N_DIGITS = 60


@pytest.fixture(scope="module")
def digit_files(tmp_path_factory):
    """Real MNIST test digits (not seen in training) as user-style PNGs: dark on light, rescaled, shifted."""
    folder = tmp_path_factory.mktemp("digits")
    data = load_mnist()
    files = [
        user_style_png(data.test_x[i].numpy(), folder / f"digit_{i}.png", style=i) for i in range(N_DIGITS)
    ]
    return files, data.test_y[:N_DIGITS].tolist(), data.test_x[:N_DIGITS].numpy()


def test_preprocessing_recovers_the_mnist_digit(digit_files):
    files, _, originals = digit_files
    for path, original in zip(files, originals, strict=True):
        got = preprocess_file(path)
        assert got.shape == (28, 28) and got.dtype == np.float32 and 0 <= got.min() and got.max() <= 1
        ref = original.astype(np.float32) / 255
        # same digit up to a one-pixel placement difference (centre of mass is rounded to whole pixels)
        corr = max(
            np.corrcoef(np.roll(got, (dy, dx), (0, 1)).ravel(), ref.ravel())[0, 1]
            for dy in (-1, 0, 1)
            for dx in (-1, 0, 1)
        )
        assert corr > 0.8, f"{path.name}: correlation {corr:.2f} with the MNIST original"
        rows, cols = np.nonzero(got > 0.1)
        assert rows.max() - rows.min() < 22 and cols.max() - cols.min() < 22  # fits MNIST's 20x20 box
        mass = got.sum()
        cy = (got.sum(1) * np.arange(28)).sum() / mass
        cx = (got.sum(0) * np.arange(28)).sum() / mass
        assert abs(cy - 14) < 0.6 and abs(cx - 14) < 0.6


@pytest.mark.slow
def test_shipped_model_classifies_user_style_pictures(digit_files):
    files, labels, _ = digit_files
    clf = load_classifier(shipped_model_path())
    preds = [clf.predict(p) for p in files]
    digits = [p.digit for p in preds]
    correct = sum(d == y for d, y in zip(digits, labels, strict=True))
    assert correct >= N_DIGITS - 2, f"{correct}/{N_DIGITS} right: {list(zip(digits, labels, strict=True))}"
    for p in preds:
        assert len(p.probs) == 10 and abs(sum(p.probs) - 1) < 1e-5 and p.probs[p.digit] == max(p.probs)
    assert [p.digit for p in clf.predict_many(files[:8])] == digits[:8]
    # the preprocessing is what makes this work: the same pictures fed as-is are mostly wrong
    naive = clf.probabilities(np.stack([as_is_28(p) for p in files])).argmax(1)
    assert (naive == np.array(labels)).mean() < 0.5


def test_every_style_is_covered(digit_files):
    assert N_DIGITS >= 4 * len(STYLES)


def test_light_on_dark_and_transparent_pictures(tmp_path):
    data = load_mnist()
    img, label = data.test_x[3].numpy(), int(data.test_y[3])
    big = Image.fromarray(img).resize((84, 84), Image.Resampling.BICUBIC)
    canvas = Image.new("L", (150, 120), 0)
    canvas.paste(big, (50, 20))
    canvas.save(tmp_path / "dark.png")  # white ink on black, like MNIST, but big and off centre
    rgba = Image.new("RGBA", (84, 84), (0, 0, 0, 0))
    rgba.putalpha(big)  # black ink only where the digit is, transparent elsewhere
    rgba.save(tmp_path / "alpha.png")
    clf = load_classifier(shipped_model_path())
    assert clf.predict(tmp_path / "dark.png").digit == label
    assert clf.predict(tmp_path / "alpha.png").digit == label
    assert clf.predict_array(np.asarray(canvas)).digit == label


def test_classifier_is_cached_per_file_version(tmp_path):
    model = tmp_path / "m.pt"
    shutil.copy(shipped_model_path(), model)
    first = load_classifier(model)
    assert load_classifier(model) is first
    st = model.stat()
    os.utime(model, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # "retrained": a newer file
    assert load_classifier(model) is not first


def test_default_model_prefers_the_latest_run(tmp_path):
    assert default_model_path(tmp_path / "no-run") == shipped_model_path()
    (tmp_path / "run").mkdir()
    shutil.copy(shipped_model_path(), tmp_path / "run" / "model.pt")
    assert default_model_path(tmp_path / "run") == tmp_path / "run" / "model.pt"


def test_missing_image(tmp_path):
    clf = load_classifier(shipped_model_path())
    with pytest.raises(ImageNotFoundError, match="not found: .*nope.png"):
        clf.predict(tmp_path / "nope.png")
    with pytest.raises(ImageNotFoundError, match="is a folder"):
        clf.predict(tmp_path)


def test_file_that_is_not_an_image(tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("this is not a picture")
    with pytest.raises(UnreadableImageError, match="notes.png is not a readable image"):
        load_classifier(shipped_model_path()).predict(bad)


@pytest.mark.parametrize("level", [0, 128, 255])
def test_blank_image(tmp_path, level):
    blank = tmp_path / "blank.png"
    Image.new("L", (64, 64), level).save(blank)
    with pytest.raises(EmptyImageError, match="blank.png looks blank"):
        load_classifier(shipped_model_path()).predict(blank)
    faint = np.full((64, 64), 200.0)
    faint[20:40, 30:34] = 195  # 2% contrast: paper texture, not a digit
    with pytest.raises(EmptyImageError):
        mnistify(faint / 255)


def test_no_trained_model(tmp_path):
    with pytest.raises(ModelNotFoundError, match=r"no trained model at .*missing\.pt.*python -m ml.train"):
        load_classifier(tmp_path / "missing.pt")
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelNotFoundError, match="junk.pt is not a readable model checkpoint"):
        load_classifier(junk)
    assert issubclass(ModelNotFoundError, PredictionError) and issubclass(PredictionError, ValueError)


def test_cli(digit_files, tmp_path, capsys):
    files, labels, _ = digit_files
    shipped = str(shipped_model_path())
    assert main([str(files[0]), str(files[1]), "--checkpoint", shipped]) == 0
    captured = capsys.readouterr()
    out = captured.out.splitlines()
    assert out[0].startswith(f"{files[0]}: {labels[0]} (p=") and out[1].startswith(
        f"{files[1]}: {labels[1]} (p="
    )
    assert f"model: {shipped} (the shipped model" in captured.err  # it says which model it used
    assert main([str(tmp_path / "nope.png"), "--checkpoint", shipped]) == 1
    assert "not found" in capsys.readouterr().err
    assert main([str(files[0]), "--checkpoint", str(tmp_path / "none.pt")]) == 2
    assert "python -m ml.train" in capsys.readouterr().err


def test_the_cli_names_the_model_it_chose_by_default(digit_files, tmp_path, monkeypatch, capsys):
    """Without --checkpoint it prefers the latest run's model over the shipped one, and says so."""
    files, labels, _ = digit_files
    monkeypatch.chdir(tmp_path)
    assert main([str(files[0])]) == 0
    assert f"model: {shipped_model_path()} (the shipped model" in capsys.readouterr().err
    run_model = tmp_path / "runs" / "mnist" / "model.pt"
    run_model.parent.mkdir(parents=True)
    shutil.copy(shipped_model_path(), run_model)
    assert main([str(files[0])]) == 0
    captured = capsys.readouterr()
    assert (
        "model: runs/mnist/model.pt (your latest training run; --checkpoint FILE picks another)"
        in captured.err
    )
    assert captured.out.startswith(f"{files[0]}: {labels[0]} (p=")
