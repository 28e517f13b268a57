"""MNIST benchmark, one command: ``python bench/mnist_bench.py``.

It prints a table and writes bench/results/mnist.json (``--out``). Measures, on this machine:

* time to accuracy (``--target``, 99.5%): each preset (``--presets``: ``standard`` = the defaults,
  ``fast``) trained as a real ``python -m ml.train`` process per seed, timed from process start to the
  first evaluation at or above the target (data loading included), with its final accuracy, process wall
  time and peak RSS; and the textbook pipeline (``bench/textbook.py``) trained epoch by epoch to the same
  target (``--reuse-textbook`` takes its last figure from ``--out``). ``--concurrent N`` also runs N
  trainings at once (a classroom server) and reports their images per second together;
* speed: seconds per training epoch (training only, no evaluation) of the project's pipeline against the
  textbook pipeline in the same run: torchvision-style dataset of PIL images with per-sample
  ``transforms`` (RandomAffine, ToTensor, Normalize) through a ``DataLoader`` (batch 128, 1 worker),
  plain NCHW fp32, same model and optimizer. Also fp32 and each preset's model, images per second and the
  fraction of the CPU's peak FP32 rate that each model's training FLOPs represent. Each pipeline first
  runs a few untimed steps in the same process (``WARMUP_STEPS``), so one-time kernel set-up (oneDNN
  primitives, first allocations), which later epochs of a real run don't pay, is not counted; the
  textbook's DataLoader worker start-up is a per-epoch cost and stays in its time;
* accuracy: each model of ``--models`` trained with the default settings, final-epoch test accuracy per
  seed (``--seeds``), without and with 5-view test-time augmentation (``ACCURACY_TTA``), parameters,
  wall time;
* prediction latency of one image file through the Python API (warm), and how reliably user-style
  pictures of MNIST test digits (dark ink on light paper, rescaled, off centre) are classified with the
  MNIST-style preprocessing versus fed as-is.

``--device cuda`` runs the trainings on a GPU. Use ``--seeds``, ``--epochs``, ``--speed-steps`` and
``--skip-*`` to shorten it; the JSON records what ran.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import textbook  # bench/textbook.py, beside this script
import torch
from torch import nn

from ml.config import PRESETS
from ml.data import load_mnist
from ml.events import BatchEnd, EpochEnd, Sink
from ml.model import build_model, count_parameters
from ml.run_dir import RunDir
from ml.train import TrainConfig, train

ROOT = Path(__file__).resolve().parents[1]

RESULTS = ROOT / "bench" / "results" / "mnist.json"
WARMUP_STEPS = textbook.WARMUP_STEPS  # untimed steps before each timed pipeline


class _Timer(Sink):
    """Collects per-epoch training-only seconds (elapsed at an epoch's last step) and epoch rows."""

    def __init__(self, stop_after: int | None = None):
        self.stop_after = stop_after
        self.last: BatchEnd | None = None
        self.train_seconds: list[float] = []
        self.epochs: list[dict] = []

    def on_batch(self, event: BatchEnd) -> None:
        self.last = event
        if event.step == event.steps:
            self.train_seconds.append(event.elapsed)

    def on_epoch(self, event: EpochEnd) -> None:
        self.epochs.append({"epoch": event.epoch, "test_acc": event.test_acc, "seconds": event.seconds})

    def should_stop(self) -> bool:
        return self.stop_after is not None and self.last is not None and self.last.step >= self.stop_after


# ---------------------------------------------------------------- accuracy


ACCURACY_TTA = 5  # the accuracy runs' final checkpoints are also evaluated with this many TTA views


def tta_accuracy(model_path: Path, views: int = ACCURACY_TTA) -> float:
    """Test accuracy of a run's final checkpoint with ``views``-view test-time augmentation."""
    from ml.checkpoint import load_checkpoint, model_from_checkpoint
    from ml.training import evaluate

    data = load_mnist()
    model = model_from_checkpoint(load_checkpoint(model_path), str(model_path))
    return evaluate(model, data.test_x, data.test_y, tta=views).acc


def run_accuracy(variant: str, seeds: list[int], epochs: int, work: Path, threads: int) -> dict:
    runs = []
    for seed in seeds:
        cfg = TrainConfig(
            seed=seed,
            model=variant,
            epochs=epochs,
            out_dir=str(work / f"{variant}-seed{seed}"),
            threads=threads,
        )
        timer = _Timer()
        t0 = time.perf_counter()
        ended = train(cfg, [timer])
        wall = time.perf_counter() - t0
        # a failed or stopped run's checkpoint is an earlier epoch's: no final TTA figure for it
        tta = tta_accuracy(RunDir(cfg.out_dir).checkpoint) if ended.status == "completed" else None
        runs.append(
            {
                "seed": seed,
                "status": ended.status,
                "epochs": ended.epochs_done,
                "final_test_acc": ended.final_test_acc,
                "final_test_acc_tta": tta,
                "best_test_acc": ended.best_test_acc,
                "wall_s": wall,
                "train_epoch_s": timer.train_seconds,
                "train_s": sum(timer.train_seconds),  # training alone: no evaluation, saving or set-up
                "per_epoch": timer.epochs,
                "out_dir": cfg.out_dir,
            }
        )
        print(
            f"  {variant} seed {seed}: final {ended.final_test_acc:.4%} (best {ended.best_test_acc:.4%}, "
            f"TTA {ACCURACY_TTA} {_percent(tta)}) in {ended.epochs_done} epochs, {wall:.0f}s",
            flush=True,
        )
    finals = [r["final_test_acc"] for r in runs]
    return {
        "model": variant,
        "params": count_parameters(build_model(variant)),
        "epochs": epochs,
        "config": asdict(TrainConfig(model=variant, epochs=epochs)),
        "runs": runs,
        "mean_final_test_acc": statistics.fmean(finals),
        "median_train_epoch_s": _median_or_none([s for r in runs for s in r["train_epoch_s"]]),
        "std_final_test_acc": statistics.pstdev(finals) if len(finals) > 1 else 0.0,
        "tta_views": ACCURACY_TTA,
        "mean_final_test_acc_tta": _mean_of_all([r["final_test_acc_tta"] for r in runs]),
    }


# ---------------------------------------------------------------- time to accuracy


def train_process(args: list[str], out: Path, threads: int, device: str) -> dict:
    """``python -m ml.train ARGS`` as its own process, as a user runs it: its wall time from the start of
    the process to its exit, its peak memory (RSS), and when each epoch ended (evaluated, checkpoint and
    metrics written), counted from the start of the process (data loading and set-up included)."""
    command = [sys.executable, "-m", "ml.train", *args, "--run-dir", str(out), "--device", device]
    command += ["--threads", str(threads)] if threads else []
    if out.exists():
        import shutil

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
                f"  {name} seed {seed}: final {_percent(run['final_test_acc'])}, {target:.1%} at "
                f"{_seconds(run['reached_s'])} (training {_seconds(run['reached_train_s'])}), "
                f"process {run['wall_s']:.1f} s, set-up {run['setup_s']:.1f} s, "
                f"peak RSS {run['peak_rss_mb']:.0f} MB",
                flush=True,
            )
        result[name] = {"args": args, "runs": runs, "all_reached": all(r["reached_s"] for r in runs)}
    return result


def _percent(value: float | None, digits: int = 2) -> str:
    return f"{value:.{digits}%}" if value is not None else "n/a"


def _mean_of_all(values: list[float | None]) -> float | None:
    """The mean, or None when any run has no figure (a mean of the others would flatter the model)."""
    return None if any(v is None for v in values) else statistics.fmean(values)


def _seconds(value: float | None, digits: int = 1, missing: str = "not reached") -> str:
    return f"{value:.{digits}f} s" if value is not None else missing


def _median_or_none(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


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


# ---------------------------------------------------------------- speed


def project_epoch_seconds(max_steps: int | None, work: Path, threads: int, **overrides) -> dict:
    """The project's pipeline through ``train`` itself (training-only time of one epoch)."""
    cfg = TrainConfig(epochs=1, out_dir=str(work / "speed"), threads=threads, **overrides)
    warm = _Timer(stop_after=WARMUP_STEPS)  # untimed warm-up steps in this process
    train(TrainConfig(**{**asdict(cfg), "out_dir": str(work / "speed-warmup")}), [warm], warm.should_stop)
    timer = _Timer(stop_after=max_steps)
    train(cfg, [timer], should_stop=timer.should_stop)
    last = timer.last
    return {
        "steps": last.step,
        "steps_per_epoch": last.steps,
        "batch_size": cfg.batch_size,
        "warmup_steps": WARMUP_STEPS,
        "elapsed_s": last.elapsed,
        "epoch_s": last.elapsed / last.step * last.steps,
        "full_epoch": last.step == last.steps,
        "settings": overrides or "defaults",
    }


def training_flops_per_image(variant: str = "default") -> float:
    """Forward MACs x 2 FLOPs x 3 (forward + backward's two convolutions) for the conv layers."""
    model = build_model(variant).eval()
    macs = 0

    def hook(module, _inp, out):
        nonlocal macs
        k = module.weight[0].numel()  # c_in * kh * kw
        macs += out.numel() * k

    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        model(torch.zeros(1, 1, 28, 28))
    for h in hooks:
        h.remove()
    return 2.0 * macs * 3


def cpu_peak_fp32_gflops(threads: int) -> tuple[float, str]:
    """Peak FP32 rate: threads x clock x FLOPs/cycle (AVX-512: 2 FMA units x 16 lanes x 2)."""
    mhz, flags = 0.0, ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("cpu MHz") and not mhz:
                mhz = float(line.split(":")[1])
            if line.startswith("flags") and not flags:
                flags = line
    except OSError:
        pass
    per_cycle = 64 if "avx512f" in flags else 32 if "avx2" in flags else 16
    ghz = mhz / 1000 if mhz else 2.0
    return threads * ghz * per_cycle, f"{threads} cores x {ghz:.2f} GHz x {per_cycle} FLOP/cycle"


# ---------------------------------------------------------------- prediction


def prediction_checks(model_path: Path, n_images: int, work: Path) -> dict:
    from ml.predict import load_classifier
    from ml.user_pictures import STYLES, as_is_28, user_style_png

    clf = load_classifier(model_path)
    data = load_mnist()
    folder = work / "digits"
    folder.mkdir(parents=True, exist_ok=True)
    paths, labels = [], []
    for i in range(n_images):
        paths.append(user_style_png(data.test_x[i].numpy(), folder / f"d{i}.png", style=i))
        labels.append(int(data.test_y[i]))
    preds = [clf.predict(p).digit for p in paths]
    naive = clf.probabilities(np.stack([as_is_28(p) for p in paths])).argmax(1)
    # MNIST's own test digits, same count, straight through the network
    x = data.test_x[:n_images].numpy().astype(np.float32) / 255
    own = clf.probabilities(x).argmax(1)
    # warm latency of one file
    for _ in range(10):
        clf.predict(paths[0])
    times = []
    for i in range(200):
        t0 = time.perf_counter()
        clf.predict(paths[i % len(paths)])
        times.append((time.perf_counter() - t0) * 1000)
    return {
        "model": str(model_path),
        "images": n_images,
        "styles": len(STYLES),
        "user_style_acc": float(np.mean(np.array(preds) == labels)),
        "as_is_acc": float(np.mean(naive == np.array(labels))),
        "mnist_same_digits_acc": float(np.mean(own == data.test_y[:n_images].numpy())),
        "latency_ms_median": statistics.median(times),
        "latency_ms_p90": float(np.percentile(times, 90)),
    }


# ---------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="auto", help="device of the trainings: auto, cpu, cuda, mps")
    p.add_argument("--threads", type=int, default=0, help="torch threads per training (0: torch's default)")
    p.add_argument("--target", type=float, default=0.995, help="the test accuracy of time-to-accuracy")
    p.add_argument("--presets", nargs="*", default=list(PRESETS), help="presets timed to the target")
    p.add_argument("--ttt-seeds", type=int, nargs="*", default=[1, 2, 3], help="seeds of the timed runs")
    p.add_argument(
        "--textbook-epochs",
        type=int,
        default=20,
        help="at most this many textbook epochs (0: none, e.g. on a GPU machine: it trains on the CPU)",
    )
    p.add_argument("--reuse-textbook", action="store_true", help="take the textbook's time from --out")
    p.add_argument("--concurrent", type=int, nargs="*", default=[], help="trainings at once (a server)")
    p.add_argument("--models", nargs="*", default=["default"], help="models whose accuracy is measured")
    p.add_argument("--seeds", type=int, nargs="*", default=[1, 2, 3], help="seeds of the accuracy runs")
    p.add_argument("--epochs", type=int, default=TrainConfig().epochs)
    p.add_argument("--speed-steps", type=int, default=0, help="time only N steps per pipeline (0: an epoch)")
    p.add_argument("--compile", action="store_true", help="also time the pipeline with torch.compile")
    p.add_argument("--speed-threads", type=int, nargs="+", default=[2, 1], help="thread counts to time")
    p.add_argument("--predict-images", type=int, default=400)
    for part in PARTS:
        p.add_argument(f"--skip-{part}", action="store_true")
    p.add_argument("--work", default=str(ROOT / "runs" / "bench"), help="where the bench's runs go")
    p.add_argument("--out", default=str(RESULTS))
    return p.parse_args(argv)


PARTS = ("time", "speed", "accuracy", "predict")


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


def run_speed(args: argparse.Namespace, work: Path) -> dict:
    print("speed: textbook pipeline vs project pipeline (training-only time of one epoch)", flush=True)
    steps = args.speed_steps or None
    pipelines = speed_pipelines(args)
    models = {"textbook": "default"} | {name: o.get("model", "default") for name, o in pipelines.items()}
    flops = {name: training_flops_per_image(model) for name, model in models.items()}
    result = {"train_gflop_per_image": {name: f / 1e9 for name, f in flops.items()}, "by_threads": {}}
    threads = torch.get_num_threads()
    for n_threads in args.speed_threads:
        torch.set_num_threads(n_threads)
        # the textbook batch is 4x smaller: time the same number of images
        speed = {"textbook": textbook.epoch_seconds(steps * 4 if steps else None)}
        print(f"  {n_threads} thread(s) textbook: {speed['textbook']['epoch_s']:.1f} s/epoch", flush=True)
        for name, overrides in pipelines.items():
            speed[name] = project_epoch_seconds(steps, work, n_threads, **overrides)
            print(f"  {n_threads} thread(s) {name}: {speed[name]['epoch_s']:.1f} s/epoch", flush=True)
        peak, how = cpu_peak_fp32_gflops(n_threads)
        for name, entry in speed.items():
            entry["images_per_s"] = 60000 / entry["epoch_s"]
            entry["gflops"] = entry["images_per_s"] * flops[name] / 1e9
            entry["fraction_of_peak_fp32"] = entry["gflops"] / peak
            entry["speedup_vs_textbook"] = speed["textbook"]["epoch_s"] / entry["epoch_s"]
        result["by_threads"][str(n_threads)] = {
            "pipelines": speed,
            "peak_fp32_gflops": peak,
            "peak_formula": how,
        }
    torch.set_num_threads(threads)
    return result


def speed_pipelines(args: argparse.Namespace) -> dict[str, dict]:
    """The project's pipelines timed against the textbook: the defaults, fp32, each preset's model."""
    pipelines = {"project": {}, "project_fp32": {"amp": "off"}}
    for name, preset in PRESETS.items():
        if preset.get("model"):
            pipelines[f"project_{name}_preset_model"] = {"model": preset["model"]}
    if args.compile:
        pipelines["project_compile"] = {"compile": "default"}
    return pipelines


def run_accuracies(args: argparse.Namespace, work: Path) -> dict:
    result = {}
    for model in args.models:
        print(f"accuracy: {model} model, seeds {args.seeds}, {args.epochs} epochs", flush=True)
        result[model] = run_accuracy(model, args.seeds, args.epochs, work, args.threads)
    return result


def run_predict(args: argparse.Namespace, work: Path) -> dict:
    trained = work / f"default-seed{args.seeds[0] if args.seeds else 1}" / "model.pt"
    from ml.predict import default_model_path

    model_path = trained if trained.is_file() else default_model_path()
    with tempfile.TemporaryDirectory() as tmp:
        return prediction_checks(model_path, args.predict_images, Path(tmp))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    out = Path(args.out)
    previous = json.loads(out.read_text()) if out.is_file() else {}
    result: dict = {"machine": machine(), "args": vars(args)}
    t_start = time.perf_counter()
    sections = {
        "time": lambda: run_time(args, work, previous),
        "speed": lambda: run_speed(args, work),
        "accuracy": lambda: run_accuracies(args, work),
        "predict": lambda: run_predict(args, work),
    }
    for part, run in sections.items():
        if not getattr(args, f"skip_{part}"):
            result[part] = run()
    result["machine"]["load_avg_end"] = os.getloadavg()
    result["wall_s"] = time.perf_counter() - t_start
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    print()
    print(format_table(result))
    print(f"\nwritten {out}")
    return 0


def machine() -> dict:
    """What the figures were measured on."""
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "gpu": gpu,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "load_avg_start": os.getloadavg(),
    }


def format_time(time_result: dict) -> list[str]:
    """The time-to-accuracy table: each preset (one process per seed) and the textbook pipeline."""
    target = time_result["target"]
    lines = [
        f"| pipeline | final test acc per seed | all >= {target:.1%} | time to {target:.1%} per seed "
        "(process start, data loading included) | process wall per seed | peak RSS |",
        "|---|---|---|---|---|---|",
    ]
    for name, block in time_result["pipelines"].items():
        runs = block["runs"]
        finals = ", ".join(_percent(r["final_test_acc"]) for r in runs)
        passed = "yes" if all((r["final_test_acc"] or 0) >= target for r in runs) else "no"
        times = ", ".join(
            f"{_seconds(r['reached_s'])} ({_seconds(r.get('reached_train_s'))} training)" for r in runs
        )
        walls = ", ".join(f"{r['wall_s']:.1f} s" for r in runs)
        rss = max(r["peak_rss_mb"] for r in runs)
        lines.append(f"| preset `{name}` | {finals} | {passed} | {times} | {walls} | {rss:.0f} MB |")
    tb = time_result.get("textbook")
    if tb:
        reused = " (figure reused from an earlier run)" if tb.get("reused") else ""
        final = f"{_percent(tb['final_test_acc'])} after {len(tb['epochs'])} epochs"
        passed = "yes" if tb["reached_s"] else "no"
        lines.append(
            f"| textbook{reused} | {final} | {passed} | {_seconds(tb['reached_s'])} | {tb['wall_s']:.0f} s | "
            f"{tb['peak_rss_mb']:.0f} MB |"
        )
    for entry in time_result.get("concurrent", []):
        lines.append(
            f"\n{entry['trainings']} trainings at once: {entry['wall_s']:.1f} s, "
            f"{entry['images_per_s']:,.0f} images/s together, final accuracies {entry['final_test_acc']}"
        )
    return lines + [""]


def format_table(result: dict) -> str:
    lines = format_time(result["time"]) if "time" in result else []
    if "accuracy" in result:
        lines += [
            "| model | params | epochs | seeds | final test acc per seed | mean | with TTA: per seed | mean "
            "| wall time per run | training alone per run | s/epoch (training, median) |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for name, acc in result["accuracy"].items():
            per = ", ".join(f"{r['final_test_acc']:.2%}" for r in acc["runs"])
            per_tta = ", ".join(_percent(r["final_test_acc_tta"]) for r in acc["runs"])
            walls = ", ".join(f"{r['wall_s']:.1f} s" for r in acc["runs"])
            trains = ", ".join(_seconds(r.get("train_s"), missing="n/a") for r in acc["runs"])
            lines.append(
                f"| {name} | {acc['params']:,} | {acc['epochs']} | {len(acc['runs'])} | {per} | "
                f"**{acc['mean_final_test_acc']:.2%}** | {per_tta} | "
                f"{_percent(acc['mean_final_test_acc_tta'], digits=3)} | {walls} | {trains} | "
                f"{_seconds(acc.get('median_train_epoch_s'), digits=2, missing='n/a')} |"
            )
        lines.append("")
    if "speed" in result:
        lines += [
            "| threads | pipeline | s/epoch (training) | images/s | GFLOP/s | of peak FP32 | speed-up |",
            "|---|---|---|---|---|---|---|",
        ]
        for n, block in result["speed"]["by_threads"].items():
            for name, s in block["pipelines"].items():
                partial = "" if s["full_epoch"] else f" (from {s['steps']} steps)"
                lines.append(
                    f"| {n} | {name} | {s['epoch_s']:.1f}{partial} | {s['images_per_s']:,.0f} | "
                    f"{s['gflops']:.1f} | {s['fraction_of_peak_fp32']:.1%} | "
                    f"{s['speedup_vs_textbook']:.2f}x |"
                )
        lines.append("")
        for n, block in result["speed"]["by_threads"].items():
            lines.append(
                f"peak FP32 ({n} thread(s)) = {block['peak_formula']} = "
                f"{block['peak_fp32_gflops']:.0f} GFLOP/s"
            )
        per_image = result["speed"]["train_gflop_per_image"]
        lines.append(
            "training MFLOP per image (conv layers): "
            + ", ".join(f"{name} {gflop * 1000:.1f}" for name, gflop in per_image.items())
        )
        lines.append("")
    if "predict" in result:
        pr = result["predict"]
        lines += [
            "| prediction | value |",
            "|---|---|",
            f"| warm latency, one PNG file (median / p90) | {pr['latency_ms_median']:.2f} ms / "
            f"{pr['latency_ms_p90']:.2f} ms |",
            f"| user-style pictures of {pr['images']} MNIST test digits, with preprocessing | "
            f"{pr['user_style_acc']:.2%} |",
            f"| the same {pr['images']} digits from MNIST itself | {pr['mnist_same_digits_acc']:.2%} |",
            f"| the same pictures fed as-is (resized to 28x28 only) | {pr['as_is_acc']:.2%} |",
        ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
