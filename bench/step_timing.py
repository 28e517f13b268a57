"""The measurements of ``bench/step_profile.py`` (where a GPU training epoch's time goes), on a CUDA GPU:
``profile(device)`` prints one line of figures per configuration, the side costs and the top kernels.
"""

from __future__ import annotations

import itertools
import tempfile
import time
from pathlib import Path

import torch

from ml import plots, training
from ml.config import TrainConfig
from ml.run_dir import RunDir

STEPS = 60


def measure(folder: Path, label: str, device: str, autotune: bool = False, **settings) -> training.Run:
    """One line of figures for a run with these settings."""
    sync = torch.cuda.synchronize
    cfg = TrainConfig(device=device, out_dir=str(folder / label), **settings)
    t0 = time.perf_counter()
    run = training.set_up(cfg, RunDir(cfg.out_dir).prepare(), lambda event: None)
    torch.backends.cudnn.benchmark = autotune
    sync()
    line = [f"{label}: set_up {time.perf_counter() - t0:.2f} s"]
    for epoch in (1, 2):
        t0 = time.perf_counter()
        training.train_epoch(run, epoch, lambda: False)
        sync()
        line.append(f"epoch {epoch} {time.perf_counter() - t0:.3f} s")
    for k in (1, 2):
        t0 = time.perf_counter()
        training._evaluate(run)
        sync()
        line.append(f"eval{k} {time.perf_counter() - t0:.3f} s")
    counter = itertools.count(1)
    t0 = time.perf_counter()
    training.train_epoch(run, 3, lambda: next(counter) >= STEPS)
    host = time.perf_counter() - t0
    sync()
    drained = time.perf_counter() - t0
    line.append(
        f"{STEPS} steps: host {host / STEPS * 1e3:.2f} ms/step, drained {drained / STEPS * 1e3:.2f} ms/step"
    )
    line.append(f"graph {getattr(run.forward_backward, 'graph', None) is not None}")
    print("; ".join(line), flush=True)
    return run


def side_costs(folder: Path, run: training.Run) -> None:
    row = dict.fromkeys(("train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds"), 0.0)
    t0 = time.perf_counter()
    training.save(run, 2, {"epoch": 2, **row})
    print(f"save checkpoint: {time.perf_counter() - t0:.3f} s")
    history = [
        {**row, "epoch": i, "train_loss": 1 / i, "test_loss": 1 / i, "test_acc": 0.99} for i in range(1, 16)
    ]
    t0 = time.perf_counter()
    plots.plot_loss_curves(history, folder / "loss.png")
    plots.plot_accuracy_curves(history, folder / "accuracy.png")
    print(f"two curve charts: {time.perf_counter() - t0:.3f} s")


def kernels(run: training.Run) -> None:
    from torch.profiler import ProfilerActivity, profile

    counter = itertools.count(1)
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        training.train_epoch(run, 4, lambda: next(counter) >= 10)
        torch.cuda.synchronize()
    print(prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=12))


def profile(device: str) -> None:
    """Every measurement, in a temporary folder: the default model graphed, eager, graphed with cuDNN's
    autotuning, the fast model; then the side costs and the top kernels of the graphed run."""
    folder = Path(tempfile.mkdtemp())
    run = measure(folder, "graph", device)
    measure(folder, "eager", device, cuda_graph=False)
    measure(folder, "graph-autotune", device, autotune=True)
    measure(folder, "graph-fast-model", device, model="fast")
    side_costs(folder, run)
    kernels(run)
