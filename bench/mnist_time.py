"""Time to accuracy, the MNIST benchmark's first section: each preset trained as a real ``python -m ml.train``
process per seed, timed from process start (data loading included) to the first evaluation at or above the
target, with its peak memory; the textbook pipeline (``bench/textbook.py``) to the same target in its own
process; and N trainings at once (a classroom server). Torch-free: everything here runs in child processes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from mnist_table import as_percent, as_seconds

from ml.run_dir import RunDir

ROOT = Path(__file__).resolve().parents[1]


def train_process(args: list[str], out: Path, threads: int, device: str) -> dict:
    """``python -m ml.train ARGS`` as its own process, as a user runs it: its wall time from the start of
    the process to its exit, its peak memory (RSS), and when each epoch ended (evaluated, checkpoint and
    metrics written), counted from the start of the process (data loading and set-up included)."""
    command = [sys.executable, "-m", "ml.train", *args, "--run-dir", str(out), "--device", device]
    command += ["--threads", str(threads)] if threads else []
    if out.exists():
        shutil.rmtree(out)
    spawned = time.time()
    t0 = time.perf_counter()
    log = (out.parent / f"{out.name}.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=log, cwd=ROOT)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - t0
    log.close()
    record = RunDir(out).read_record() or {"run": {}, "epochs": []}
    started = record["run"].get("started_at", spawned) - spawned  # process start to training start
    ended_at = record["run"].get("epoch_ended_at", {})  # when each epoch's row was written
    at, rows = started, []
    for row in RunDir(out).read_metrics():
        epoch = int(row["epoch"])
        # the row's own clock time counts what happens between epochs (checkpoint, metrics files, charts);
        # a record without it (an older run) adds up the epochs' training and evaluation seconds
        at = ended_at[str(epoch)] - spawned if str(epoch) in ended_at else at + row["seconds"]
        rows.append({"epoch": epoch, "test_acc": row["test_acc"], "at_s": at, "train_at_s": at - started})
    return {
        "command": " ".join(command[1:]),
        "exit_code": os.waitstatus_to_exitcode(status),
        "wall_s": wall,
        "setup_s": started,
        "peak_rss_mb": peak_rss_mb(usage),
        "epochs": rows,
        "final_test_acc": rows[-1]["test_acc"] if rows else None,
    }


def peak_rss_mb(usage) -> float:
    """A finished child process's peak resident memory in MB, from its ``os.wait4`` resource usage
    (``ru_maxrss`` counts KiB on Linux, bytes on macOS)."""
    return usage.ru_maxrss / (2**20 if sys.platform == "darwin" else 1024)


def reached(run: dict, target: float, clock: str = "at_s") -> float | None:
    """Seconds to the end of the first epoch evaluated at or above ``target``: from process start (``at_s``)
    or from the start of training (``train_at_s``: everything after set-up, what runs between epochs too)."""
    return next((row[clock] for row in run["epochs"] if row["test_acc"] >= target), None)


def time_to_target(
    pipelines: dict[str, list[str]], seeds: list[int], target: float, work: Path, threads: int, device: str
) -> dict:
    """Each pipeline (ml.train arguments) once per seed, as its own process."""
    result = {}
    for name, args in pipelines.items():
        runs = []
        for seed in seeds:
            run = train_process(
                [*args, "--seed", str(seed)], work / f"ttt-{name}-seed{seed}", threads, device
            )
            run.update(
                seed=seed, reached_s=reached(run, target), reached_train_s=reached(run, target, "train_at_s")
            )
            runs.append(run)
            print(
                f"  {name} seed {seed}: final {as_percent(run['final_test_acc'])}, {target:.1%} at "
                f"{as_seconds(run['reached_s'])} (training {as_seconds(run['reached_train_s'])}), "
                f"process {run['wall_s']:.1f} s, set-up {run['setup_s']:.1f} s, "
                f"peak RSS {run['peak_rss_mb']:.0f} MB",
                flush=True,
            )
        result[name] = {"args": args, "runs": runs, "all_reached": all(r["reached_s"] for r in runs)}
    return result


def textbook_time_to_target(target: float, seed: int, epochs: int, work: Path, threads: int) -> dict:
    """The textbook pipeline trained to ``target`` (bench/textbook.py) in its own process."""
    out = work / f"textbook-seed{seed}.json"
    command = [sys.executable, str(Path(__file__).with_name("textbook.py")), "--target", str(target),
               "--epochs", str(epochs), "--seed", str(seed), "--out", str(out)]  # fmt: skip
    command += ["--threads", str(threads)] if threads else []
    t0 = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT)
    _, status, usage = os.wait4(process.pid, 0)
    record = json.loads(out.read_text()) if out.is_file() else {"epochs": [], "reached_s": None}
    accs = [row["test_acc"] for row in record["epochs"]]
    return {
        "command": " ".join(command[1:]),
        "exit_code": os.waitstatus_to_exitcode(status),
        "wall_s": time.perf_counter() - t0,
        "peak_rss_mb": peak_rss_mb(usage),
        "epochs": record["epochs"],
        "reached_s": record["reached_s"],
        "final_test_acc": accs[-1] if accs else None,
        "seed": seed,
    }


def concurrent_runs(args: list[str], n: int, work: Path, threads: int, device: str) -> dict:
    """``n`` trainings started at once on one device (a classroom server): total wall time and images/s."""
    t0 = time.perf_counter()
    processes = []
    for k in range(n):
        out = work / f"concurrent-{n}-{k}"
        command = [sys.executable, "-m", "ml.train", *args, "--seed", str(k + 1), "--run-dir", str(out),
                   "--device", device] + (["--threads", str(threads)] if threads else [])  # fmt: skip
        processes.append(
            (out, subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT))
        )
    codes = [p.wait() for _, p in processes]
    wall = time.perf_counter() - t0
    finals = [(RunDir(out).read_metrics() or [{"test_acc": None, "epoch": 0}])[-1] for out, _ in processes]
    images = sum(int(f["epoch"]) for f in finals) * 60_000
    return {
        "trainings": n,
        "wall_s": wall,
        "images_per_s": images / wall,
        "exit_codes": codes,
        "final_test_acc": [f["test_acc"] for f in finals],
    }


def run_time(args: argparse.Namespace, work: Path, previous: dict) -> dict:
    print(f"time to {args.target:.1%}: presets {args.presets}, seeds {args.ttt_seeds}", flush=True)
    pipelines = {name: ["--preset", name] for name in args.presets}
    result = {"target": args.target, "pipelines": {}}
    result["pipelines"] = time_to_target(
        pipelines, args.ttt_seeds, args.target, work, args.threads, args.device
    )
    old = previous.get("time", {}).get("textbook")
    if args.reuse_textbook and old:
        result["textbook"] = {**old, "reused": True}
    elif args.textbook_epochs > 0:
        print(f"  textbook pipeline to {args.target:.1%} (at most {args.textbook_epochs} epochs)", flush=True)
        result["textbook"] = textbook_time_to_target(
            args.target, args.ttt_seeds[0] if args.ttt_seeds else 1, args.textbook_epochs, work, args.threads
        )
    result["concurrent"] = [
        concurrent_runs(["--preset", args.presets[0]], n, work, args.threads, args.device)
        for n in args.concurrent
    ]
    return result
