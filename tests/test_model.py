"""The CNN's contract: size, shapes, building blocks, summary."""

import pytest
import torch
from torch import nn

from ml.batchnorm import BatchNorm2d as FastBatchNorm2d
from ml.model import LayerRow, Stage, build_model, count_parameters, format_summary, staged, summary_rows


@pytest.mark.parametrize(
    ("variant", "limit"), [("default", 20000), ("small", 8000), ("wide", 20000), ("strided", 20000)]
)
def test_parameter_budget_and_output_shape(variant, limit):
    model = build_model(variant).eval()
    n = count_parameters(model)
    assert 0.5 * limit < n < limit
    assert n == sum(p.numel() for p in model.parameters())
    out = model(torch.randn(5, 1, 28, 28))
    assert out.shape == (5, 10)


def test_uses_batchnorm_dropout_and_global_average_pooling_without_dense_head():
    modules = list(build_model().modules())
    kinds = [type(m) for m in modules]
    assert any(isinstance(m, nn.BatchNorm2d) for m in modules)
    assert nn.Dropout2d in kinds and nn.AdaptiveAvgPool2d in kinds
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
    assert rows[0] == LayerRow("Conv2d-1", "[-1, 8, 28, 28]", 72, size=28, jump=1, rf=3)
    assert rows[-1].shape == "[-1, 10, 1, 1]" and rows[-1].layer == "AdaptiveAvgPool2d-24"
    assert model.training  # summary leaves the mode as it was
    text = format_summary(model)
    assert f"Total params: {count_parameters(model):,}" in text and "MaxPool2d-5" in text


def test_separable_convolutions_have_the_documented_shape_and_budget():
    """A separable stage: 3x3 depthwise then 1x1 for each of its convolutions; full 3x3 ones elsewhere."""
    model = staged([Stage((4, 6)), Stage((8, 16), separable=True)]).build()
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size[0], c.groups) for c in convs] == [
        (1, 4, 3, 1),
        (4, 6, 3, 1),
        (6, 6, 3, 6),  # depthwise
        (6, 8, 1, 1),  # pointwise
        (8, 8, 3, 8),
        (8, 16, 1, 1),
        (16, 10, 1, 1),  # the 1x1 classifier before GAP
    ]
    assert sum(c.weight.numel() for c in convs[2:4]) == 9 * 6 + 6 * 8
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    small = [m for m in build_model("small").modules() if isinstance(m, nn.Conv2d)]
    assert sum(c.groups > 1 for c in small) == 2  # the small variant's 7x7 stage


def test_unknown_variant_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown model variant 'huge'"):
        build_model("huge")


@pytest.mark.parametrize("channels", [8, 24, 12])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fast_batchnorm_matches_torch_batchnorm_in_training(channels, dtype):
    """ml.batchnorm's regrouped NHWC backward gives nn.BatchNorm2d's outputs, gradients and running stats."""
    torch.manual_seed(0)
    x = torch.randn(16, channels, 9, 7).mul_(3).add_(1).to(dtype)
    x = x.contiguous(memory_format=torch.channels_last)
    g = torch.randn_like(x).add_(0.5)  # a non-zero mean: the dbias term of dx matters
    weight, bias = torch.rand(channels) + 0.5, torch.rand(channels) - 0.5
    results = []
    threads = torch.get_num_threads()
    torch.set_num_threads(max(2, threads))  # the fast path is for multi-threaded torch
    try:
        for cls in (nn.BatchNorm2d, FastBatchNorm2d):
            results.append(_train_twice(cls, x, g, weight, bias))
    finally:
        torch.set_num_threads(threads)
    tol = 2e-2 if dtype == torch.bfloat16 else 1e-4
    for ref, got in zip(*results, strict=True):
        assert got.dtype == ref.dtype and got.shape == ref.shape
        scale = ref.float().abs().max().clamp_min(1)
        assert (got.float() - ref.float()).abs().max() / scale < tol


def _train_twice(cls, x, g, weight, bias):
    """Output, gradients and state of a fresh ``cls`` after two training steps on ``x`` (upstream ``g``)."""
    channels = x.shape[1]
    bn = cls(channels)
    with torch.no_grad():
        bn.weight.copy_(weight)
        bn.bias.copy_(bias)
    xi = x.clone().requires_grad_(True)
    for _ in range(2):  # twice: running statistics and the batch counter accumulate
        xi.grad = None
        bn.zero_grad()
        y = bn(xi)
        y.backward(g)
    if cls is FastBatchNorm2d:  # the fast path ran, not nn.BatchNorm2d's
        assert type(y.grad_fn).__name__ == "_BatchNormNhwcBackward"
    assert list(bn.state_dict()) == list(nn.BatchNorm2d(channels).state_dict())
    return [y, xi.grad, bn.weight.grad, bn.bias.grad, *bn.state_dict().values()]
