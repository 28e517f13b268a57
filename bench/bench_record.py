"""Where a benchmark's JSON record goes, written once for every bench: ``runs/bench/<name>`` by default
(git ignores runs/, so running a bench never dirties the clone), a committed record under
``bench/results/`` only when ``--out`` names it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

RUNS_BENCH = Path(__file__).resolve().parents[1] / "runs" / "bench"


def add_out_option(parser: argparse.ArgumentParser, name: str) -> None:
    """``--out FILE``: the JSON record, by default ``runs/bench/<name>``."""
    parser.add_argument(
        "--out",
        metavar="FILE",
        type=Path,
        default=RUNS_BENCH / name,
        help=f"the JSON record (runs/bench/{name})",
    )


def write_record(out: Path, record: dict) -> None:
    """``record`` as indented JSON into ``out`` (its folder made), and a line saying where."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"wrote {out}")
