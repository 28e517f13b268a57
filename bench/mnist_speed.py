"""Speed, the MNIST benchmark's second section: seconds per training epoch (training only) of the project's
pipeline against the textbook pipeline in the same process, for each thread count; fp32 and each preset's
model too; images per second and the fraction of the CPU's peak FP32 rate their training FLOPs represent.
Each pipeline first runs a few untimed steps (``WARMUP_STEPS``), so one-time kernel set-up is not counted.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from pathlib import Path

import textbook_pipeline as textbook  # bench/textbook_pipeline.py, beside this script
import torch
from epoch_timer import EpochTimer
from torch import nn

from ml.config import PRESETS, TrainConfig
from ml.model import build_model
from ml.training import train

WARMUP_STEPS = textbook.WARMUP_STEPS  # untimed steps before each timed pipeline


def project_epoch_seconds(max_steps: int | None, work: Path, threads: int, **overrides) -> dict:
    """The project's pipeline through ``train`` itself (training-only time of one epoch)."""
    cfg = TrainConfig(epochs=1, out_dir=str(work / "speed"), threads=threads, **overrides)
    warm = EpochTimer(stop_after=WARMUP_STEPS)  # untimed warm-up steps in this process
    train(TrainConfig(**{**asdict(cfg), "out_dir": str(work / "speed-warmup")}), [warm], warm.should_stop)
    timer = EpochTimer(stop_after=max_steps)
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
    if args.time_compiled:
        pipelines["project_compile"] = {"compile": "default"}
    return pipelines
