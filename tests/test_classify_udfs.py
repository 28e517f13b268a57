"""CLASSIFY_IMAGE / CLASSIFY_PROBS on real digit pictures (MNIST test digits drawn as a user's scan would
look), the model's location rules, and the readable messages for a bad path, a non-image and no model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from excel_addin import cells
from excel_addin.cells import ERROR_PREFIX, Files, model_location
from excel_addin.classic.udfs import CLASSIFY_IMAGE, CLASSIFY_PROBS
from ml.data import load_mnist
from ml.predict import load_classifier, shipped_model_path
from ml.user_pictures import user_style_png

N_IMAGES = 20


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """The model shipped with the package; where it is not there yet, a small one trained here."""
    if shipped_model_path().is_file():
        return shipped_model_path()
    from ml.train import TrainConfig, train

    out = tmp_path_factory.mktemp("model")
    config = TrainConfig(
        epochs=3, subset=6000, batch_size=128, lr=0.2, model="small", device="cpu", seed=1, out_dir=str(out)
    )
    assert train(config, sinks=[]).status == "completed"
    return out / "model.pt"


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> list[tuple[Path, int]]:
    """Test-set digits (never trained on) as dark-on-light PNGs of varied size, position and paper."""
    data = load_mnist()
    folder = tmp_path_factory.mktemp("digits")
    rng = np.random.default_rng(0)
    picked = rng.choice(len(data.test_x), N_IMAGES, replace=False)
    return [
        (user_style_png(data.test_x[i].numpy(), folder / f"{k}.png", style=k), int(data.test_y[i]))
        for k, i in enumerate(picked)
    ]


def test_classify_image_gives_the_right_digits(model, digits):
    predicted = [CLASSIFY_IMAGE(str(path), str(model)) for path, _ in digits]
    assert all(isinstance(d, int) and 0 <= d <= 9 for d in predicted)
    right = sum(p == label for p, (_, label) in zip(predicted, digits, strict=True))
    assert right >= N_IMAGES - 3, f"{right}/{N_IMAGES} right: {predicted} vs {[d for _, d in digits]}"


def test_classify_probs_spill_a_row_that_agrees_with_the_digit(model, digits):
    classifier = load_classifier(model)
    for path, _ in digits[:5]:
        probs = CLASSIFY_PROBS(str(path), str(model))
        assert len(probs) == 1 and len(probs[0]) == 10
        assert sum(probs[0]) == pytest.approx(1.0, abs=1e-5)
        assert int(np.argmax(probs[0])) == CLASSIFY_IMAGE(str(path), str(model))
        assert probs[0] == pytest.approx(classifier.predict(path).probs, abs=1e-6)
    assert load_classifier(model) is classifier  # loaded once, reused by every cell


def test_relative_paths_are_from_the_workbooks_folder(model, digits, tmp_path):
    """xlwings passes the calling cell as ``caller``; a path relative to its workbook's folder works."""
    path, label = digits[0]

    class Caller:  # what the cell gives: caller.sheet.book.fullname
        class sheet:  # noqa: N801
            class book:  # noqa: N801
                fullname = str(path.parent / "workbook_template.xlsm")

    assert CLASSIFY_IMAGE(path.name, str(model), caller=Caller()) == CLASSIFY_IMAGE(str(path), str(model))
    assert model_location("runs/m.pt", Files(Path("/books"))) == Path("/books/runs/m.pt")


def test_model_location_order(monkeypatch, tmp_path):
    monkeypatch.delenv(cells.MODEL_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no user xlwings.conf
    monkeypatch.setattr("xlwings.USER_CONFIG_FILE", str(tmp_path / ".xlwings" / "xlwings.conf"))
    from ml.predict import default_model_path

    assert model_location(None, Files()) == default_model_path()
    book_dir = tmp_path / "book"
    (book_dir / "runs" / "mnist").mkdir(parents=True)
    (book_dir / "runs" / "mnist" / "model.pt").write_bytes(b"x")
    assert model_location("", Files(book_dir)) == book_dir / "runs" / "mnist" / "model.pt"
    conf = tmp_path / ".xlwings" / "xlwings.conf"
    conf.parent.mkdir()
    conf.write_text('"GRADSHEET_MODEL","/models/from_conf.pt"\n')
    assert model_location(None, Files(book_dir)) == Path("/models/from_conf.pt")
    conf.write_text('"GRADSHEET_MODEL","/models/edited_conf.pt"\n')  # an edit is seen (the read is cached)
    assert model_location(None, Files(book_dir)) == Path("/models/edited_conf.pt")
    import xlwings.utils

    reads = []
    real_read = xlwings.utils.read_user_config
    monkeypatch.setattr(xlwings.utils, "read_user_config", lambda: reads.append(1) or real_read())
    for _ in range(50):  # a sheet of CLASSIFY_* cells: the unchanged file is not read again
        assert model_location(None, Files(book_dir)) == Path("/models/edited_conf.pt")
    assert len(reads) == 0
    conf.unlink()
    assert model_location(None, Files(book_dir)) == book_dir / "runs" / "mnist" / "model.pt"
    conf.write_text('"GRADSHEET_MODEL","/models/from_conf.pt"\n')
    monkeypatch.setenv(cells.MODEL_ENV, "/models/from_env.pt")
    assert model_location(None, Files(book_dir)) == Path("/models/from_env.pt")
    assert model_location("/models/given.pt", Files(book_dir)) == Path("/models/given.pt")


def test_classify_follows_the_train_sheets_output_folder(monkeypatch, tmp_path, model, digits):
    """With model_path empty, the cells use <out_dir>/model.pt of the Train sheet's output folder (the
    template passes that cell), not runs/mnist."""
    monkeypatch.delenv(cells.MODEL_ENV, raising=False)
    monkeypatch.setattr("xlwings.USER_CONFIG_FILE", str(tmp_path / "no-xlwings.conf"))
    book_dir = tmp_path / "book"
    (book_dir / "runs" / "mnist").mkdir(parents=True)
    (book_dir / "runs" / "mnist" / "model.pt").write_bytes(b"not this one")
    (book_dir / "results").mkdir()
    files = Files(book_dir)
    assert model_location(None, files, "results") == shipped_model_path()  # not trained yet
    trained = book_dir / "results" / "model.pt"
    trained.write_bytes(model.read_bytes())
    assert model_location(None, files, "results") == trained
    assert model_location(None, files, str(trained.parent)) == trained  # absolute folders too
    assert model_location("", files, None) == book_dir / "runs" / "mnist" / "model.pt"  # the default

    from types import SimpleNamespace

    # what xlwings passes as `caller` on Windows: the calling cell, whose sheet's book has a full name
    caller = SimpleNamespace(sheet=SimpleNamespace(book=SimpleNamespace(fullname=str(book_dir / "g.xlsm"))))

    path, label = digits[0]
    assert CLASSIFY_IMAGE(str(path), None, "results", caller=caller) == label
    (book_dir / "broken").mkdir()
    (book_dir / "broken" / "model.pt").write_bytes(b"not a model")
    assert CLASSIFY_IMAGE(str(path), None, "broken", caller=caller).startswith(
        f"{ERROR_PREFIX}{book_dir / 'broken' / 'model.pt'} is not a readable model checkpoint"
    )


def test_bad_inputs_give_readable_messages(model, tmp_path):
    missing = tmp_path / "nope.png"
    message = CLASSIFY_IMAGE(str(missing), str(model))
    assert message.startswith(ERROR_PREFIX + "image file not found: ") and str(missing) in message
    text = tmp_path / "notes.png"
    text.write_text("not an image at all")
    message = CLASSIFY_IMAGE(str(text), str(model))
    assert message.startswith(ERROR_PREFIX) and "notes.png" in message and "image" in message
    assert CLASSIFY_IMAGE("", str(model)) == ERROR_PREFIX + "image path is empty: give the path of a file"
    assert CLASSIFY_IMAGE(None, str(model)) == ERROR_PREFIX + "image path is empty: give the path of a file"
    blank = tmp_path / "blank.png"
    from PIL import Image

    Image.new("L", (50, 50), 255).save(blank)
    assert CLASSIFY_IMAGE(str(blank), str(model)).startswith(ERROR_PREFIX)
    no_model = tmp_path / "runs" / "model.pt"
    message = CLASSIFY_IMAGE(str(text), str(no_model))
    assert message.startswith(ERROR_PREFIX + f"no trained model at {no_model}")
    probs = CLASSIFY_PROBS(str(missing), str(model))
    assert (
        len(probs) == 1
        and len(probs[0]) == 1
        and probs[0][0].startswith(ERROR_PREFIX + "image file not found")
    )
    not_a_model = tmp_path / "model.pt"
    not_a_model.write_bytes(b"PK not a checkpoint")
    assert "is not a readable model checkpoint" in CLASSIFY_IMAGE(str(blank), str(not_a_model))
