"""gradsheet's staged networks and their text: ``staged`` lays stages of convolutions out as a ``ModelSpec``,
``parse_stages`` / ``format_stages`` read and write the stages language a student types.

A stage is convolutions at one resolution (``Stage``); ``staged`` puts BatchNorm and ReLU after each, 2x2
max-pooling and channel dropout between stages, then a 1x1 convolution to the 10 digits and global average
pooling. How the stages are laid out (pooling before BN, a strided stem, separable convolutions from some
point on, residual connections) is a ``StageLayout``. The text of a design is stages separated by ``|``,
each its channel counts and options: ``"8,16 drop=0.05 | 16,24,24 res | 24,32 sep"``. Nothing here imports
torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .spec import INPUT_SIZE, N_CLASSES, ModelSpec, ModelSpecError


@dataclass(frozen=True)
class Stage:
    """Convolutions at one resolution: their output channels, whether they are depthwise-separable, the
    dropout after the stage's pooling (unused for the last stage), and whether its convolutions that keep
    their channel count get residual connections."""

    channels: tuple[int, ...]
    separable: bool = False
    dropout: float = 0.0
    residual: bool = False


def _conv3x3(c_in: int, c_out: int, stride: int, separable: bool, kernel: int = 3) -> list[tuple]:
    """A bias-free 3x3 (or ``kernel``) convolution, or its depthwise-separable form (a 3x3 filter per
    channel, then 1x1 across channels).

    The separable form has no BN/ReLU between its two halves (as in Xception): 9*c_in + c_in*c_out
    parameters instead of 9*c_in*c_out, about 8x fewer for the wide late layers.
    """
    pad = (kernel - 1) // 2
    if not separable:
        return [("conv", c_in, c_out, kernel, stride, pad, 1, False)]
    depthwise = ("conv", c_in, c_in, kernel, stride, pad, c_in, False)
    return [depthwise, ("conv", c_in, c_out, 1, 1, 0, 1, False)]


@dataclass(frozen=True)
class StageLayout:
    """How ``staged`` lays stages out; the defaults are gradsheet's default model.

    With ``pool_first`` the last convolution of a stage is max-pooled *before* its BatchNorm and ReLU
    (conv -> pool -> BN -> ReLU): the same parameters, but BN and ReLU run on a 4x smaller tensor. With
    ``strided_stem`` the first stage's last convolution has stride 2 instead of a pooling after it. With
    ``stem_stride=2`` the very first convolution (kernel ``stem_kernel``) has stride 2, so the first stage
    already runs at 14x14 and only the input is ever 28x28: on a CPU, where the passes over the 28x28
    activations cost most, the cheapest layout. ``separable_from=k`` makes every convolution from the
    k-th on (0-based, counted over all stages) depthwise-separable, also within a stage. With ``residual``
    (or a stage's own ``residual``) every convolution that keeps its channel count (and has stride 1) gets
    a residual connection: its input, max-pooled where the convolution pools, is added after its
    BatchNorm, before the ReLU.
    """

    pool_first: bool = True
    strided_stem: bool = False
    stem_stride: int = 1
    stem_kernel: int = 3
    separable_from: int | None = None
    residual: bool = False


DEFAULT_LAYOUT = StageLayout()


def staged(stages: Sequence[Stage], layout: StageLayout = DEFAULT_LAYOUT, name: str = "custom") -> ModelSpec:
    """Stages of 3x3 convolutions with BN/ReLU, 2x2 max-pooling and Dropout2d between them, then a 1x1
    convolution to 10 channels and global average pooling, laid out as ``layout`` says.

    A stage asking for residual connections that has no convolution keeping its channel count is refused;
    so is any design that does not build, with a message naming the stage at fault (ModelSpecError).
    """
    layers: list[tuple] = []
    stage_of: list[int] = []  # the stage of each layer (the head after the stages: none)
    c_in, n_convs = INPUT_SIZE[0], 0
    for i, stage in enumerate(stages):
        stage_layers, c_in = _stage_layers(stage, i, i == len(stages) - 1, c_in, n_convs, layout)
        layers += stage_layers
        n_convs += len(stage.channels)
        stage_of += [i] * (len(layers) - len(stage_of))
    layers += [("conv", c_in, N_CLASSES, 1, 1, 0, 1, True), ("gap",)]
    try:
        return ModelSpec(tuple(layers), name)
    except ModelSpecError as error:
        if error.layer is None or error.layer >= len(stage_of):
            raise
        raise ModelSpecError(f"stage {stage_of[error.layer] + 1}: {error}", layer=error.layer) from None


def _stage_layers(
    stage: Stage, i: int, last_stage: bool, c_in: int, n_convs: int, layout: StageLayout
) -> tuple[list[tuple], int]:
    """The layers of stage ``i`` (0-based) on ``c_in`` channels, ``n_convs`` convolutions before it, and
    the channels they end with: each convolution's block, then (but after the last stage) the pooling and
    the dropout."""
    layers: list[tuple] = []
    stage_in, shortcuts = c_in, 0
    for j in range(len(stage.channels)):
        block, residual = _conv_block(stage, i, j, c_in, last_stage, n_convs + j, layout)
        layers += block
        shortcuts += residual
        c_in = stage.channels[j]
    if stage.residual and not shortcuts:
        path = " -> ".join(map(str, (stage_in, *stage.channels)))
        raise ModelSpecError(
            f"stage {i + 1}: residual connections need a convolution that keeps its channel count "
            f"(e.g. 16,16, stride 1); its convolutions {path} change it each time"
        )
    if not last_stage:
        if not layout.pool_first and not (layout.strided_stem and i == 0):
            layers.append(("maxpool", 2))
        layers.append(("dropout2d", stage.dropout))  # kept at p=0 too: layer indices stay put
    return layers, c_in


def _conv_block(
    stage: Stage, i: int, j: int, c_in: int, last_stage: bool, index: int, layout: StageLayout
) -> tuple[list[tuple], bool]:
    """Convolution ``j`` of stage ``i`` (the ``index``-th of the network, 0-based) on ``c_in`` channels,
    with its BN and ReLU (and, pooled first, its max-pooling), wrapped in a residual connection where one
    is asked for and fits: (its layers, whether it has the residual connection)."""
    c_out = stage.channels[j]
    last_conv = j == len(stage.channels) - 1
    stem = i == j == 0
    separable = stage.separable or (layout.separable_from is not None and index >= layout.separable_from)
    stride = 2 if layout.strided_stem and i == 0 and last_conv else 1  # instead of the first pooling
    conv_stride = stride * (layout.stem_stride if stem else 1)
    conv = _conv3x3(c_in, c_out, conv_stride, separable, layout.stem_kernel if stem else 3)
    pooled = layout.pool_first and last_conv and not last_stage and stride == 1
    block = [*conv, ("maxpool", 2), ("bn", c_out)] if pooled else [*conv, ("bn", c_out)]
    residual = (layout.residual or stage.residual) and c_in == c_out and conv_stride == 1
    if residual:
        block = [("shortcut",), *block, ("add", 2 if pooled else 1)]
    return [*block, ("relu",)], residual


MAX_STAGES, MAX_CONVS_PER_STAGE, MAX_STAGE_CHANNELS = 6, 6, 512
STAGE_FLAGS = {"separable": "sep", "residual": "res"}  # Stage's yes/no fields -> their word in a stages text


def parse_stages(text: str) -> list[Stage]:
    """Stages from their text: stages separated by ``|``, each its channel counts (``8,16``), optionally
    ``sep`` (depthwise-separable), ``res`` (residual connections) and ``drop=0.05`` (dropout after the
    stage's pooling), e.g. ``"8,16 drop=0.05 | 16,24,24 res | 24,32 sep"``. ValueError names the stage and
    what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise ModelSpecError("a custom model needs its stages, e.g. '8,16 | 16,24 | 24,32 sep'")
    parts = [part.strip() for part in text.split("|")]
    if len(parts) > MAX_STAGES:
        raise ModelSpecError(f"a custom model has at most {MAX_STAGES} stages, got {len(parts)}")
    return [_parse_stage(part, k + 1) for k, part in enumerate(parts)]


def _parse_stage(text: str, number: int) -> Stage:
    where = f"stage {number}"
    words = text.replace(", ", ",").split()
    if not words:
        raise ModelSpecError(f"{where} is empty: give its channel counts, e.g. 8,16")
    channels = []
    for word in words[0].split(","):
        if not word.isdigit() or not 1 <= int(word) <= MAX_STAGE_CHANNELS:
            raise ModelSpecError(
                f"{where}: channel counts are whole numbers from 1 to {MAX_STAGE_CHANNELS}, got {word!r}"
            )
        channels.append(int(word))
    if len(channels) > MAX_CONVS_PER_STAGE:
        raise ModelSpecError(f"{where} has {len(channels)} convolutions; at most {MAX_CONVS_PER_STAGE}")
    flags, dropout = {}, 0.0
    field_of = {word: field for field, word in STAGE_FLAGS.items()}
    for word in words[1:]:
        if word in field_of:
            flags[field_of[word]] = True
        elif word.startswith("drop="):
            try:
                dropout = float(word[5:])
            except ValueError:
                dropout = -1.0
            if not 0 <= dropout < 1:
                raise ModelSpecError(f"{where}: dropout is a probability from 0 to below 1, got {word[5:]!r}")
        else:
            options = ", ".join([*STAGE_FLAGS.values(), "drop=P"])
            raise ModelSpecError(f"{where}: unknown option {word!r}; options: {options}")
    return Stage(tuple(channels), dropout=dropout, **flags)


def format_stages(stages: Sequence[Stage]) -> str:
    """The text ``parse_stages`` reads back."""
    parts = []
    for stage in stages:
        words = [",".join(str(c) for c in stage.channels)]
        words += [word for field, word in STAGE_FLAGS.items() if getattr(stage, field)]
        words += [f"drop={stage.dropout:g}"] if stage.dropout else []
        parts.append(" ".join(words))
    return " | ".join(parts)


def custom_spec(text: str) -> ModelSpec:
    """A student's design: gradsheet's staged network with the given stages (ModelSpecError if unusable)."""
    return staged(parse_stages(text), name="custom")
