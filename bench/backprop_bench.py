"""Benchmark the BACKPROP_* cell functions as a sheet uses them.

    python bench/backprop_bench.py [--repeats 20] [--out FILE.json]

Measures a Backprop sheet of 6 rates x 100 epochs of =BACKPROP_LOSS cells with a cold cache and a warm
one, the same sheet as 6 =BACKPROP_CURVE spills, and, as the baseline in the same process, the grid with
no cache at all (every cell computing its own trajectory). Prints a table and writes JSON: by default to
runs/bench/backprop.json (git ignores runs/); the committed record is written by naming it,
``--out bench/results/backprop.json``.
"""

from __future__ import annotations

import platform
import statistics
import sys
import time

from bench_record import add_out_option, write_record

from excel_addin.classic.udfs import BACKPROP_CURVE, BACKPROP_LOSS
from ml import backprop
from ml.cli import Parser

RATES = (0.1, 0.2, 0.5, 0.8, 1.0, 2.0)
EPOCHS = 100


def loss_grid() -> None:
    for lr in RATES:
        for epoch in range(1, EPOCHS + 1):
            BACKPROP_LOSS(lr, float(epoch))


def curves() -> None:
    for lr in RATES:
        BACKPROP_CURVE(lr, float(EPOCHS))


def uncached_grid() -> None:
    """Baseline: what the grid would cost if every cell computed its own trajectory."""
    for lr in RATES:
        for epoch in range(1, EPOCHS + 1):
            backprop.compute_trajectory(lr, epoch, backprop.Network())


def timed(work, repeats: int, cold: bool) -> list[float]:
    seconds = []
    for _ in range(repeats):
        if cold:
            backprop.clear_cache()
        else:
            work()  # warm the cache
        start = time.perf_counter()
        work()
        seconds.append(time.perf_counter() - start)
    return seconds


def build_parser() -> Parser:
    parser = Parser(
        prog="python bench/backprop_bench.py",
        description=__doc__.splitlines()[0],
        renamed={"--json": "--out FILE"},
    )
    parser.add_argument("--repeats", type=int, default=20, help="timed repeats per case (default: 20)")
    add_out_option(parser, "backprop.json")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    cases = [
        ("600 BACKPROP_LOSS cells, no cache (baseline)", uncached_grid, True, max(3, args.repeats // 5)),
        ("600 BACKPROP_LOSS cells, cold cache", loss_grid, True, args.repeats),
        ("600 BACKPROP_LOSS cells, warm cache", loss_grid, False, args.repeats),
        ("6 BACKPROP_CURVE spills, cold cache", curves, True, args.repeats),
        ("6 BACKPROP_CURVE spills, warm cache", curves, False, args.repeats),
    ]
    results = []
    for name, work, cold, repeats in cases:
        seconds = timed(work, repeats, cold)
        results.append({"case": name, "median_ms": 1e3 * statistics.median(seconds),
                         "min_ms": 1e3 * min(seconds), "repeats": repeats})  # fmt: skip
    baseline = results[0]["median_ms"]
    for row in results:
        row["speedup_vs_baseline"] = baseline / row["median_ms"]

    print(f"{'case':<48}{'median ms':>12}{'min ms':>10}{'x baseline':>12}")
    for row in results:
        print(f"{row['case']:<48}{row['median_ms']:>12.3f}{row['min_ms']:>10.3f}"
              f"{row['speedup_vs_baseline']:>12.1f}")  # fmt: skip
    report = {
        "benchmark": "backprop cell functions",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "results": results,
    }
    write_record(args.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
