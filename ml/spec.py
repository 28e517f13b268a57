"""A network as plain values: a ``ModelSpec`` is a list of layers, checked before anything is built.

A spec is plain values (tuples of strings, numbers and booleans), so a checkpoint stores it as it is and
rebuilds the network from it, and a student's design typed into cells is a spec like any other. A spec is
checked on creation: channel counts that do not chain, maps that shrink to nothing, or more than
``MAX_PARAMS`` parameters are refused with a message naming the layer. Nothing here imports torch (the
settings, the command lines and the sheets check a design without loading it); ``ml.model.MnistCNN(spec)``
builds the network.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

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


def _count(layers: Any) -> str:
    try:
        return str(len(layers))
    except TypeError:
        return repr(layers)
