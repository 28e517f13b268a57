"""Press Train -> the first training step: a fresh process against a warm training slot, on this machine.

    python bench/press_to_first_step.py [--repeats 3] [--out FILE]

Starts a real redis-server on a free loopback port and the add-in server in its distributed mode
(``--redis``), then presses Train (the small model on 1,000 images, CPU, one thread) over HTTP as the task
pane does, ``repeats`` times each way, alternating:

* **cold**: no slot waits; at the press a fresh slot process starts without its warm-up
  (``python -m excel_addin.jobs.slot --cold``): Python, torch, the data and the device from nothing, as
  the default server's fresh training process per press;
* **warm**: an idle warm slot (``python -m excel_addin.worker --redis URL --slots 1``) takes it.

Both are measured the same way: from the press (before the HTTP request) to the run's first step as its
event stream in Redis records it (the entry's time is Redis's clock, on this machine). Each run is stopped
after its first step. As a cross-check, the default server (no Redis) is pressed too, and its fresh
process's "training began" (metrics.json's ``started_at``) is reported: a lower bound of its first step.
Prints a table (median and min seconds, the ratio cold/warm) and writes JSON with the machine's name,
cores and load average (other work on the machine slows the cold start most): to
runs/bench/press_to_first_step.json (git ignores runs/) unless ``--out`` names another file; the committed
record is ``--out bench/results/press_to_first_step.json``.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("XLWINGS_LICENSE_KEY", "noncommercial")

from bench_record import add_out_option, write_record  # noqa: E402

from excel_addin.jobs import keys  # noqa: E402
from excel_addin.testing.live_server import LiveServer, press  # noqa: E402
from excel_addin.testing.redis_server import RedisServer  # noqa: E402
from excel_addin.testing.training_workers import TrainingWorkers  # noqa: E402
from excel_addin.testing.waiting import wait_for  # noqa: E402
from ml.cli import Parser  # noqa: E402
from ml.run_dir import DEFAULT_RUN_DIR, RunDir  # noqa: E402

PROG = "python bench/press_to_first_step.py"

RUN = {"subset": 1000, "batch_size": 100, "model": "small", "device": "cpu", "lr": 0.05, "seed": 3,
       "out_dir": "", "epochs": 1}  # fmt: skip
OWNER = "local"


def first_step_at(client, workbook: str, timeout: float = 300.0, owner: str = OWNER) -> float:
    """When the workbook's latest run's first step reached its stream (Redis's clock, seconds); ``owner``:
    the user who pressed (the one local user of a server without sign-in)."""

    def found() -> float | None:
        run_id = client.hget(keys.LATEST, keys.field(owner, workbook))
        for entry_id, fields in client.xrange(keys.events(run_id.decode())) if run_id else ():
            if b'"BatchEnd"' in fields[keys.EVENT_FIELD]:
                return int(entry_id.split(b"-")[0]) / 1000.0
        return None

    return wait_for(found, timeout, what=f"the first step of {workbook}", interval=0.05)


def cold_slot(url: str, folder: Path) -> subprocess.Popen:
    """A fresh slot process that takes the next run without warming up."""
    args = [
        sys.executable,
        "-m",
        "excel_addin.jobs.slot",
        "--redis",
        url,
        "--device",
        "cpu",
        "--threads",
        "1",
    ]
    args += ["--cold", "--scratch", str(folder), "--name", f"cold.{time.monotonic_ns()}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def measure_distributed(folder: Path, repeats: int) -> dict[str, list[float]]:
    folder.mkdir(parents=True)
    redis = RedisServer(folder / "redis").start()
    web = LiveServer(folder, "--http", "--redis", redis.url).wait_ready()
    client = keys.connect(redis.url)
    seconds: dict[str, list[float]] = {"cold": [], "warm": []}
    try:
        for k in range(repeats):
            workbook = f"cold{k}"
            pressed = time.time()
            press(web.url, "train", workbook, **RUN)
            process = cold_slot(redis.url, folder)
            seconds["cold"].append(first_step_at(client, workbook) - pressed)
            press(web.url, "stop", workbook, **RUN)
            process.terminate()
            process.wait()
            workers = TrainingWorkers(folder, redis.url, name=f"warm{k}").wait_warm()
            time.sleep(1.0)  # idle, as a slot waits between presses
            workbook = f"warm{k}"
            pressed = time.time()
            press(web.url, "train", workbook, **RUN)
            seconds["warm"].append(first_step_at(client, workbook) - pressed)
            press(web.url, "stop", workbook, **RUN)
            workers.stop()
    finally:
        web.stop()
        redis.stop()
    return seconds


def measure_default(folder: Path, repeats: int) -> list[float]:
    """The default server's fresh process per press: press -> metrics.json's started_at."""
    folder.mkdir(parents=True)
    web = LiveServer(folder, "--http").wait_ready()
    seconds = []
    try:
        for k in range(repeats):
            workbook = f"default{k}"
            pressed = time.time()
            press(web.url, "train", workbook, **RUN)
            run_dir = RunDir(folder / "runs" / OWNER / workbook / DEFAULT_RUN_DIR)
            record = wait_for(
                run_dir.read_record, 300, what="the default server's run to begin", interval=0.05
            )
            seconds.append(record["run"]["started_at"] - pressed)
            press(web.url, "stop", workbook, **RUN)
            wait_for(lambda folder=run_dir: ended(folder), 300, what="the default server's run to stop")
    finally:
        web.stop()
    return seconds


def ended(run_dir: RunDir) -> bool:
    record = run_dir.read_record()
    return record is not None and record["run"].get("status") != "running"


def processor() -> str:
    """The CPU's name (Linux: /proc/cpuinfo's model name), else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def row(case: str, values: list[float], warm: float) -> dict:
    median = statistics.median(values)
    return {"case": case, "median_s": median, "min_s": min(values), "runs": values, "x_warm": median / warm}


def build_parser() -> Parser:
    parser = Parser(prog=PROG, description=__doc__.splitlines()[0], renamed={"--json": "--out FILE"})
    parser.add_argument("--repeats", type=int, default=3, help="presses of each kind (default 3)")
    add_out_option(parser, "press_to_first_step.json")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="gradsheet-bench-") as tmp:
        measured = measure_distributed(Path(tmp) / "distributed", args.repeats)
        default = measure_default(Path(tmp) / "default", args.repeats)
    warm = statistics.median(measured["warm"])
    results = [
        row("cold: a fresh process at the press -> first step", measured["cold"], warm),
        row("warm: an idle warm slot -> first step", measured["warm"], warm),
        row("default server: fresh process -> training began (lower bound)", default, warm),
    ]
    print(f"{'case':<64}{'median s':>10}{'min s':>8}{'x warm':>8}")
    for result in results:
        print(
            f"{result['case']:<64}{result['median_s']:>10.2f}{result['min_s']:>8.2f}{result['x_warm']:>8.1f}"
        )
    report = {"benchmark": "press Train -> first training step", "run": RUN, "repeats": args.repeats,
              "machine": platform.node(), "processor": processor(),
              "cpu_count": os.cpu_count(), "load_average_before": load_before,
              "load_average_after": os.getloadavg(), "python": platform.python_version(),
              "results": results}  # fmt: skip
    write_record(args.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
