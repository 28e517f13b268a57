"""MNIST benchmark, one command: ``python bench/mnist_bench.py``.

It prints a table and writes bench/results/mnist.json.

Measures, on this machine:

* accuracy: the default model trained with the default settings (``TrainConfig()``), final-epoch test
  accuracy for each seed (3 by default), epochs, parameters, wall time; optionally the small variant;
* speed: seconds per training epoch (training only, no evaluation) of the project's pipeline against the
  textbook pipeline in the same run: torchvision-style dataset of PIL images with per-sample
  ``transforms`` (RandomAffine, ToTensor, Normalize) through a ``DataLoader`` (batch 128, 1 worker),
  plain NCHW fp32, same model and optimizer. Also images per second and the fraction of the CPU's peak
  FP32 rate that the training FLOPs represent. Each pipeline first runs a few untimed steps in the same
  process (``WARMUP_STEPS``), so one-time kernel set-up (oneDNN primitives, first allocations), which
  epochs 2 to 15 of a real run don't pay, is not counted; the textbook's DataLoader worker start-up is a
  per-epoch cost and stays in its time;
* prediction latency of one image file through the Python API (warm), and how reliably user-style
  pictures of MNIST test digits (dark ink on light paper, rescaled, off centre) are classified with the
  MNIST-style preprocessing versus fed as-is.

Use ``--seeds``, ``--epochs``, ``--speed-steps`` and ``--skip-*`` to shorten it; the JSON records what ran.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the conventional name
from torch import nn

from ml.data import MNIST_MEAN, MNIST_STD, load_mnist
from ml.events import BatchEnd, EpochEnd, Sink
from ml.model import build_model, count_parameters
from ml.train import TrainConfig, train

ROOT = Path(__file__).resolve().parents[1]

RESULTS = ROOT / "bench" / "results" / "mnist.json"
WARMUP_STEPS = 5  # untimed steps before each timed pipeline


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
        runs.append(
            {
                "seed": seed,
                "status": ended.status,
                "epochs": ended.epochs_done,
                "final_test_acc": ended.final_test_acc,
                "best_test_acc": ended.best_test_acc,
                "wall_s": wall,
                "train_epoch_s": timer.train_seconds,
                "per_epoch": timer.epochs,
                "out_dir": cfg.out_dir,
            }
        )
        print(
            f"  {variant} seed {seed}: final {ended.final_test_acc:.4%} (best {ended.best_test_acc:.4%}) "
            f"in {ended.epochs_done} epochs, {wall:.0f}s",
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
        "std_final_test_acc": statistics.pstdev(finals) if len(finals) > 1 else 0.0,
    }


# ---------------------------------------------------------------- speed


class _PilMnist(torch.utils.data.Dataset):
    """What torchvision.datasets.MNIST does per item: a PIL image through per-sample transforms."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        from PIL import Image

        img = Image.fromarray(self.images[i].numpy(), mode="L")
        return self.transform(img), int(self.labels[i])


def textbook_epoch_seconds(
    max_steps: int | None, batch_size: int = 128, workers: int = 1, seed: int = 0
) -> dict:
    """The textbook pipeline: DataLoader + per-sample torchvision transforms, NCHW fp32, same model."""
    from torchvision import transforms

    torch.manual_seed(seed)
    data = load_mnist()
    tf = transforms.Compose(
        [
            transforms.RandomAffine(degrees=10, translate=(0.09, 0.09), scale=(0.9, 1.1), shear=8),
            transforms.ToTensor(),
            transforms.Normalize((MNIST_MEAN,), (MNIST_STD,)),
        ]
    )
    loader = torch.utils.data.DataLoader(
        _PilMnist(data.train_x, data.train_y, tf),
        batch_size=batch_size,
        shuffle=True,
        num_workers=workers,
        drop_last=True,
    )
    model = build_model("default")
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
    steps = len(loader) if not max_steps else min(max_steps, len(loader))
    model.train()
    warm_model = build_model("default").train()  # untimed warm-up of the same kernels, on a throwaway copy
    warm_opt = torch.optim.SGD(warm_model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    for _ in range(WARMUP_STEPS):
        loss = F.cross_entropy(warm_model(torch.randn(batch_size, 1, 28, 28)), torch.arange(batch_size) % 10)
        warm_opt.zero_grad(set_to_none=True)
        loss.backward()
        warm_opt.step()
    t0 = time.perf_counter()
    for step, (x, y) in enumerate(loader, start=1):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step >= steps:
            break
    elapsed = time.perf_counter() - t0
    return {
        "steps": steps,
        "batch_size": batch_size,
        "workers": workers,
        "warmup_steps": WARMUP_STEPS,
        "elapsed_s": elapsed,
        "epoch_s": elapsed / steps * len(loader),
        "full_epoch": steps == len(loader),
    }


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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, nargs="*", default=[1, 2, 3], help="seeds for the default model")
    p.add_argument("--epochs", type=int, default=TrainConfig().epochs)
    p.add_argument("--small-seeds", type=int, nargs="*", default=[1], help="seeds for the small variant")
    p.add_argument(
        "--speed-steps", type=int, default=0, help="time only N steps per pipeline (0: full epoch)"
    )
    p.add_argument("--compile", action="store_true", help="also time the pipeline with torch.compile")
    p.add_argument("--threads", type=int, default=0, help="torch threads for the accuracy runs (0: default)")
    p.add_argument("--speed-threads", type=int, nargs="+", default=[2, 1], help="thread counts to time")
    p.add_argument("--predict-images", type=int, default=400)
    p.add_argument("--skip-accuracy", action="store_true")
    p.add_argument("--skip-speed", action="store_true")
    p.add_argument("--skip-predict", action="store_true")
    p.add_argument("--work", default=str(ROOT / "runs" / "bench"), help="where the bench's runs go")
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    threads = torch.get_num_threads()
    result: dict = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "threads": threads,
            "cpu_count": os.cpu_count(),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "load_avg_start": os.getloadavg(),
        },
        "args": vars(args),
    }
    t_start = time.perf_counter()

    if not args.skip_speed:
        print("speed: textbook pipeline vs project pipeline (training-only time of one epoch)", flush=True)
        steps = args.speed_steps or None
        flops = training_flops_per_image()
        result["speed"] = {"train_gflop_per_image": flops / 1e9, "by_threads": {}}
        for n_threads in args.speed_threads:
            torch.set_num_threads(n_threads)
            # the textbook batch is 4x smaller: time the same number of images
            speed = {"textbook": textbook_epoch_seconds(steps * 4 if steps else None)}
            print(f"  {n_threads} thread(s) textbook: {speed['textbook']['epoch_s']:.1f} s/epoch", flush=True)
            variants = {
                "project": {},
                "project_fp32": {"amp": "off"},
                "project_strided_model": {"model": "strided"},
            }
            if args.compile:
                variants["project_compile"] = {"compile": "default"}
            for name, overrides in variants.items():
                speed[name] = project_epoch_seconds(steps, work, n_threads, **overrides)
                print(f"  {n_threads} thread(s) {name}: {speed[name]['epoch_s']:.1f} s/epoch", flush=True)
            peak, how = cpu_peak_fp32_gflops(n_threads)
            for entry in speed.values():
                entry["images_per_s"] = 60000 / entry["epoch_s"]
                entry["gflops"] = entry["images_per_s"] * flops / 1e9
                entry["fraction_of_peak_fp32"] = entry["gflops"] / peak
                entry["speedup_vs_textbook"] = speed["textbook"]["epoch_s"] / entry["epoch_s"]
            result["speed"]["by_threads"][str(n_threads)] = {
                "pipelines": speed,
                "peak_fp32_gflops": peak,
                "peak_formula": how,
            }
        torch.set_num_threads(threads)

    if not args.skip_accuracy:
        result["accuracy"] = {}
        if args.seeds:
            print(f"accuracy: default model, seeds {args.seeds}, {args.epochs} epochs", flush=True)
            result["accuracy"]["default"] = run_accuracy(
                "default", args.seeds, args.epochs, work, args.threads
            )
        if args.small_seeds:
            print(f"accuracy: small model, seeds {args.small_seeds}, {args.epochs} epochs", flush=True)
            result["accuracy"]["small"] = run_accuracy(
                "small", args.small_seeds, args.epochs, work, args.threads
            )

    if not args.skip_predict:
        trained = work / f"default-seed{args.seeds[0] if args.seeds else 1}" / "model.pt"
        from ml.predict import default_model_path

        model_path = trained if trained.is_file() else default_model_path()
        with tempfile.TemporaryDirectory() as tmp:
            result["predict"] = prediction_checks(model_path, args.predict_images, Path(tmp))

    result["machine"]["load_avg_end"] = os.getloadavg()
    result["wall_s"] = time.perf_counter() - t_start
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str), encoding="utf-8")
    print()
    print(format_table(result))
    print(f"\nwritten {out}")
    return 0


def format_table(result: dict) -> str:
    lines = []
    if "accuracy" in result:
        lines += [
            "| model | params | epochs | seeds | final test acc per seed | mean | wall time per run |",
            "|---|---|---|---|---|---|---|",
        ]
        for name, acc in result["accuracy"].items():
            per = ", ".join(f"{r['final_test_acc']:.2%}" for r in acc["runs"])
            walls = ", ".join(f"{r['wall_s']:.0f} s" for r in acc["runs"])
            lines.append(
                f"| {name} | {acc['params']:,} | {acc['epochs']} | {len(acc['runs'])} | {per} | "
                f"**{acc['mean_final_test_acc']:.2%}** | {walls} |"
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
        lines.append(
            f"training = {result['speed']['train_gflop_per_image'] * 1000:.1f} MFLOP per image (conv layers)"
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
