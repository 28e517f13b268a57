"""Backpropagation of a 2-2-2 network, one named step per spreadsheet column.

The network has two inputs, two sigmoid hidden units and two outputs, eight weights and no trained biases:

    h1 = w1*i1 + w2*i2 + b1        a_h1 = sigmoid(h1)
    h2 = w3*i1 + w4*i2 + b1        a_h2 = sigmoid(h2)
    o1 = w5*a_h1 + w6*a_h2 + b2    a_o1, a_o2 = sigmoid(o1), sigmoid(o2)   (or softmax(o1, o2))
    o2 = w7*a_h1 + w8*a_h2 + b2    E1, E2 = 1/2 (t - a_o)^2               (or -t ln a_o)

Every quantity a student computes by hand is a named field, the backward pass sits beside the forward pass
it differentiates (as in micrograd), and a training run is a table with one row per epoch.
"""

from __future__ import annotations

import csv
import math
import sys
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .cli import Parser
from .values import as_number

WEIGHT_NAMES = tuple(f"w{k}" for k in range(1, 9))
GRADIENT_NAMES = tuple(f"dE_dw{k}" for k in range(1, 9))
FORWARD_NAMES = ("h1", "h2", "a_h1", "a_h2", "o1", "o2", "a_o1", "a_o2", "E1", "E2", "E_total")
# One row of the per-epoch table: the weights of that epoch, the forward pass with them, their gradients.
COLUMNS = ("epoch", *WEIGHT_NAMES, *FORWARD_NAMES, *GRADIENT_NAMES)
OUTPUTS = ("sigmoid", "softmax")
MAX_EPOCHS = 100_000  # more is surely a typo in a cell, and would take seconds per call


@dataclass(frozen=True)
class Network:
    """The network's fixed data: inputs, targets, initial weights, output activation and fixed biases.

    The defaults are the course's network; ``Network.worked_example()`` is the well-known worked example
    with biases 0.35 and 0.6.
    """

    inputs: tuple[float, float] = (0.05, 0.1)
    targets: tuple[float, float] = (0.5, 0.5)
    weights: tuple[float, ...] = (0.15, 0.2, 0.25, 0.3, 0.4, 0.45, 0.5, 0.55)
    output: str = "sigmoid"
    biases: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self):
        object.__setattr__(self, "inputs", _floats(self.inputs, 2, "inputs"))
        object.__setattr__(self, "targets", _floats(self.targets, 2, "targets"))
        object.__setattr__(self, "weights", _floats(self.weights, 8, "weights"))
        object.__setattr__(self, "biases", _floats(self.biases, 2, "biases"))
        output = str(self.output).strip().lower()
        if output not in OUTPUTS:
            raise ValueError(f"output activation must be 'sigmoid' or 'softmax', got {self.output!r}")
        object.__setattr__(self, "output", output)

    @classmethod
    def worked_example(cls) -> Network:
        """The widely reproduced worked example: targets 0.01/0.99, biases 0.35/0.6 (E_total 0.298371109)."""
        return cls(targets=(0.01, 0.99), biases=(0.35, 0.6))


def _floats(values, count: int, name: str) -> tuple[float, ...]:
    """Validate a group of numbers: exactly ``count`` finite floats."""
    try:
        numbers = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be {count} numbers, got {values!r}") from None
    if len(numbers) != count:
        raise ValueError(f"{name} must be {count} numbers, got {len(numbers)}")
    if not all(math.isfinite(v) for v in numbers):
        raise ValueError(f"{name} must be finite numbers, got {numbers}")
    return numbers


def sigmoid(x: float) -> float:
    """1 / (1 + e^-x), computed without overflow for any x (e^x for negative x never exceeds 1)."""
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    z = math.exp(x)
    return z / (1.0 + z)


def _exp_at_most_1(x: float) -> float:
    """e^x for x <= 0; NaN stays NaN (an overflowed network) instead of raising."""
    return math.exp(x) if not math.isnan(x) else math.nan


@dataclass(frozen=True)
class Forward:
    """Every intermediate of one forward pass."""

    h1: float
    h2: float
    a_h1: float
    a_h2: float
    o1: float
    o2: float
    a_o1: float
    a_o2: float
    E1: float
    E2: float
    E_total: float


def forward(network: Network, w: tuple[float, ...]) -> Forward:
    """The forward pass with weights ``w``: hidden pre-activations, activations, outputs, errors."""
    (i1, i2), (t1, t2), (b1, b2) = network.inputs, network.targets, network.biases
    h1 = w[0] * i1 + w[1] * i2 + b1
    h2 = w[2] * i1 + w[3] * i2 + b1
    a_h1, a_h2 = sigmoid(h1), sigmoid(h2)
    o1 = w[4] * a_h1 + w[5] * a_h2 + b2
    o2 = w[6] * a_h1 + w[7] * a_h2 + b2
    if network.output == "sigmoid":
        a_o1, a_o2 = sigmoid(o1), sigmoid(o2)
        E1, E2 = 0.5 * (t1 - a_o1) * (t1 - a_o1), 0.5 * (t2 - a_o2) * (t2 - a_o2)  # ** raises on overflow
    else:
        shift = max(o1, o2)  # softmax is shift-invariant; shifting keeps exp() from overflowing
        e1, e2 = _exp_at_most_1(o1 - shift), _exp_at_most_1(o2 - shift)
        a_o1, a_o2 = e1 / (e1 + e2), e2 / (e1 + e2)
        log_z = shift + math.log(e1 + e2)
        E1, E2 = -t1 * (o1 - log_z), -t2 * (o2 - log_z)
    return Forward(h1, h2, a_h1, a_h2, o1, o2, a_o1, a_o2, E1, E2, E1 + E2)


def deltas(network: Network, w: tuple[float, ...], f: Forward) -> tuple[float, float, float, float]:
    """The error signals dE/do1, dE/do2, dE/dh1, dE/dh2 at each unit's pre-activation (δo1, δo2, δh1, δh2)."""
    t1, t2 = network.targets
    if network.output == "sigmoid":
        # dE_k/da_ok = -(t_k - a_ok);  da_ok/do_k = a_ok (1 - a_ok)
        d_o1 = (f.a_o1 - t1) * f.a_o1 * (1.0 - f.a_o1)
        d_o2 = (f.a_o2 - t2) * f.a_o2 * (1.0 - f.a_o2)
    else:
        # cross-entropy through softmax: dE/do_k = a_ok * (t1 + t2) - t_k
        d_o1 = f.a_o1 * (t1 + t2) - t1
        d_o2 = f.a_o2 * (t1 + t2) - t2
    # Hidden units: each feeds both outputs (through w5..w8), then its sigmoid.
    d_h1 = (d_o1 * w[4] + d_o2 * w[6]) * f.a_h1 * (1.0 - f.a_h1)
    d_h2 = (d_o1 * w[5] + d_o2 * w[7]) * f.a_h2 * (1.0 - f.a_h2)
    return d_o1, d_o2, d_h1, d_h2


def backward(network: Network, w: tuple[float, ...], f: Forward) -> tuple[float, ...]:
    """dE_total/dw1..dw8 by the chain rule, from the forward pass ``f`` with weights ``w``."""
    i1, i2 = network.inputs
    d_o1, d_o2, d_h1, d_h2 = deltas(network, w, f)
    # Output weights: o1 = w5 a_h1 + w6 a_h2, o2 = w7 a_h1 + w8 a_h2.
    g5, g6 = d_o1 * f.a_h1, d_o1 * f.a_h2
    g7, g8 = d_o2 * f.a_h1, d_o2 * f.a_h2
    # Hidden weights: h1 = w1 i1 + w2 i2, h2 = w3 i1 + w4 i2.
    g1, g2 = d_h1 * i1, d_h1 * i2
    g3, g4 = d_h2 * i1, d_h2 * i2
    return (g1, g2, g3, g4, g5, g6, g7, g8)


def step(w: tuple[float, ...], grads: tuple[float, ...], lr: float) -> tuple[float, ...]:
    """One gradient-descent update of all eight weights at once: w := w - lr * dE/dw."""
    return tuple(wk - lr * gk for wk, gk in zip(w, grads, strict=True))


def validate_rate(lr) -> float:
    """A learning rate: a positive finite number."""
    value = as_number(lr, "learning rate must be a number")
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"learning rate must be a positive finite number, got {lr!r}")
    return value


def validate_epochs(epochs, name: str = "epochs") -> int:
    """A whole number of epochs between 0 and MAX_EPOCHS."""
    value = as_number(epochs, f"{name} must be a whole number")
    if not math.isfinite(value) or value != int(value):
        raise ValueError(f"{name} must be a whole number, got {epochs!r}")
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {int(value)}")
    if value > MAX_EPOCHS:
        raise ValueError(f"{name} must be at most {MAX_EPOCHS:,}, got {int(value):,}")
    return int(value)


def trajectory(lr: float, epochs: int, network: Network | None = None) -> np.ndarray:
    """The per-epoch table of a training run, shape (epochs + 1, len(COLUMNS)), float64.

    Row k holds the weights after k updates (row 0: the initial weights), the forward pass with them and
    their gradients, so ``table[k, COLUMNS.index("E_total")]`` is the loss after k updates. Numbers too
    large for floating point (absurd rates, weights or inputs) become inf or NaN, never an exception.
    """
    lr, epochs = validate_rate(lr), validate_epochs(epochs)
    return _cache.get(lr, epochs, network or Network())[: epochs + 1].copy()


def compute_trajectory(lr: float, epochs: int, network: Network) -> np.ndarray:
    """The table, computed afresh (``trajectory`` answers from a cache); read-only."""
    table = np.empty((epochs + 1, len(COLUMNS)))
    w = network.weights
    for epoch in range(epochs + 1):
        f = forward(network, w)
        grads = backward(network, w, f)
        table[epoch] = (epoch, *w, *(getattr(f, name) for name in FORWARD_NAMES), *grads)
        w = step(w, grads, lr)
    table.flags.writeable = False
    return table


class TrajectoryCache:
    """Computed trajectories by (rate, network), the longest one of each, bounded in bytes.

    Cells ask for epoch 1, 2, ..., 100 of the same rate: all of them share one trajectory instead of one
    each. Trajectories grow in chunks (at least 100 epochs, doubling), so a column of cells costs one
    computation, not one per row. The least recently used ones go when the tables pass ``max_bytes``.
    """

    def __init__(self, max_bytes: int = 64 * 2**20):
        self.max_bytes = max_bytes
        self.tables: OrderedDict[tuple[float, Network], np.ndarray] = OrderedDict()
        self.computed = 0  # trajectories computed so far (for tests and benchmarks)

    @property
    def bytes(self) -> int:
        return sum(t.nbytes for t in self.tables.values())

    def get(self, lr: float, epochs: int, network: Network) -> np.ndarray:
        """A read-only table with at least ``epochs`` epochs."""
        key = (lr, network)
        known = self.tables.get(key)
        if known is not None and known.shape[0] > epochs:
            self.tables.move_to_end(key)
            return known
        length = max(epochs, 2 * (known.shape[0] - 1) if known is not None else 0, 100)
        table = compute_trajectory(lr, min(length, MAX_EPOCHS), network)
        self.computed += 1
        self.tables[key] = table
        self.tables.move_to_end(key)
        while self.bytes > self.max_bytes and len(self.tables) > 1:
            self.tables.popitem(last=False)
        return table

    def clear(self) -> None:
        self.tables.clear()
        self.computed = 0


_cache = TrajectoryCache()


def cache_info() -> dict[str, int]:
    """How many trajectories were computed, are kept, and their size in bytes."""
    return {"computed": _cache.computed, "kept": len(_cache.tables), "bytes": _cache.bytes}


def clear_cache() -> None:
    """Forget every computed trajectory (benchmarks measure cold starts with this)."""
    _cache.clear()


def longest_cached_trajectory(lr: float, epochs: int, network: Network | None = None) -> np.ndarray:
    """A read-only trajectory with at least ``epochs`` epochs, from the cache."""
    return _cache.get(validate_rate(lr), validate_epochs(epochs), network or Network())


def overflow_message(table: np.ndarray, lr: float) -> str | None:
    """Why a table's loss stops being a number, naming the first epoch; None when it is finite."""
    bad = np.flatnonzero(~np.isfinite(table).all(axis=1))
    if not len(bad):
        return None
    return (
        f"the numbers overflow from epoch {int(bad[0])} on (learning rate {lr:g}): they grow too large "
        "for floating point; use a smaller learning rate, weights or inputs"
    )


def loss_at(lr: float, epoch: int, network: Network | None = None) -> float:
    """E_total after ``epoch`` updates at learning rate ``lr`` (ValueError when it overflowed)."""
    epoch = validate_epochs(epoch, "epoch")
    table = longest_cached_trajectory(lr, epoch, network)
    value = float(table[epoch, COLUMNS.index("E_total")])
    if not math.isfinite(value):
        raise ValueError(overflow_message(table[: epoch + 1], validate_rate(lr)))
    return value


def loss_curve(lr: float, epochs: int, network: Network | None = None) -> np.ndarray:
    """E_total for epochs 0..epochs."""
    table = longest_cached_trajectory(lr, epochs, network)
    return table[: int(epochs) + 1, COLUMNS.index("E_total")].copy()


def trajectory_rows(lr: float, epochs: int, network: Network | None = None) -> list[dict[str, float]]:
    """The per-epoch table as rows of named columns (``lr`` first, then COLUMNS; epoch as an int)."""
    lr = validate_rate(lr)
    rows = []
    for values in trajectory(lr, epochs, network):
        row = {"lr": lr, **dict(zip(COLUMNS, (float(v) for v in values), strict=True))}
        row["epoch"] = int(row["epoch"])
        rows.append(row)
    return rows


# ---- command line -----------------------------------------------------------------------------------


def plot_loss_curves(curves: dict[float, np.ndarray], path: str, network: Network) -> None:
    """One chart with the loss curve of every learning rate, written as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.8), dpi=120)
    for lr, curve in sorted(curves.items(), reverse=True):
        ax.plot(np.arange(len(curve)), curve, label=f"{lr:g}", linewidth=1.8)
    loss = "½ Σ (t − a)²" if network.output == "sigmoid" else "cross-entropy"
    ax.set_title(f"2-2-2 network: loss per epoch for each learning rate ({network.output}, E = {loss})")
    ax.set_xlabel("epoch (weight updates)")
    ax.set_ylabel("E_total")
    ax.grid(True, alpha=0.3)
    ax.legend(title="learning rate", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.margins(x=0)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def build_parser() -> Parser:
    defaults = Network()
    parser = Parser(
        prog="python -m ml.backprop",
        description="Train the 2-2-2 network by backpropagation and print every intermediate per epoch.",
        renamed={"--output": "--activation (the output layer's: sigmoid or softmax)"},
    )
    parser.add_argument(
        "--lr",
        type=float,
        nargs="+",
        default=[0.1, 0.2, 0.5, 0.8, 1.0, 2.0],
        help="learning rates (default: 0.1 0.2 0.5 0.8 1.0 2.0)",
    )
    parser.add_argument("--epochs", type=int, default=100, help="weight updates per rate (default: 100)")
    parser.add_argument(
        "--inputs", type=float, nargs=2, metavar=("I1", "I2"), default=defaults.inputs,
        help=f"the two inputs (default: {' '.join(map(str, defaults.inputs))})",
    )  # fmt: skip
    parser.add_argument(
        "--targets", type=float, nargs=2, metavar=("T1", "T2"), default=defaults.targets,
        help=f"the two targets (default: {' '.join(map(str, defaults.targets))})",
    )  # fmt: skip
    parser.add_argument(
        "--weights", type=float, nargs=8, metavar="W", default=defaults.weights, help="initial w1..w8"
    )
    parser.add_argument(
        "--biases",
        type=float,
        nargs=2,
        metavar=("B1", "B2"),
        default=defaults.biases,
        help="fixed (untrained) hidden and output biases (default: 0 0)",
    )
    parser.add_argument(
        "--activation",
        dest="output",
        choices=OUTPUTS,
        default=defaults.output,
        help="the output layer's activation: sigmoid with squared error, or softmax with cross-entropy "
        f"(default: {defaults.output})",
    )
    parser.add_argument(
        "--format",
        choices=("csv", "table"),
        default="table",
        help="csv: every column of every epoch; table: E_total at a few epochs (default)",
    )
    parser.add_argument(
        "--plot",
        metavar="FILE.png",
        help="also write the loss curves of all rates to this PNG (default: none)",
    )
    return parser


def _print_summary(curves: dict[float, np.ndarray], out) -> None:
    """A short table: E_total at a few epochs for each rate."""
    epochs = len(next(iter(curves.values()))) - 1
    marks = sorted({0, 1, 2, 5, 10, 20, 50, epochs} & set(range(epochs + 1)))
    out.write(f"{'lr':>6}" + "".join(f"{'E@' + str(m):>14}" for m in marks) + "\n")
    for lr, curve in curves.items():
        out.write(f"{lr:>6g}" + "".join(f"{curve[m]:>14.9f}" for m in marks) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        network = Network(args.inputs, args.targets, args.weights, args.output, args.biases)
        for lr in args.lr:
            validate_rate(lr)
        validate_epochs(args.epochs)
    except ValueError as error:
        build_parser().error(str(error))
    tables = {lr: trajectory(lr, args.epochs, network) for lr in args.lr}
    if args.format == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(("lr", *COLUMNS))
        for lr, table in tables.items():
            for row in table:
                writer.writerow((repr(lr), int(row[0]), *(repr(float(v)) for v in row[1:])))
    else:
        _print_summary({lr: t[:, COLUMNS.index("E_total")] for lr, t in tables.items()}, sys.stdout)
    if args.plot:
        plot_loss_curves({lr: t[:, COLUMNS.index("E_total")] for lr, t in tables.items()}, args.plot, network)
        print(f"wrote {args.plot}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
