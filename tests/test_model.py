"""The CNN's contract: size, shapes, building blocks, summary."""

import itertools

import pytest
import torch
from torch import nn

from ml.batchnorm import BatchNorm2d as FastBatchNorm2d
from ml.model import MnistCNN, build_model, count_parameters
from ml.spec import ModelSpec
from ml.stages import Stage, StageLayout, staged
from ml.summary import format_summary, summary_rows
from ml.summary_table import LayerRow


@pytest.mark.parametrize(
    ("variant", "limit"),
    [
        ("default", 20000),
        ("small", 8000),
        ("wide", 20000),
        ("strided", 20000),
        ("tiny", 5000),
        ("fast", 40000),
    ],
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
    model = MnistCNN(staged([Stage((4, 6)), Stage((8, 16), separable=True)]))
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


# ---- receptive fields against values derived by hand ---------------------------------------------------
# r_out = r_in + (k - 1) * j_in, j_out = j_in * s, n_out = (n_in + 2p - k) // s + 1; a global pooling sees
# its whole input map (k = n_in); layers without a window (BN, ReLU, dropout) keep r and j.


def rf_table(*modules: nn.Module, size: int = 28) -> list[tuple[str, int, int, int | None]]:
    rows = summary_rows(nn.Sequential(*modules), (1, size, size))
    return [(r.layer.split("-")[0], r.jump, r.rf, r.size) for r in rows]


def test_receptive_fields_of_padded_and_strided_convolutions():
    assert rf_table(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.Conv2d(4, 4, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 4, 3),
    ) == [("Conv2d", 1, 3, 28), ("Conv2d", 2, 5, 14), ("ReLU", 2, 5, 14), ("Conv2d", 2, 9, 12)]


def test_receptive_fields_through_pooling_and_global_average_pooling():
    assert rf_table(
        nn.Conv2d(1, 4, 5, padding=2),
        nn.MaxPool2d(2),
        nn.BatchNorm2d(4),
        nn.Conv2d(4, 10, 3, padding=1),
        nn.AdaptiveAvgPool2d(1),
    ) == [
        ("Conv2d", 1, 5, 28),
        ("MaxPool2d", 2, 6, 14),
        ("BatchNorm2d", 2, 6, 14),
        ("Conv2d", 2, 10, 14),
        ("AdaptiveAvgPool2d", 28, 36, 1),  # 10 + (14 - 1) * 2
    ]


def test_receptive_fields_of_dilated_convolutions_and_overlapping_pools():
    assert rf_table(nn.Conv2d(1, 2, 3, dilation=2), nn.AvgPool2d(3, stride=1), size=20) == [
        ("Conv2d", 1, 5, 16),  # a 3x3 kernel with dilation 2 spans 5 pixels
        ("AvgPool2d", 1, 7, 14),
    ]


def test_receptive_field_of_the_default_model_covers_the_digit():
    rows = summary_rows(build_model())
    last_conv = [r for r in rows if r.layer.startswith("Conv2d")][-2]  # before the 1x1 classifier
    assert (last_conv.jump, last_conv.rf) == (4, 32)  # 3x3 stacks: 3,5 | pool 6 | 10,14 | pool 16 | 24,32


# ---- the course assignment's network (s6) -------------------------------------------------------------

# torchsummary's printout for the assignment's network (ERA S6 Part 2 notebook, cell 8): layer, shape, params.
S6_PUBLISHED = """
Conv2d-1 [-1, 16, 26, 26] 144 | BatchNorm2d-2 [-1, 16, 26, 26] 32 | ReLU-3 [-1, 16, 26, 26] 0
Conv2d-4 [-1, 16, 24, 24] 2,304 | BatchNorm2d-5 [-1, 16, 24, 24] 32 | ReLU-6 [-1, 16, 24, 24] 0
Conv2d-7 [-1, 16, 22, 22] 2,304 | BatchNorm2d-8 [-1, 16, 22, 22] 32 | ReLU-9 [-1, 16, 22, 22] 0
MaxPool2d-10 [-1, 16, 11, 11] 0
Conv2d-11 [-1, 16, 11, 11] 256 | BatchNorm2d-12 [-1, 16, 11, 11] 32 | ReLU-13 [-1, 16, 11, 11] 0
Dropout-14 [-1, 16, 11, 11] 0
Conv2d-15 [-1, 16, 9, 9] 2,304 | BatchNorm2d-16 [-1, 16, 9, 9] 32 | ReLU-17 [-1, 16, 9, 9] 0
Dropout-18 [-1, 16, 9, 9] 0
Conv2d-19 [-1, 16, 7, 7] 2,304 | BatchNorm2d-20 [-1, 16, 7, 7] 32 | ReLU-21 [-1, 16, 7, 7] 0
Dropout-22 [-1, 16, 7, 7] 0
Conv2d-23 [-1, 16, 5, 5] 2,304 | BatchNorm2d-24 [-1, 16, 5, 5] 32 | ReLU-25 [-1, 16, 5, 5] 0
Dropout-26 [-1, 16, 5, 5] 0
Conv2d-27 [-1, 16, 5, 5] 2,304 | BatchNorm2d-28 [-1, 16, 5, 5] 32 | ReLU-29 [-1, 16, 5, 5] 0
Dropout-30 [-1, 16, 5, 5] 0
Conv2d-31 [-1, 16, 5, 5] 2,304 | BatchNorm2d-32 [-1, 16, 5, 5] 32 | ReLU-33 [-1, 16, 5, 5] 0
Dropout-34 [-1, 16, 5, 5] 0
AvgPool2d-35 [-1, 16, 1, 1] 0 | Linear-36 [-1, 10] 160
"""


def published_rows() -> list[tuple[str, str, int]]:
    rows = []
    for entry in S6_PUBLISHED.replace("\n", " | ").split(" | "):
        if entry.strip():
            name, rest = entry.split(" ", 1)
            shape, params = rest.rsplit(" ", 1)
            rows.append((name, shape, int(params.replace(",", ""))))
    return rows


class AssignmentNet(nn.Module):
    """The assignment's own module structure (four nn.Sequential blocks, GAP, a linear layer, log-softmax),
    rewritten compactly from its model.py; the reference the s6 layer list must equal."""

    def __init__(self):
        super().__init__()

        def block(c_in, k, padding, dropout):
            layers = [nn.Conv2d(c_in, 16, k, padding=padding, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
            return layers + ([nn.Dropout(0.05)] if dropout else [])

        self.conv1 = nn.Sequential(
            *block(1, 3, 0, 0), *block(16, 3, 0, 0), *block(16, 3, 0, 0), nn.MaxPool2d(2, 2)
        )
        self.conv2 = nn.Sequential(*block(16, 1, 0, 1), *block(16, 3, 0, 1))
        self.conv3 = nn.Sequential(*block(16, 3, 0, 1), *block(16, 3, 0, 1))
        self.conv4 = nn.Sequential(*block(16, 3, 1, 1), *block(16, 3, 1, 1))
        self.gap = nn.AvgPool2d(kernel_size=5)
        self.fc = nn.Linear(16, 10, bias=False)

    def forward(self, x):
        x = self.conv4(self.conv3(self.conv2(self.conv1(x))))
        return torch.log_softmax(self.fc(self.gap(x).view(-1, 16)), dim=-1)


def test_s6_is_the_assignment_network_with_its_published_layer_table():
    model = build_model("s6")
    assert count_parameters(model) == 16_976
    assert [(r.layer, r.shape, r.params) for r in summary_rows(model)] == published_rows()
    assert [(r.layer, r.shape, r.params) for r in summary_rows(AssignmentNet())] == published_rows()


def test_s6_computes_what_the_assignments_module_computes():
    torch.manual_seed(0)
    reference = AssignmentNet().eval()
    ours = build_model("s6").eval()
    for p in reference.modules():  # non-trivial BN statistics
        if isinstance(p, nn.BatchNorm2d):
            p.running_mean.uniform_(-0.5, 0.5)
            p.running_var.uniform_(0.5, 2)
    ours.load_state_dict(dict(zip(ours.state_dict(), reference.state_dict().values(), strict=True)))
    x = torch.randn(4, 1, 28, 28)
    assert torch.allclose(torch.log_softmax(ours(x), 1), reference(x), atol=1e-6)


def test_s6_receptive_fields_correct_the_assignments_annotations():
    """The assignment annotated RF 14 after its max-pool (it is 8) and RF 22 at the last convolution (28):
    after the pool every 3x3 adds 2 x 2 = 4 pixels, not 2."""
    convs = [r for r in summary_rows(build_model("s6")) if r.layer.split("-")[0] in ("Conv2d", "MaxPool2d")]
    assert [r.rf for r in convs] == [3, 5, 7, 8, 8, 12, 16, 20, 24, 28]
    assert summary_rows(build_model("s6"))[-2].rf == 36  # the 5x5 average pool sees 28 + 4 * 2


# ---- a student's own design -----------------------------------------------------------------------------


def test_custom_stages_read_back_and_build_the_staged_network():
    from ml.stages import custom_spec, format_stages, parse_stages
    from ml.variants import VARIANTS

    text = "8,16 drop=0.05 | 16,24 drop=0.05 | 24,32"
    assert format_stages(parse_stages(text)) == text
    assert custom_spec(text).layers == VARIANTS["default"].layers  # the default is one such design
    assert custom_spec(" 8, 16 | 12,12 sep ").n_params == count_parameters(
        MnistCNN(custom_spec("8,16|12,12 sep"))
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "a custom model needs its stages"),
        ("8,x", "stage 1: channel counts are whole numbers from 1 to 512, got 'x'"),
        ("8,16 | ", "stage 2 is empty"),
        ("8 turbo", "unknown option 'turbo'; options: sep, res, drop=P"),
        ("8 drop=2", "dropout is a probability from 0 to below 1, got '2'"),
        ("|".join(["8"] * 7), "at most 6 stages"),
        ("1,2,3,4,5,6,7", "stage 1 has 7 convolutions; at most 6"),
        ("512,512,512 | 512,512,512", "stage 1: the model has more than 1,000,000 parameters"),
        ("8 | 16 sep | 512,512,512,512", "stage 3: the model has more than 1,000,000 parameters"),
        ("8|8|8|8|8|8", r"stage 5: layer 22 \(maxpool\): a 2x2 window does not fit the 1x1 map"),
    ],
)
def test_a_bad_custom_design_gets_a_message(text, message):
    from ml.spec import ModelSpecError
    from ml.stages import custom_spec

    with pytest.raises(ModelSpecError, match=message):
        custom_spec(text)


# ---- residual connections (the shortcut and add layers) -----------------------------------------------

RESIDUAL_LAYERS = (
    ("conv", 1, 4, 3, 1, 1, 1, False),
    ("bn", 4),
    ("relu",),
    ("shortcut",),
    ("conv", 4, 4, 3, 1, 1, 1, False),
    ("maxpool", 2),
    ("bn", 4),
    ("add", 2),
    ("relu",),
    ("conv", 4, 10, 1, 1, 0, 1, True),
    ("gap",),
)


def test_a_residual_block_adds_its_pooled_input_before_the_relu():
    torch.manual_seed(0)
    model = MnistCNN(ModelSpec(RESIDUAL_LAYERS))
    with torch.no_grad():  # BatchNorm statistics that are not the identity, then eval mode
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5), m.bias.uniform_(-0.5, 0.5)
    model.eval()
    conv1, bn1, _, _, conv2, _, bn2, _, _, head, _ = model.net
    x = torch.randn(3, 1, 28, 28)
    h = torch.relu(bn1(conv1(x)))
    out = torch.relu(bn2(nn.functional.max_pool2d(conv2(h), 2)) + nn.functional.max_pool2d(h, 2))
    expected = head(out).mean(dim=(2, 3))
    assert torch.allclose(model(x), expected, atol=1e-6)


@pytest.mark.slow
def test_a_residual_networks_gradients_match_finite_differences():
    torch.manual_seed(0)
    model = MnistCNN(ModelSpec(RESIDUAL_LAYERS)).double().eval()
    x = torch.randn(2, 1, 28, 28, dtype=torch.double)
    names, weights = zip(*model.named_parameters(), strict=True)

    def logits(*params):
        return torch.func.functional_call(model, dict(zip(names, params, strict=True)), (x,))

    # fast mode: the Jacobians' products with random vectors against finite differences (one column of
    # directional derivatives instead of the whole Jacobian, which made this the slowest model test)
    params = tuple(w.detach().requires_grad_() for w in weights)
    assert torch.autograd.gradcheck(logits, params, fast_mode=True)


def test_tiny_has_residual_connections_around_the_convolutions_that_keep_their_channels():
    spec = build_model("tiny").spec
    kinds = [layer[0] for layer in spec.layers]
    assert kinds.count("shortcut") == kinds.count("add") == 5  # 12-12 twice, 20-20 twice, 32-32
    assert [layer[1] for layer in spec.layers if layer[0] == "add"] == [1, 2, 1, 2, 1]  # pooled twice
    assert staged((Stage((8, 8)),), StageLayout(residual=False)).layers == staged((Stage((8, 8)),)).layers


def test_a_stage_asks_for_residual_connections_on_its_own():
    from ml.spec import ModelSpecError
    from ml.stages import custom_spec, format_stages, parse_stages

    # every stage residual is the whole network residual: tiny written stage by stage
    stages = [
        Stage((12, 12, 12), residual=True),
        Stage((20, 20, 20), residual=True),
        Stage((32, 32), residual=True),
    ]
    assert staged(stages, StageLayout(separable_from=1)).layers == build_model("tiny").spec.layers
    # one stage: only its own convolutions that keep their channels, here 16 -> 16 (the channels of the
    # stage before) and 24 -> 24, not stage 3's 24 -> 24
    text = "8,16 | 16,24,24 sep res | 24,32"
    assert format_stages(parse_stages(text)) == text
    kinds = [layer[0] for layer in custom_spec(text).layers]
    assert kinds.count("shortcut") == kinds.count("add") == 2
    assert custom_spec(text).n_params == custom_spec("8,16 | 16,24,24 sep | 24,32").n_params  # free
    with pytest.raises(ModelSpecError, match=r"stage 3: residual connections need .* 24 -> 32 change it"):
        custom_spec("8,16 | 16,24 | 32 res")


def test_tiny_receptive_fields_by_hand():
    # 3x3 stem: 3; each depthwise 3x3 adds 2 x jump; a 2x2 pool adds 1 x jump and doubles it; 1x1 and
    # the shortcut/add layers add nothing (the sum sees what its longer path sees); GAP over 7x7 adds 6 x 4
    model = build_model("tiny")
    rows = summary_rows(model)  # one row per layer of model.net, in order
    windows = [r.rf for r in rows if r.layer.split("-")[0] in ("MaxPool2d", "AdaptiveAvgPool2d")]
    layers = zip(rows, model.net, strict=True)
    depthwise = [r.rf for r, m in layers if isinstance(m, nn.Conv2d) and m.groups > 1]
    assert depthwise == [5, 7, 12, 16, 20, 30, 38]
    assert windows == [8, 22, 62]
    for before, row in itertools.pairwise(rows):
        if row.layer.split("-")[0] in ("Shortcut", "AddShortcut"):
            assert (row.rf, row.jump, row.params) == (before.rf, before.jump, 0)


def test_an_in_place_layer_right_after_a_shortcut_leaves_the_kept_input_alone():
    layers = (("conv", 1, 10, 3, 1, 1, 1, True), ("shortcut",), ("relu",), ("add", 1), ("gap",))
    model = MnistCNN(ModelSpec(layers)).eval()
    x = torch.randn(2, 1, 28, 28)
    h = model.net[0](x)
    assert torch.allclose(model(x), (torch.relu(h) + h).mean(dim=(2, 3)), atol=1e-6)
