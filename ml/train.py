"""Train the MNIST CNN: ``python -m ml.train`` or ``train(TrainConfig(...), sinks)``.

The loop emits events (``ml.events``) to sinks and knows nothing about where progress is shown. After every
epoch it evaluates on the test set, writes DIR/model.pt (resumable checkpoint), DIR/metrics.csv/.json and
refreshes the loss/accuracy charts; at the end it draws the confusion matrix and misclassified digits.
``should_stop`` is polled after every batch (``--stop-file`` turns a file's existence into that signal), and
Ctrl-C is a clean stop too: the last checkpoint and metrics stay as they were at the last finished epoch.

Speed on a CPU comes from the data path and the kernels, not from workers: the whole data set is in memory
as uint8, batches are sliced and augmented as tensors (``ml.augment``), activations are channels_last, and
the forward/backward run under bfloat16 autocast where the CPU has native bf16 (AVX512-BF16/AMX), at batch
512. On CUDA the same code keeps the data on the GPU and uses bf16 (or fp16 with loss scaling).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the conventional name
from torch import nn

from . import plots
from .augment import AffineAugment
from .checkpoint import load_checkpoint, model_config, save_checkpoint
from .data import MNIST_MEAN, MNIST_STD, Mnist, batches, load_mnist, normalise, steps_per_epoch, to_float
from .events import BatchEnd, EpochEnd, RunEnded, RunStarted, Sink
from .model import VARIANTS, MnistCNN, build_model, count_parameters, summary_rows
from .sinks import ConsoleSink, MetricsFileSink, dispatch

SCHEDULES = ("onecycle", "cosine", "constant")
DEVICES = ("auto", "cpu", "cuda", "mps")
AMP_MODES = ("auto", "off", "bf16", "fp16")
DRY_RUN_STEPS = 2
DRY_RUN_DIR = "runs/dry-run"


@dataclass
class TrainConfig:
    """Everything a training run needs; the defaults are the benchmarked settings."""

    epochs: int = 15
    batch_size: int = 512
    lr: float = 0.4  # peak learning rate (one-cycle), or the constant / initial one
    schedule: str = "onecycle"  # "onecycle" | "cosine" | "constant"
    seed: int = 1
    model: str = "default"  # "default" | "small"
    device: str = "auto"  # "auto" (CUDA, then MPS, then CPU) | "cpu" | "cuda" | "mps"
    subset: int | None = None  # train on the first N images (None/0: all 60,000)
    out_dir: str = "runs/mnist"
    resume: bool = False
    # optimisation details
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.05
    augment: bool = True
    # speed knobs
    amp: str = "auto"  # "auto" (bf16 where native, fp16 on older CUDA, off on MPS) | "off" | "bf16" | "fp16"
    channels_last: bool = True
    compile: bool = False  # torch.compile the training forward/backward
    threads: int = 0  # torch intra-op threads (0: torch's default)
    eval_batch_size: int = 2000
    dry_run: bool = False  # a couple of batches per epoch, one epoch: checks the whole pipeline end to end

    def validate(self) -> None:
        """Raise ValueError naming the first bad setting."""
        if self.epochs < 1:
            raise ValueError(f"epochs must be at least 1, got {self.epochs}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, got {self.lr}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.device not in DEVICES and not str(self.device).startswith("cuda:"):
            raise ValueError(f"device must be one of {DEVICES}, got {self.device!r}")
        if self.amp not in AMP_MODES:
            raise ValueError(f"amp must be one of {AMP_MODES}, got {self.amp!r}")
        if self.subset is not None and self.subset < 0:
            raise ValueError(f"subset must be a positive number of images (or 0 for all), got {self.subset}")
        build_model(self.model)  # raises for an unknown variant


def resolve_device(name: str = "auto") -> torch.device:
    """ "auto" picks CUDA, then Apple's MPS, then the CPU; an explicit device must be available."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but torch sees no CUDA GPU; use --device auto or cpu")
    if name == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError("device 'mps' requested but MPS is not available; use --device auto or cpu")
    return torch.device(name)


def cpu_has_native_bf16() -> bool:
    """True when oneDNN has native bf16 kernels on this CPU (AVX512-BF16 or AMX): bf16 is then faster."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_amp(mode: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for a device, or None for full fp32."""
    if mode == "off":
        return None
    if mode == "bf16":
        return torch.bfloat16
    if mode == "fp16":
        return torch.float16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu":
        return torch.bfloat16 if cpu_has_native_bf16() else None
    return None  # MPS: stay in fp32


def _scheduler(config: TrainConfig, optimizer: torch.optim.Optimizer, total_steps: int):
    if config.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=config.lr,
            total_steps=max(total_steps, 2),
            pct_start=0.25,
            div_factor=20.0,
            final_div_factor=200.0,
            cycle_momentum=False,
        )
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(total_steps, 1))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _step: 1.0)


@dataclass
class _Eval:
    loss: float
    acc: float
    preds: np.ndarray
    probs: np.ndarray


@torch.no_grad()
def evaluate(
    model: nn.Module, x_u8: torch.Tensor, y: torch.Tensor, batch_size: int = 2000, channels_last: bool = True
) -> _Eval:
    """Test loss/accuracy in fp32 (the precision prediction uses), with per-image predictions."""
    was_training = model.training
    model.eval()
    total_loss, preds, probs = 0.0, [], []
    for xb, yb in batches(x_u8, y, batch_size, shuffle=False):
        x = normalise(to_float(xb))
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        logits = model(x).float()
        total_loss += F.cross_entropy(logits, yb, reduction="sum").item()
        p = logits.softmax(1)
        probs.append(p.max(1).values.cpu())
        preds.append(p.argmax(1).cpu())
    model.train(was_training)
    pred = torch.cat(preds).numpy()
    return _Eval(total_loss / len(y), float((pred == y.cpu().numpy()).mean()), pred, torch.cat(probs).numpy())


def _draw_curves(history: list[dict], out: Path, artifacts: dict[str, str], report) -> None:
    try:
        artifacts["loss_curves"] = plots.plot_loss_curves(history, out / "loss_curves.png")
        artifacts["accuracy_curves"] = plots.plot_accuracy_curves(history, out / "accuracy_curves.png")
    except Exception:  # noqa: BLE001 - a chart must not stop training
        report("warning: drawing the training curves failed:\n" + traceback.format_exc())


def _draw_final(result: _Eval, data: Mnist, out: Path, artifacts: dict[str, str], report) -> None:
    try:
        y = data.test_y.cpu().numpy()
        artifacts["confusion_matrix"] = plots.plot_confusion_matrix(
            plots.confusion_matrix(y, result.preds), out / "confusion_matrix.png"
        )
        wrong = np.flatnonzero(result.preds != y)
        artifacts["misclassified"] = plots.plot_misclassified(
            data.test_x.cpu().numpy()[wrong],
            y[wrong],
            result.preds[wrong],
            result.probs[wrong],
            out / "misclassified.png",
        )
    except Exception:  # noqa: BLE001
        report("warning: drawing the final charts failed:\n" + traceback.format_exc())


def train(
    config: TrainConfig, sinks: list[Sink] | None = None, should_stop: Callable[[], bool] | None = None
) -> RunEnded:
    """Run one training; returns how it ended (completed, stopped or failed) with the chart paths.

    ``sinks`` receive the events (None: a console progress bar); metrics files are always written.
    ``should_stop`` is called after every batch; when it returns True the run stops cleanly.
    Bad settings raise ValueError before anything starts; errors during training end the run as "failed".
    """
    config.validate()
    if config.threads > 0:
        torch.set_num_threads(config.threads)
    out = Path(config.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "model.pt"
    all_sinks: list[Sink] = [MetricsFileSink(out), *(sinks if sinks is not None else [ConsoleSink()])]
    failed_sinks: set[int] = set()

    def emit(event) -> None:
        dispatch(all_sinks, event, failed_sinks)

    def report(msg: str) -> None:
        print(msg, file=sys.stderr)

    device = resolve_device(config.device)
    amp_dtype = resolve_amp(config.amp, device)
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)

    # resume state (validated before anything is written)
    ckpt = None
    if config.resume:
        if not ckpt_path.is_file():
            raise ValueError(f"nothing to resume: no checkpoint at {ckpt_path}; train without --resume first")
        ckpt = load_checkpoint(ckpt_path)
        if ckpt["model"]["variant"] != config.model:
            raise ValueError(
                f"{ckpt_path} holds a {ckpt['model']['variant']!r} model "
                f"but --model {config.model!r} was asked"
            )

    data = load_mnist().subset(config.subset)
    if device.type != "cpu":  # keep the (small) data set on the accelerator: no per-batch host transfers
        data = Mnist(
            *(
                t.to(device, non_blocking=True)
                for t in (data.train_x, data.train_y, data.test_x, data.test_y)
            ),
            data.source,
        )
    if config.dry_run:
        data = data.subset(len(data.train_x), min(len(data.test_x), 1000))

    model: MnistCNN = build_model(config.model)
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    model = model.to(device, memory_format=memory_format)
    decay, no_decay = [], []
    for p in model.parameters():
        (no_decay if p.ndim == 1 else decay).append(p)  # no weight decay on BN and biases
    optimizer = torch.optim.SGD(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr,
        momentum=config.momentum,
        nesterov=config.momentum > 0,
    )
    n_train = len(data.train_x)
    # no tiny last batch (bad BatchNorm statistics), but keep every image of tiny training sets
    drop_last = n_train >= 4 * config.batch_size
    steps = steps_per_epoch(n_train, config.batch_size, drop_last)
    if config.dry_run:
        steps = min(steps, DRY_RUN_STEPS)
    epochs = 1 if config.dry_run else config.epochs
    scheduler = _scheduler(config, optimizer, steps * epochs)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16 and device.type == "cuda")

    history: list[dict] = []
    start_epoch = 1
    if ckpt is not None:
        model.load_state_dict(ckpt["state_dict"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if ckpt.get("epochs") == epochs and ckpt.get("steps") == steps:
            scheduler.load_state_dict(ckpt["scheduler"])
        else:  # a different length of run: replay the new schedule up to where training is
            with warnings.catch_warnings():  # "scheduler.step() before optimizer.step()": intended here
                warnings.simplefilter("ignore")
                for _ in range(min(int(ckpt["epoch"]) * steps, steps * epochs - 1)):
                    scheduler.step()
        history = [dict(r) for r in ckpt.get("history", [])]
        start_epoch = int(ckpt["epoch"]) + 1
        gen.manual_seed(config.seed + 1000 * start_epoch)

    train_step_model: nn.Module = torch.compile(model) if config.compile else model
    augment = AffineAugment() if config.augment else None
    criterion = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    autocast = (
        torch.autocast(device_type=device.type, dtype=amp_dtype)
        if amp_dtype is not None
        else contextlib.nullcontext()
    )
    config_dict = asdict(config)
    emit(
        RunStarted(
            config_dict,
            str(device),
            count_parameters(model),
            summary_rows(model),
            epochs,
            start_epoch,
            steps,
            str(out),
        )
    )

    artifacts: dict[str, str] = {}
    last_eval: _Eval | None = None
    status, error, epochs_done = "completed", None, start_epoch - 1
    if history:
        _draw_curves(history, out, artifacts, report)
    try:
        for epoch in range(start_epoch, epochs + 1):
            model.train()
            t0 = time.perf_counter()
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), device=device, dtype=torch.long)
            seen = 0
            stopped = False
            batch_iter = batches(
                data.train_x,
                data.train_y,
                config.batch_size,
                shuffle=True,
                generator=gen,
                drop_last=drop_last,
            )
            for step, (xb, yb) in enumerate(batch_iter, start=1):
                x = to_float(xb)
                if augment is not None:
                    x = augment(x, gen)
                x = normalise(x).contiguous(memory_format=memory_format)
                with autocast:
                    logits = train_step_model(x)
                loss = criterion(logits.float(), yb)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                n = len(yb)
                seen += n
                loss_sum += loss.detach() * n
                correct += (logits.detach().argmax(1) == yb).sum()
                emit(
                    BatchEnd(
                        epoch,
                        step,
                        steps,
                        loss_sum.item() / seen,
                        correct.item() / seen,
                        optimizer.param_groups[0]["lr"],
                        time.perf_counter() - t0,
                    )
                )
                if should_stop is not None and should_stop():
                    stopped = True
                    break
                if step >= steps:
                    break
            if stopped:
                status = "stopped"
                break
            train_loss, train_acc = loss_sum.item() / max(seen, 1), correct.item() / max(seen, 1)
            last_eval = evaluate(
                model, data.test_x, data.test_y, config.eval_batch_size, config.channels_last
            )
            row = {
                "epoch": epoch,
                "train_loss": train_loss,
                "train_acc": train_acc,
                "test_loss": last_eval.loss,
                "test_acc": last_eval.acc,
                "lr": optimizer.param_groups[0]["lr"],
                "seconds": time.perf_counter() - t0,
            }
            history.append(row)
            save_checkpoint(
                ckpt_path,
                {
                    "model": model_config(config.model),
                    "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                    "normalisation": {"mean": MNIST_MEAN, "std": MNIST_STD},
                    "epoch": epoch,
                    "epochs": epochs,
                    "steps": steps,
                    "config": config_dict,
                    "history": history,
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                },
            )
            epochs_done = epoch
            emit(EpochEnd(**row, epochs=epochs, checkpoint=str(ckpt_path)))
            _draw_curves(history, out, artifacts, report)
            if should_stop is not None and should_stop():
                status = "stopped" if epoch < epochs else "completed"
                break
    except KeyboardInterrupt:
        status = "stopped"
    except Exception as exc:  # noqa: BLE001 - reported as a failed run, with files kept
        status, error = "failed", f"{type(exc).__name__}: {exc}"
        report(traceback.format_exc())

    if last_eval is None and epochs_done >= 1 and status != "failed":
        # stopped before finishing an epoch of this run: chart the checkpoint's model (the one kept)
        with contextlib.suppress(Exception):
            model.load_state_dict(load_checkpoint(ckpt_path)["state_dict"])
            last_eval = evaluate(
                model, data.test_x, data.test_y, config.eval_batch_size, config.channels_last
            )
    if last_eval is not None:
        _draw_final(last_eval, data, out, artifacts, report)
    ended = RunEnded(
        status=status,
        epochs_done=epochs_done,
        best_test_acc=max((r["test_acc"] for r in history), default=None),
        final_test_acc=history[-1]["test_acc"] if history else None,
        out_dir=str(out),
        artifacts={
            name: artifacts[name]
            for name in ("loss_curves", "accuracy_curves", "confusion_matrix", "misclassified")
            if name in artifacts
        },
        error=error,
    )
    emit(ended)
    return ended


def stop_file_checker(path: str | os.PathLike) -> Callable[[], bool]:
    """A should_stop that turns True once ``path`` exists (how Excel's Stop button reaches this process)."""
    p = Path(path)
    return p.exists


def build_parser() -> argparse.ArgumentParser:
    d = TrainConfig()
    p = argparse.ArgumentParser(
        prog="python -m ml.train",
        description="Train the MNIST CNN (real MNIST, offline).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--epochs", type=int, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr, help="peak (one-cycle) or initial learning rate")
    p.add_argument("--schedule", choices=SCHEDULES, default=d.schedule)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--model", choices=sorted(VARIANTS), default=d.model)
    p.add_argument("--device", default=d.device, help="auto | cpu | cuda | cuda:N | mps")
    p.add_argument("--subset", type=int, default=0, help="train on the first N images (0: all)")
    p.add_argument("--out", default=d.out_dir, help="output directory (checkpoint, metrics, charts)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/model.pt")
    p.add_argument("--stop-file", help="stop cleanly after the current batch once this file exists")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help=f"one epoch of a couple of batches, to check the setup (default --out {DRY_RUN_DIR})",
    )
    p.add_argument("--no-augment", dest="augment", action="store_false", help="train without augmentation")
    p.add_argument("--amp", choices=AMP_MODES, default=d.amp, help="autocast precision")
    p.add_argument("--no-channels-last", dest="channels_last", action="store_false")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p.add_argument("--threads", type=int, default=d.threads, help="torch threads (0: default)")
    p.add_argument("--label-smoothing", type=float, default=d.label_smoothing)
    p.add_argument("--weight-decay", type=float, default=d.weight_decay)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    names = {f.name for f in fields(TrainConfig)}
    values = {k: v for k, v in vars(args).items() if k in names}
    out = args.out
    if args.dry_run and out == TrainConfig().out_dir:
        out = DRY_RUN_DIR  # a dry run must not replace the real run's model (prediction's default)
    config = TrainConfig(**values, out_dir=out)
    should_stop = None
    if args.stop_file:
        stop = Path(args.stop_file)
        if stop.exists():  # a stale request from an earlier run must not stop this one
            stop.unlink()
        should_stop = stop_file_checker(stop)
    try:
        ended = train(config, [ConsoleSink()], should_stop)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 1 if ended.status == "failed" else 0


if __name__ == "__main__":
    sys.exit(main())
