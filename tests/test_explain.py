"""What the network sees: filters, feature maps and class evidence maps, checked against the network."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ml.explain import main
from ml.explanation import explain, plot_explanation
from ml.model import build_model
from ml.predict import Classifier, load_classifier, shipped_model_path
from ml.preprocess import preprocess_file

EXAMPLE = "examples/digits/3.png"


@pytest.mark.parametrize("variant", ["default", "s6", "small", "tiny"])  # tiny: residual
def test_evidence_maps_average_to_the_networks_scores(variant):
    """The mean of each class map is that class's logit: the maps are what global pooling averages."""
    torch.manual_seed(0)
    clf = (
        load_classifier(shipped_model_path())
        if variant == "default"
        else Classifier(build_model(variant).eval(), 0.1307, 0.3081)
    )
    expl = explain(clf, EXAMPLE)
    x = (torch.from_numpy(preprocess_file(EXAMPLE)).reshape(1, 1, 28, 28) - clf.mean) / clf.std
    with torch.no_grad():
        logits = clf.model(x)[0].numpy()
    assert np.allclose(expl.evidence.mean(axis=(1, 2)), logits, atol=1e-4)
    first = next(m for m in clf.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert np.array_equal(expl.filters, first.weight[:, 0].detach().numpy())
    assert expl.feature_maps.shape[0] == first.out_channels and expl.feature_maps.min() >= 0  # after ReLU


@pytest.mark.slow
def test_the_shipped_model_sees_the_example_three_and_draws_it(tmp_path):
    expl = explain(load_classifier(shipped_model_path()), EXAMPLE)
    assert expl.prediction.digit == 3 and int(expl.evidence.mean(axis=(1, 2)).argmax()) == 3
    png = plot_explanation(expl, tmp_path / "x.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_cli_explain_writes_a_picture_per_image(tmp_path, capsys):
    shipped = shipped_model_path()
    assert (
        main([EXAMPLE, "examples/digits/7.png", "--checkpoint", str(shipped), "--out-dir", str(tmp_path)])
        == 0
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["3-explained.png", "7-explained.png"]
    out, err = capsys.readouterr()
    first, second = out.splitlines()
    assert first.startswith(f"{EXAMPLE}: 3 (p=") and first.endswith(f"-> {tmp_path / '3-explained.png'}")
    assert second.startswith("examples/digits/7.png: 7 (p=") and second.endswith(
        f"-> {tmp_path / '7-explained.png'}"
    )
    assert f"model: {shipped} (the shipped model" in err
