"""The MNIST CNNs: a model is a ``ModelSpec``, a plain list of layers, built into one ``nn.Sequential``.

A spec is plain values (tuples of strings, numbers and booleans), so a checkpoint stores it as it is and
rebuilds the network from it, and a student's design typed into cells is a spec like any other. A spec is
checked before anything is allocated: channel counts that do not chain, maps that shrink to nothing, or
more than ``MAX_PARAMS`` parameters are refused with a message. gradsheet's own variants are *staged*
specs (``staged``); ``s6`` is the course assignment's network, layer for layer.

gradsheet's default: under 20,000 parameters (a "small" variant under 8,000), BatchNorm, Dropout, GAP.

Design, one sentence per choice:

* **3x3 convolutions in three stages (28x28, 14x14, 7x7) separated by 2x2 max-pooling**: stacked 3x3s give
  the largest receptive field per parameter; after the last stage a unit sees 32x32 input pixels (more
  than the 28x28 digit), so every output can use the whole digit's shape.
* **Few channels at full resolution, more after each pooling**: the 28x28 stage dominates compute, the 7x7
  stage dominates parameters, so this spends both where they are cheap.
* **BatchNorm after every convolution (convolutions without bias)**: it keeps activations well scaled so a
  one-cycle schedule can use a high learning rate and converge in ~15 epochs, and its batch noise is a
  mild regulariser; the bias is redundant with BN's shift.
* **Channel dropout (Dropout2d) of 5% after each pooling stage**: with so few parameters the network
  under- rather than over-fits, so only light dropout helps; dropping whole feature maps (not pixels, whose
  neighbours carry the same information) is what regularises a conv layer, and it needs 1/200th of the
  random numbers, which matters on a CPU.
* **A 1x1 convolution to 10 channels then global average pooling, no fully connected head**: a dense
  layer over 7x7x32 features would alone cost ~15k parameters; GAP has none, and makes each class map a
  spatial "evidence" map that is averaged, which generalises well to shifted digits.
* **Max-pooling before the BN and ReLU of a stage's last convolution** (conv -> pool -> BN -> ReLU): the
  same parameters and nearly the same function (pooling commutes with ReLU), but normalisation and
  activation run on a 4x smaller tensor; on a CPU these memory-bound passes over the 16x28x28 activations
  cost more than the convolutions, so an epoch is ~30% faster.
* **Depthwise-separable convolutions in the 7x7 stage of the small and wide variants** (a 3x3 filter
  per channel, then a 1x1 mix across channels, no BN/ReLU between, as in Xception): 9*c_in + c_in*c_out
  parameters instead of 9*c_in*c_out, so within 8,000 parameters the last stage can be 2.5x wider (32 and
  40 channels instead of 16 and 16), which is worth more than full 3x3 filters there; the earlier stages
  keep full convolutions, where few input channels make the saving small.
* **Residual connections in ``tiny``** (``shortcut`` ... ``add`` layers, ``staged(residual=True)``): a
  convolution that keeps its channel count gets its input added back after its BatchNorm, before its ReLU
  (max-pooled where the convolution is pooled), so it learns a correction to its input. They cost no
  parameters and let ``tiny`` be eight convolutions deep with 12 to 32 channels; the same layers without
  them ended 0.11 points lower on seed 1 (99.43% against 99.54%).
* **``ml.batchnorm.BatchNorm2d``** is ``nn.BatchNorm2d`` (same parameters and state dict) with a faster CPU
  backward for channels_last tensors of 8 or 24 channels, where PyTorch's multi-threaded kernel is ~3x
  slower than its single-threaded one; an epoch on this 2-core CPU takes ~30% less time with it.

Variants: "default" (19,650 parameters), "small" (7,850), "wide" (19,666: the default's budget with a
separable 7x7 stage of 64 and 64 channels and a wider 14x14 stage: ~0.04 points more accurate in our
runs, epochs ~25% slower on a CPU, where depthwise convolutions are inefficient) and "strided" (the
default's layers with a stride-2 second convolution instead of the first pooling: ~20% faster again,
~0.04 points less accurate in our runs). The small variant sets its dropout to 0 (the layers stay, as
no-ops): at 7.9k parameters the network underfits, and in our runs 5% dropout cost it 0.1 points of test
accuracy (99.42% against 99.52%, measured with an earlier all-full-convolution layout).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F  # noqa: N812 - the conventional name
from torch import nn

from .batchnorm import BatchNorm2d

INPUT_SIZE = (1, 28, 28)
N_CLASSES = 10
MAX_PARAMS = 1_000_000  # a bigger spec is surely a slip (and would not train in a lesson)
MAX_LAYERS = 200
MAX_CHANNELS = 2048

# Layer kinds and their arguments, in order. A layer is a tuple: ("conv", 1, 8, 3, 1, 1, 1, False).
LAYER_ARGS: dict[str, tuple[str, ...]] = {
    "conv": ("c_in", "c_out", "kernel", "stride", "padding", "groups", "bias"),
    "bn": ("channels",),
    "relu": (),
    "maxpool": ("kernel",),
    "avgpool": ("kernel",),
    "gap": (),
    "dropout": ("p",),
    "dropout2d": ("p",),
    "linear": ("in_features", "out_features", "bias"),
    "shortcut": (),  # keeps its input for the next "add" (a residual connection's start)
    "add": ("pool",),  # adds the kept input, max-pooled by ``pool`` (1: as it is) to the same size
}


class ModelSpecError(ValueError):
    """A model spec that cannot be built (names the layer and what is wrong); ``layer``: the 0-based index
    of the layer at fault, when one is (so a staged design can name the stage that holds it)."""

    def __init__(self, message: str, layer: int | None = None):
        super().__init__(message)
        self.layer = layer


def _int(value: Any, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ModelSpecError(f"{what} must be a whole number from {low} to {high:,}, got {value!r}")
    return value


def _layer(raw: Any, index: int) -> tuple:
    """One layer checked for kind, argument count and argument types."""
    where = f"layer {index + 1}"
    if not isinstance(raw, list | tuple) or not raw or not isinstance(raw[0], str):
        raise ModelSpecError(f"{where} must be a list starting with its kind, got {raw!r}")
    kind, args = raw[0], list(raw[1:])
    if kind not in LAYER_ARGS:
        raise ModelSpecError(f"{where}: unknown kind {kind!r}; kinds: {', '.join(LAYER_ARGS)}")
    names = LAYER_ARGS[kind]
    if len(args) != len(names):
        raise ModelSpecError(
            f"{where} ({kind}) takes {len(names)} values ({', '.join(names)}), got {len(args)}"
        )
    for k, (name, value) in enumerate(zip(names, args, strict=True)):
        what = f"{where} ({kind}) {name}"
        if name == "bias":
            if not isinstance(value, bool):
                raise ModelSpecError(f"{what} must be true or false, got {value!r}")
        elif name == "p":
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
                raise ModelSpecError(f"{what} must be a probability from 0 to below 1, got {value!r}")
            args[k] = float(value)
        elif name in ("kernel", "stride", "pool"):
            _int(value, what, 1, INPUT_SIZE[-1])
        elif name == "padding":
            _int(value, what, 0, INPUT_SIZE[-1])
        else:
            _int(value, what, 1, MAX_CHANNELS * INPUT_SIZE[-1] ** 2 if "features" in name else MAX_CHANNELS)
    return (kind, *args)


class Shape(NamedTuple):
    """What flows between layers: channels (or features) and the side of the square map (0: flat)."""

    channels: int
    size: int


def _after(layer: tuple, shape: Shape, where: str) -> tuple[Shape, int]:
    """The shape after ``layer`` and the layer's parameter count; ModelSpecError when it does not fit."""
    kind, args = layer[0], layer[1:]
    c, n = shape
    if kind == "linear":
        features = c * max(n, 1) ** 2
        if args[0] != features:
            raise ModelSpecError(f"{where} (linear) expects {args[0]} inputs but receives {features}")
        return Shape(args[1], 0), args[0] * args[1] + (args[1] if args[2] else 0)
    if n == 0:
        raise ModelSpecError(f"{where} ({kind}) comes after a linear layer, where there is no image left")
    if kind == "conv":
        c_in, c_out, k, s, p, g, bias = args
        if c_in != c:
            raise ModelSpecError(f"{where} (conv) expects {c_in} input channels but receives {c}")
        if c_in % g or c_out % g:
            raise ModelSpecError(f"{where} (conv): groups {g} must divide {c_in} and {c_out} channels")
        if p > k // 2:
            raise ModelSpecError(f"{where} (conv): padding {p} is more than half the kernel {k}")
        n_out = (n + 2 * p - k) // s + 1
        if n_out < 1:
            raise ModelSpecError(f"{where} (conv): a {k}x{k} kernel does not fit the {n}x{n} map")
        return Shape(c_out, n_out), c_out * (c_in // g) * k * k + (c_out if bias else 0)
    if kind in ("maxpool", "avgpool"):
        if args[0] > n:
            raise ModelSpecError(
                f"{where} ({kind}): a {args[0]}x{args[0]} window does not fit the {n}x{n} map"
            )
        return Shape(c, n // args[0]), 0
    if kind == "gap":
        return Shape(c, 1), 0
    if kind == "bn":
        if args[0] != c:
            raise ModelSpecError(f"{where} (bn) is for {args[0]} channels but receives {c}")
        return shape, 2 * c
    return shape, 0  # relu, dropout, shortcut, add: shape and parameters unchanged


def _kept_after(layer: tuple, shape: Shape, kept: Shape | None, where: str) -> Shape | None:
    """The shape a residual connection keeps after ``layer`` (None: none open); ModelSpecError for a
    shortcut inside another or an add that has no shortcut, or whose shortcut does not match."""
    if layer[0] == "shortcut":
        if kept is not None:
            raise ModelSpecError(f"{where} (shortcut) starts a residual connection inside another one")
        return shape
    if layer[0] != "add":
        return kept
    if kept is None:
        raise ModelSpecError(f"{where} (add) has no shortcut before it to add")
    pool = layer[1]
    if kept.channels != shape.channels or kept.size // pool != shape.size:
        raise ModelSpecError(
            f"{where} (add): the shortcut's {kept.channels} channel(s) of {kept.size}x{kept.size}, "
            f"max-pooled by {pool}, do not match the {shape.channels} channel(s) of {shape.size}x{shape.size}"
        )
    return None


@dataclass(frozen=True)
class ModelSpec:
    """A network as a list of layers (see LAYER_ARGS), checked on creation; ``name`` labels it."""

    layers: tuple[tuple, ...]
    name: str = "custom"

    def __post_init__(self):
        if not isinstance(self.name, str) or len(self.name) > 100:
            raise ModelSpecError(f"a model name must be a short text, got {self.name!r}")
        if not isinstance(self.layers, list | tuple) or not 1 <= len(self.layers) <= MAX_LAYERS:
            raise ModelSpecError(f"a model has 1 to {MAX_LAYERS} layers, got {_count(self.layers)}")
        layers = tuple(_layer(raw, k) for k, raw in enumerate(self.layers))
        object.__setattr__(self, "layers", layers)
        shape, total, kept = Shape(INPUT_SIZE[0], INPUT_SIZE[1]), 0, None
        for k, layer in enumerate(layers):
            try:
                shape, params = _after(layer, shape, f"layer {k + 1}")
                kept = _kept_after(layer, shape, kept, f"layer {k + 1}")
            except ModelSpecError as error:
                raise ModelSpecError(str(error), layer=k) from None
            total += params
            if total > MAX_PARAMS:
                raise ModelSpecError(
                    f"the model has more than {MAX_PARAMS:,} parameters (at layer {k + 1})", layer=k
                )
        if kept is not None:
            raise ModelSpecError("the model has a shortcut that no later add layer uses")
        if shape.channels != N_CLASSES or shape.size > 1:
            raise ModelSpecError(
                f"the model must end in {N_CLASSES} values (one per digit), it ends in "
                f"{shape.channels} channel(s) of {max(shape.size, 1)}x{max(shape.size, 1)}"
            )
        object.__setattr__(self, "n_params", total)

    def to_dict(self) -> dict[str, Any]:
        """Plain values (what a checkpoint stores); ``ModelSpec(**d)`` rebuilds the spec."""
        return asdict(self)

    def build(self) -> MnistCNN:
        return MnistCNN(self)


def _count(layers: Any) -> str:
    try:
        return str(len(layers))
    except TypeError:
        return repr(layers)


def _module(layer: tuple) -> nn.Module:
    kind, args = layer[0], layer[1:]
    if kind == "conv":
        c_in, c_out, k, s, p, g, bias = args
        return nn.Conv2d(c_in, c_out, k, stride=s, padding=p, groups=g, bias=bias)
    if kind == "linear":
        return nn.Linear(args[0], args[1], bias=args[2])
    simple = {
        "bn": lambda: BatchNorm2d(args[0]),
        "relu": lambda: nn.ReLU(inplace=True),
        "maxpool": lambda: nn.MaxPool2d(args[0]),
        "avgpool": lambda: nn.AvgPool2d(args[0]),
        "gap": lambda: nn.AdaptiveAvgPool2d(1),
        "dropout": lambda: nn.Dropout(args[0]),
        "dropout2d": lambda: nn.Dropout2d(args[0]),
        "shortcut": Shortcut,
        "add": lambda: AddShortcut(args[0]),
    }
    return simple[kind]()


class Shortcut(nn.Identity):
    """The start of a residual connection: its input passes on unchanged and is kept (by ``apply_layer``)
    for the AddShortcut that closes the connection."""


class AddShortcut(nn.Module):
    """The end of a residual connection: adds the kept input to the block's output, max-pooled by
    ``pool`` when the block pooled (the block then learns a correction to its input: easier to train)."""

    def __init__(self, pool: int = 1):
        super().__init__()
        self.pool = pool

    def forward(self, x: torch.Tensor, kept: torch.Tensor) -> torch.Tensor:
        return x + (F.max_pool2d(kept, self.pool) if self.pool > 1 else kept)

    def extra_repr(self) -> str:
        return f"pool={self.pool}"


def apply_layer(
    layer: nn.Module, x: torch.Tensor, kept: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One layer of a spec's network on ``x``: (its output, the residual connection's kept input).
    Flattens where a linear layer needs flat features, so the flattening appears in no layer table."""
    if isinstance(layer, nn.Linear) and x.dim() > 2:
        x = x.flatten(1)
    if isinstance(layer, AddShortcut):
        return layer(x, kept), None
    if x is kept and getattr(layer, "inplace", False):
        x = x.clone()  # an in-place ReLU right after a shortcut must not change the kept input
    x = layer(x)
    return x, x if isinstance(layer, Shortcut) else kept


class MnistCNN(nn.Module):
    """The network of a ModelSpec: its layers in one ``nn.Sequential``, run one by one (``apply_layer``)
    so residual connections can add a kept input back."""

    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.spec = spec
        self.net = nn.Sequential(*(_module(layer) for layer in spec.layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, 28, 28) normalised images -> (N, 10) logits."""
        kept = None
        for layer in self.net:
            x, kept = apply_layer(layer, x, kept)
        return x.flatten(1)


# ---- gradsheet's staged design ----------------------------------------------------------------------


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


def staged(
    stages: Sequence[Stage],
    *,
    pool_first: bool = True,
    strided_stem: bool = False,
    stem_stride: int = 1,
    stem_kernel: int = 3,
    separable_from: int | None = None,
    residual: bool = False,
    name: str = "custom",
) -> ModelSpec:
    """Stages of 3x3 convolutions with BN/ReLU, 2x2 max-pooling and Dropout2d between them, then a 1x1
    convolution to 10 channels and global average pooling.

    With ``pool_first`` the last convolution of a stage is max-pooled *before* its BatchNorm and ReLU
    (conv -> pool -> BN -> ReLU): the same parameters, but BN and ReLU run on a 4x smaller tensor. With
    ``strided_stem`` the first stage's last convolution has stride 2 instead of a pooling after it. With
    ``stem_stride=2`` the very first convolution (kernel ``stem_kernel``) has stride 2, so the first stage
    already runs at 14x14 and only the input is ever 28x28: on a CPU, where the passes over the 28x28
    activations cost most, the cheapest layout. ``separable_from=k`` makes every convolution from the
    k-th on (0-based, counted over all stages) depthwise-separable, also within a stage. With ``residual``
    (or a stage's own ``residual``) every convolution that keeps its channel count (and has stride 1) gets
    a residual connection: its input, max-pooled where the convolution pools, is added after its
    BatchNorm, before the ReLU. A stage asking for residual connections that has no such convolution is
    refused.
    A design that does not build is refused with a message naming the stage at fault (ModelSpecError).
    """
    layers: list[tuple] = []
    stage_of: list[int] = []  # the stage of each layer (the head after the stages: none)
    c_in, n_convs = INPUT_SIZE[0], 0
    for i, stage in enumerate(stages):
        last_stage = i == len(stages) - 1
        stage_in, shortcuts = c_in, 0
        for j, c_out in enumerate(stage.channels):
            separable = stage.separable or (separable_from is not None and n_convs >= separable_from)
            n_convs += 1
            last_conv = j == len(stage.channels) - 1
            stem = i == j == 0
            stride = 2 if strided_stem and i == 0 and last_conv else 1  # instead of the first pooling
            conv_stride = stride * (stem_stride if stem else 1)
            conv = _conv3x3(c_in, c_out, conv_stride, separable, stem_kernel if stem else 3)
            pooled = pool_first and last_conv and not last_stage and stride == 1
            block = [*conv, ("maxpool", 2), ("bn", c_out)] if pooled else [*conv, ("bn", c_out)]
            if (residual or stage.residual) and c_in == c_out and conv_stride == 1:
                block = [("shortcut",), *block, ("add", 2 if pooled else 1)]
                shortcuts += 1
            layers += [*block, ("relu",)]
            c_in = c_out
        if stage.residual and not shortcuts:
            path = " -> ".join(map(str, (stage_in, *stage.channels)))
            raise ModelSpecError(
                f"stage {i + 1}: residual connections need a convolution that keeps its channel count "
                f"(e.g. 16,16, stride 1); its convolutions {path} change it each time"
            )
        if not last_stage:
            if not pool_first and not (strided_stem and i == 0):
                layers.append(("maxpool", 2))
            layers.append(("dropout2d", stage.dropout))  # kept at p=0 too: layer indices stay put
        stage_of += [i] * (len(layers) - len(stage_of))
    layers += [("conv", c_in, N_CLASSES, 1, 1, 0, 1, True), ("gap",)]
    try:
        return ModelSpec(tuple(layers), name)
    except ModelSpecError as error:
        if error.layer is None or error.layer >= len(stage_of):
            raise
        raise ModelSpecError(f"stage {stage_of[error.layer] + 1}: {error}", layer=error.layer) from None


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


def _s6() -> ModelSpec:
    """The course assignment's network (ERA S6), layer for layer: 16,976 parameters.

    Three unpadded 3x3 convolutions and a max-pool, a 1x1 convolution, four more 3x3 convolutions (the last
    two padded), each with BN, ReLU and 5% (element) dropout after the pooling, then a 5x5 average pool
    and a bias-free linear layer to the 10 digits (the original ends with log_softmax, which the loss
    applies here).
    """

    def block(c_in: int, k: int, padding: int, dropout: bool) -> list[tuple]:
        layers = [("conv", c_in, 16, k, 1, padding, 1, False), ("bn", 16), ("relu",)]
        return layers + ([("dropout", 0.05)] if dropout else [])

    layers = [*block(1, 3, 0, False), *block(16, 3, 0, False), *block(16, 3, 0, False), ("maxpool", 2)]
    layers += block(16, 1, 0, True) + block(16, 3, 0, True)
    layers += block(16, 3, 0, True) + block(16, 3, 0, True)
    layers += block(16, 3, 1, True) + block(16, 3, 1, True)
    layers += [("avgpool", 5), ("linear", 16, N_CLASSES, False)]
    return ModelSpec(tuple(layers), "s6")


# gradsheet's default design (also the Train sheet's custom model until a student changes it)
DEFAULT_STAGES = (Stage((8, 16), dropout=0.05), Stage((16, 24), dropout=0.05), Stage((24, 32)))
VARIANTS: dict[str, ModelSpec] = {
    "default": staged(DEFAULT_STAGES, name="default"),
    "small": staged((Stage((8, 12)), Stage((16, 16)), Stage((32, 40), separable=True)), name="small"),
    "wide": staged(
        (Stage((8, 16), dropout=0.05), Stage((24, 32), dropout=0.05), Stage((64, 64), separable=True)),
        name="wide",
    ),
    "strided": staged(DEFAULT_STAGES, strided_stem=True, name="strided"),
    # under 5,000 parameters: a full 3x3 stem of 12 channels, every later convolution depthwise-separable,
    # residual connections around those that keep their channel count
    "tiny": staged(
        (Stage((12, 12, 12)), Stage((20, 20, 20)), Stage((32, 32))),
        separable_from=1,
        residual=True,
        name="tiny",
    ),
    # the fast preset's model: a stride-2 5x5 stem, stages at 14x14, 7x7 and 3x3 (34,602 parameters)
    "fast": staged(
        (Stage((16, 24)), Stage((32, 32)), Stage((48,))), stem_stride=2, stem_kernel=5, name="fast"
    ),
    "s6": _s6(),
}


CUSTOM = "custom"  # the model name whose stages come from the settings (a student's design)


def build_model(variant: str = "default") -> MnistCNN:
    """The CNN of a named variant (see VARIANTS)."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown model variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    return VARIANTS[variant].build()


def spec_from_dict(data: Mapping[str, Any]) -> ModelSpec:
    """The spec a checkpoint stores; checkpoints of gradsheet before layer lists stored stage settings."""
    if not isinstance(data, Mapping):
        raise ModelSpecError(f"a model spec must be a record, got {type(data).__name__}")
    if "layers" in data:
        unknown = set(data) - {"layers", "name"}
        if unknown:
            raise ModelSpecError(f"unknown model spec fields: {', '.join(sorted(map(str, unknown)))}")
        return ModelSpec(**data)
    return _legacy_spec(data)


def _legacy_spec(data: Mapping[str, Any]) -> ModelSpec:
    """A spec from the stage settings older checkpoints store (variant, stages, dropout, pool_first,
    strided_stem, separable_from: convolutions from that index on are separable)."""
    try:
        dropout = float(data["dropout"])
        stages = [Stage(tuple(int(c) for c in stage), dropout=dropout) for stage in data["stages"]]
        separable_from = data.get("separable_from")
        return staged(
            stages,
            pool_first=bool(data.get("pool_first", False)),
            strided_stem=bool(data.get("strided_stem", False)),
            separable_from=None if separable_from is None else int(separable_from),
            name=str(data.get("variant", "custom")),
        )
    except ModelSpecError:
        raise
    except (KeyError, TypeError, ValueError) as error:
        raise ModelSpecError(f"the model spec is malformed ({type(error).__name__}: {error})") from None


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# ---- summary: torchsummary's table, with each layer's receptive field ---------------------------------


class LayerRow(NamedTuple):
    """One row of a model summary: torchsummary's name, output shape and parameters, plus the side of
    the square output map, its jump (the input pixels between neighbouring outputs: the product of the
    strides so far) and its receptive field (the side of the input square that one output sees)."""

    layer: str
    shape: str
    params: int
    size: int | None
    jump: int
    rf: int


def _window(module: nn.Module, n_in: int | None) -> tuple[int, int] | None:
    """(effective kernel, stride) of a module that looks at a spatial window; None for the others."""

    def first(v):
        return v[0] if isinstance(v, tuple) else v

    if isinstance(module, nn.Conv2d | nn.MaxPool2d | nn.AvgPool2d):
        k, d = first(module.kernel_size), first(getattr(module, "dilation", 1))
        return (k - 1) * d + 1, first(module.stride or module.kernel_size)
    if isinstance(module, nn.AdaptiveAvgPool2d | nn.AdaptiveMaxPool2d | nn.Linear) and n_in:
        return n_in, n_in  # one output sees the whole input map
    return None


def summary_rows(model: nn.Module, input_size: tuple[int, ...] = INPUT_SIZE) -> list[LayerRow]:
    """The rows torchsummary prints for ``model`` (every module but the model and Sequential/ModuleList
    containers, numbered in the order they run), with each layer's output size, jump and receptive field,
    computed from the modules' kernels and strides during one dummy forward pass."""
    rows: list[LayerRow] = []
    state = {"n": input_size[-1], "jump": 1, "rf": 1}

    def hook(module: nn.Module, inputs, output) -> None:
        x = inputs[0] if inputs else None
        n_in = x.shape[-1] if x is not None and x.dim() == 4 else None
        window = _window(module, n_in if not isinstance(module, nn.Linear) else state["n"])
        if window is not None:
            k, s = window
            state["rf"] += (k - 1) * state["jump"]
            state["jump"] *= s
        state["n"] = output.shape[-1] if output.dim() == 4 else None
        params = sum(p.numel() for p in module.parameters(recurse=False) if p.requires_grad)
        shape = "[-1, " + ", ".join(str(s) for s in output.shape[1:]) + "]"
        name = f"{type(module).__name__}-{len(rows) + 1}"
        rows.append(LayerRow(name, shape, params, state["n"], state["jump"], state["rf"]))

    hooks = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if m is not model and not isinstance(m, nn.Sequential | nn.ModuleList)
    ]
    was_training = model.training
    try:
        model.eval()
        param = next(model.parameters())
        with torch.no_grad():
            model(torch.zeros(1, *input_size, device=param.device, dtype=param.dtype))
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return rows


SUMMARY_COLUMNS = ("Layer (type)", "Output Shape", "Param #", "Jump", "RF")


def format_summary(model: nn.Module, input_size: tuple[int, ...] = INPUT_SIZE) -> str:
    """torchsummary's table with two more columns (jump, receptive field) and the total."""
    return format_rows(summary_rows(model, input_size), count_parameters(model))


def format_rows(rows: Sequence[Sequence], n_params: int) -> str:
    """A printable table of summary rows (LayerRow, or the lists an event or JSON file carries)."""
    rows = [LayerRow(*row) for row in rows]
    name_w = max(len(SUMMARY_COLUMNS[0]), *(len(r.layer) for r in rows)) + 2
    shape_w = max(len(SUMMARY_COLUMNS[1]), *(len(r.shape) for r in rows)) + 2
    line = "-" * (name_w + shape_w + 12 + 6 + 6)
    head = f"{SUMMARY_COLUMNS[0]:>{name_w}}{SUMMARY_COLUMNS[1]:>{shape_w}}{SUMMARY_COLUMNS[2]:>12}"
    out = [line, head + f"{SUMMARY_COLUMNS[3]:>6}{SUMMARY_COLUMNS[4]:>6}", "=" * len(line)]
    for r in rows:
        out.append(f"{r.layer:>{name_w}}{r.shape:>{shape_w}}{r.params:>12,}{r.jump:>6}{r.rf:>6}")
    out += ["=" * len(line), f"Total params: {n_params:,}", f"Trainable params: {n_params:,}"]
    out += ["Non-trainable params: 0", line]
    return "\n".join(out)


def layer_table(spec: ModelSpec) -> list[LayerRow]:
    """The summary rows of a spec's network (built on the CPU, never trained)."""
    return summary_rows(spec.build())
