"""The CNN's contract: size, shapes, building blocks, summary."""

import pytest
import torch
from torch import nn

from ml.model import build_model, count_parameters, format_summary, summary_rows


@pytest.mark.parametrize(("variant", "limit"), [("default", 20000), ("small", 8000)])
def test_parameter_budget_and_output_shape(variant, limit):
    model = build_model(variant).eval()
    n = count_parameters(model)
    assert 0.5 * limit < n < limit
    assert n == sum(p.numel() for p in model.parameters())
    out = model(torch.randn(5, 1, 28, 28))
    assert out.shape == (5, 10)


def test_uses_batchnorm_dropout_and_global_average_pooling_without_dense_head():
    kinds = [type(m) for m in build_model().modules()]
    assert nn.BatchNorm2d in kinds and nn.Dropout2d in kinds and nn.AdaptiveAvgPool2d in kinds
    assert nn.Linear not in kinds


def test_channels_last_and_batch_independence_in_eval():
    model = build_model().eval()
    x = torch.randn(8, 1, 28, 28)
    ref = model(x)
    cl = model.to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last))
    assert torch.allclose(ref, cl, atol=1e-5)
    assert torch.allclose(ref[:1], model(x[:1]), atol=1e-5)  # eval mode: no batch statistics


def test_summary_rows_match_the_model():
    model = build_model()
    rows = summary_rows(model)
    assert sum(r[2] for r in rows) == count_parameters(model)
    assert rows[0] == ("Conv2d-1", "[-1, 8, 28, 28]", 72)
    assert rows[-1][1] == "[-1, 10]"
    assert model.training  # summary leaves the mode as it was
    text = format_summary(model)
    assert f"Total params: {count_parameters(model):,}" in text and "MaxPool2d-1" in text


def test_unknown_variant_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown model variant 'huge'"):
        build_model("huge")
