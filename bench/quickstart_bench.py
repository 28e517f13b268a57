"""The README's Quick start, timed on this machine: ``python bench/quickstart_bench.py``.

Runs the Quick start's commands as a user's shell runs them (each a fresh ``python`` process in this
checkout, in order): ``python -m ml.train --dry-run``, ``python -m ml.train --preset fast`` and
``python -m ml.predict examples/digits/7.png``, and records for each its wall time (process start to exit)
and the last line it printed. The trainings go to a temporary folder (``--run-dir``) and the prediction
reads the fast run's model (``--checkpoint``), as it reads runs/mnist/model.pt after the Quick start's
training, so a trained runs/mnist of yours is left alone. Also records the machine (CPU model, cores,
whether the CPU has native bf16, which decides the training's precision), torch's version, the load
average before and after, the fast run's final test accuracy and precision, and the size on disk of the
Python environment that runs it (the virtual environment of the Quick start).

Prints a table; writes its JSON record to runs/bench/quickstart.json (git ignores runs/) unless ``--out``
names another file: the committed record is ``--out bench/results/quickstart.json``. The arguments are
checked before torch is imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_record import add_out_option, write_record

from ml.cli import Parser

ROOT = Path(__file__).resolve().parents[1]
PROG = "python bench/quickstart_bench.py"
PICTURE = "examples/digits/7.png"


def build_parser() -> Parser:
    parser = Parser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument(
        "--repeats", type=int, default=1, help="runs of each command, one after the other (default 1)"
    )
    add_out_option(parser, "quickstart.json")
    return parser


def commands(work: Path) -> list[tuple[str, list[str]]]:
    """Each Quick start command as the README writes it, and the arguments this benchmark runs it with."""
    fast = ["-m", "ml.train", "--preset", "fast", "--run-dir", str(work / "fast")]
    predict = ["-m", "ml.predict", PICTURE, "--checkpoint", str(work / "fast" / "model.pt")]
    return [
        ("python -m ml.train --dry-run", ["-m", "ml.train", "--dry-run", "--run-dir", str(work / "dry")]),
        ("python -m ml.train --preset fast", fast),
        (f"python -m ml.predict {PICTURE}", predict),
    ]  # fmt: skip


def as_typed(line: str, work: Path) -> str:
    """A printed line as the command typed in the Quick start prints it: with its default folders."""
    for folder, default in (("fast", "runs/mnist"), ("dry", "runs/dry-run")):
        line = line.replace(str(work / folder), default)
    return line


def last_lines(text: str, count: int = 2) -> list[str]:
    """The last lines a user sees (progress bars redraw with carriage returns: the last of those)."""
    lines = [line.strip() for line in text.replace("\r", "\n").splitlines() if line.strip()]
    return lines[-count:]


def timed(args: list[str], work: Path) -> dict:
    """One command's run: wall seconds and the last lines of its stdout and of its stderr (``as_typed``)."""
    started = time.perf_counter()  # python -m in the checkout's folder imports the checkout's code
    done = subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{PROG}: error: {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    lines = {name: [as_typed(line, work) for line in last_lines(text)] for name, text in
             (("stdout", done.stdout), ("stderr", done.stderr))}  # fmt: skip
    return {"wall_s": round(wall, 2), **lines}


def fast_run_facts(run_dir: Path) -> dict:
    """The fast run's final test accuracy and its device (its metrics.json); the precision follows from the
    machine's ``cpu_native_bf16`` (bf16 autocast where native, else fp32)."""
    metrics = json.loads((run_dir / "metrics.json").read_text())
    rows = [row for row in metrics["epochs"] if row.get("test_acc") is not None]
    return {"final_test_acc": rows[-1]["test_acc"], "device": metrics["run"]["device"]}


def environment_size() -> int | None:
    """Bytes on disk of the virtual environment running this (None outside one)."""
    if sys.prefix == sys.base_prefix:
        return None
    return sum(p.stat().st_size for p in Path(sys.prefix).rglob("*") if p.is_file() and not p.is_symlink())


def measure(repeats: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="gradsheet-quickstart-") as tmp:
        work = Path(tmp)
        runs: dict[str, list[dict]] = {}
        for _ in range(repeats):
            for shown, args in commands(work):
                runs.setdefault(shown, []).append(timed(args, work))
        facts = fast_run_facts(work / "fast")
    return {"commands": runs, "fast_run": facts}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from mnist_bench import machine  # imports torch: after the arguments are checked

    record = {"benchmark": "the README's Quick start", "machine": machine(), "repeats": args.repeats}
    started = time.perf_counter()
    record |= measure(args.repeats)
    record["machine"]["load_avg_end"] = os.getloadavg()
    record["environment_bytes"] = environment_size()
    record["wall_s"] = round(time.perf_counter() - started, 1)
    print(f"{'command':<48}{'seconds':>20}  last line")
    for shown, runs in record["commands"].items():
        seconds = ", ".join(f"{run['wall_s']:.1f}" for run in runs)
        print(f"{shown:<48}{seconds:>20}  {(runs[-1]['stdout'] or runs[-1]['stderr'])[-1]}")
    write_record(args.out, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
