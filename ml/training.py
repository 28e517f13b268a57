"""A training run of the MNIST CNN: ``train(TrainConfig(...), sinks)`` (its command line: ``ml.train``).

A run goes through named phases: ``set_up`` (folder, lock, data, model, optimizer), ``restore`` (for
``--resume``), ``train_epoch`` (one pass over the training images), ``save`` (checkpoint after each
evaluated epoch) and ``finish`` (final evaluation, the run's end). The loop emits events (``ml.events``)
to sinks and knows nothing about where progress is shown: the metrics files, the charts, a console bar
or an Excel sheet are all sinks.

Nothing is lost when a run ends early. A stop request (the run's stop file, ``--stop-file``, Ctrl-C) ends
it after the current batch; a loss that turns NaN or infinite ends it as failed, naming the epoch and step;
an error ends it as failed. In every case the checkpoint and metrics of the last finished epoch stay, and
a non-finite model is never saved.

Speed on a CPU comes from the data path and the kernels, not from workers: the whole data set is in memory
as uint8, batches are sliced and augmented as tensors (``ml.augment``), activations are channels_last, and
the forward/backward run under bfloat16 autocast where the CPU has native bf16 (AVX512-BF16/AMX), at batch
512. On a GPU the data stays on the device, each step's forward and backward is one replayed CUDA graph
(``ml.cuda_graph``) and progress is read from on-device accumulators a few times a second, so the host
neither waits for the GPU inside an epoch nor makes it wait for ~250 separate kernel launches per step.
"""

from __future__ import annotations

import contextlib
import functools
import math
import sys
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the conventional name
from torch import nn

from . import cuda_graph, run_lock
from .augment import AffineAugment, view_averaged_softmax
from .checkpoint import (
    RESUME_KEYS,
    CheckpointError,
    load_checkpoint,
    model_from_checkpoint,
    save_checkpoint,
    spec_of,
)
from .config import TrainConfig
from .data import MNIST_MEAN, MNIST_STD, Mnist, batches, load_mnist, normalise, steps_per_epoch, to_float
from .device import autocast, needs_grad_scaler, resolve_amp, resolve_device, syncs_every_step
from .events import BatchEnd, EpochEnd, Evaluated, RunEnded, RunStarted, Sink
from .model import MnistCNN, count_parameters
from .run_dir import DiskFullError, RunDir, metric_row
from .schedule import lr_factor
from .sinks import ChartSink, ConsoleSink, MetricsFileSink, dispatch
from .summary import summary_rows
from .tta import TTA_VIEWS

DRY_RUN_STEPS = 2
PROGRESS_EVERY_S = 0.5  # how often a GPU run reads its progress back (a CPU run reads every step)


class DivergedError(RuntimeError):
    """The loss became NaN or infinite: the run cannot continue."""


# ---- a run's state ----------------------------------------------------------------------------------


@dataclass
class Run:
    """What ``set_up`` builds and the later phases use."""

    config: TrainConfig
    run_dir: RunDir
    device: torch.device
    data: Mnist
    model: MnistCNN
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    autocast: contextlib.AbstractContextManager
    augment: AffineAugment | None
    criterion: nn.Module
    gen: torch.Generator  # the shuffling order (on the CPU)
    aug_gen: torch.Generator  # the augmentation's random numbers, on the device (the CPU's: gen itself)
    steps: int  # per epoch
    epochs: int
    drop_last: bool
    emit: Callable[[object], None]
    history: list[dict[str, float]] = field(default_factory=list)
    start_epoch: int = 1
    step_model: nn.Module | None = None  # the module the training steps call (compiled or not)
    totals: StepTotals | None = None  # the current epoch's progress, on the device
    forward_backward: Callable[[torch.Tensor, torch.Tensor], None] | None = None  # see step_function

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.config.channels_last else torch.contiguous_format


@dataclass
class EvalResult:
    loss: float
    acc: float
    preds: np.ndarray
    confidence: np.ndarray


@torch.no_grad()
def evaluate(
    model: nn.Module,
    x_u8: torch.Tensor,
    y: torch.Tensor,
    batch_size: int = 2000,
    channels_last: bool = True,
    tta: int = 0,
) -> EvalResult:
    """Test loss and accuracy in fp32 (the precision prediction uses), with per-image predictions; with
    ``tta`` views the softmax is averaged over the image and its small shifts (ml.tta.TTA_VIEWS).

    Everything accumulates on the data's device and comes back in one transfer at the end.
    """
    memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def prepare(view: torch.Tensor) -> torch.Tensor:
        return normalise(view.clone()).contiguous(memory_format=memory_format)

    was_training = model.training
    model.eval()
    total_loss = torch.zeros((), device=x_u8.device)
    preds, confidence = [], []
    for xb, yb in batches(x_u8, y, batch_size, shuffle=False):
        probs = view_averaged_softmax(model, to_float(xb), TTA_VIEWS[tta], prepare)
        total_loss += F.nll_loss(probs.clamp_min(1e-12).log(), yb, reduction="sum")
        top = probs.max(1)
        preds.append(top.indices)
        confidence.append(top.values)
    model.train(was_training)
    pred = torch.cat(preds).cpu().numpy()
    loss = float(total_loss) / max(len(y), 1)
    acc = float((pred == y.cpu().numpy()).mean()) if len(y) else 0.0
    return EvalResult(loss, acc, pred, torch.cat(confidence).cpu().numpy())


# ---- phases -----------------------------------------------------------------------------------------


def _optimizer(config: TrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for p in model.parameters():
        (no_decay if p.ndim == 1 else decay).append(p)  # no weight decay on BN and biases
    on_gpu = decay[0].device.type == "cuda"
    return torch.optim.SGD(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr,
        momentum=config.momentum,
        nesterov=config.momentum > 0,
        fused=on_gpu or None,  # on a GPU one kernel per group instead of a dozen launches per step
    )


def _data(config: TrainConfig, device: torch.device) -> Mnist:
    data = load_mnist().subset(config.subset)
    if config.dry_run:
        data = data.subset(len(data.train_x), min(len(data.test_x), 1000))
    if device.type != "cpu":  # keep the (small) data set on the accelerator: no per-batch host transfers
        data = Mnist(
            *(
                t.to(device, non_blocking=True)
                for t in (data.train_x, data.train_y, data.test_x, data.test_y)
            ),
            data.source,
        )
    return data


def set_up(config: TrainConfig, run_dir: RunDir, emit: Callable[[object], None]) -> Run:
    """Build everything a run needs; raises ValueError for settings that cannot work here."""
    device = resolve_device(config.device)
    amp_dtype = resolve_amp(config.amp, device)
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    # cuDNN's autotuning (cudnn.benchmark) stays off: on an H200 it cost ~3.5 s once per process (1.4 s in
    # the first epoch, 2.2 s in the first evaluation) and won nothing after (0.149 vs 0.147 s per epoch).
    data = _data(config, device)
    model = MnistCNN(config.model_spec()).to(device, memory_format=(
        torch.channels_last if config.channels_last else torch.contiguous_format
    ))  # fmt: skip
    optimizer = _optimizer(config, model)
    n_train = len(data.train_x)
    drop_last = n_train >= 4 * config.batch_size  # no tiny last batch, but keep every image of tiny sets
    steps = steps_per_epoch(n_train, config.batch_size, drop_last)
    if config.dry_run:
        steps = min(steps, DRY_RUN_STEPS)
    epochs = 1 if config.dry_run else config.epochs
    total = steps * epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(config.schedule, step, total)
    )
    run = Run(
        config=config,
        run_dir=run_dir,
        device=device,
        data=data,
        model=model,
        optimizer=optimizer,
        scheduler=scheduler,
        scaler=torch.amp.GradScaler(device.type, enabled=needs_grad_scaler(device, amp_dtype)),
        autocast=autocast(device, amp_dtype),
        augment=AffineAugment() if config.augment else None,
        criterion=nn.CrossEntropyLoss(label_smoothing=config.label_smoothing),
        gen=gen,
        aug_gen=gen if device.type == "cpu" else torch.Generator(device=device).manual_seed(config.seed),
        steps=steps,
        epochs=epochs,
        drop_last=drop_last,
        emit=emit,
    )
    if config.resume:
        restore(run)
    run.step_model = model if config.compile == "off" else torch.compile(model, mode=config.compile)
    run.totals = StepTotals(device)
    run.forward_backward = step_function(run)
    return run


def restore(run: Run) -> None:
    """Continue from the run folder's checkpoint: weights, optimizer, schedule position, history.

    Every reason it cannot (no checkpoint, exported weights without training state, another model,
    nothing left to train) is a ValueError that says what to do.
    """
    path = run.run_dir.checkpoint
    if not path.is_file():
        raise ValueError(f"nothing to resume: no checkpoint at {path}; train without --resume first")
    ckpt = load_checkpoint(path)
    missing = [key for key in RESUME_KEYS if key not in ckpt]
    if missing:
        raise ValueError(
            f"cannot resume from {path}: it holds exported weights without the training state "
            f"({', '.join(missing)}); train without --resume to start a new run"
        )
    spec, wanted = spec_of(ckpt, str(path)), run.config.model_spec()
    if spec.layers != wanted.layers:
        raise ValueError(
            f"cannot resume: {path} holds a {spec.name!r} model ({spec.n_params:,} parameters) but the "
            f"settings ask for {run.config.model!r}; choose model {spec.name} or train without --resume"
        )
    done = _whole_entry(ckpt, "epoch", path)
    if done >= run.epochs:
        raise ValueError(
            f"nothing to resume: {path} has already trained {done} of {run.epochs} epochs; "
            "ask for more epochs to train longer"
        )
    try:
        run.model.load_state_dict(model_from_checkpoint(ckpt, str(path)).state_dict())
        run.optimizer.load_state_dict(ckpt["optimizer"])
    except (CheckpointError, ValueError, KeyError, RuntimeError) as error:
        raise ValueError(f"cannot resume from {path}: its training state does not fit ({error})") from None
    with warnings.catch_warnings():  # "scheduler.step() before optimizer.step()": intended here
        warnings.simplefilter("ignore")
        for _ in range(min(done * run.steps, run.steps * run.epochs - 1)):
            run.scheduler.step()
    rows = [metric_row(raw) for raw in ckpt["history"]] if isinstance(ckpt["history"], list) else []
    run.history = [row for row in rows if row is not None and row["epoch"] <= done]
    run.start_epoch = done + 1
    run.gen.manual_seed(run.config.seed + 1000 * run.start_epoch)
    if run.aug_gen is not run.gen:
        run.aug_gen.manual_seed(run.config.seed + 1000 * run.start_epoch)


def _whole_entry(ckpt: dict, key: str, path: Path) -> int:
    value = ckpt.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"cannot resume from {path}: its {key!r} entry is {value!r}, not a count")
    return value


@dataclass
class EpochStats:
    train_loss: float
    train_acc: float


class StepTotals:
    """An epoch's progress, accumulated on the device by the steps themselves (no host sync per step): the
    summed loss, the correct predictions, the step count and the first step whose loss was not finite (0:
    none). The same tensors serve the whole run (zeroed in place each epoch), as a CUDA graph needs."""

    def __init__(self, device: torch.device):
        self.values = torch.zeros(4, device=device)
        self.loss_sum, self.correct, self.steps, self.first_bad = self.values.unbind()

    def add(self, loss: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> None:
        self.steps += 1
        self.loss_sum += loss * len(labels)
        self.correct += (logits.argmax(1) == labels).sum()
        self.first_bad.copy_(
            torch.where((self.first_bad == 0) & ~torch.isfinite(loss), self.steps, self.first_bad)
        )


def forward_backward(run: Run, xb: torch.Tensor, yb: torch.Tensor) -> None:
    """A step up to the gradients: augment, forward, loss, backward, and the progress totals."""
    x = to_float(xb)
    if run.augment is not None:
        x = run.augment(x, run.aug_gen)
    x = normalise(x).contiguous(memory_format=run.memory_format)
    with run.autocast:
        logits = run.step_model(x)
    loss = run.criterion(logits.float(), yb)
    run.optimizer.zero_grad(set_to_none=True)
    run.scaler.scale(loss).backward()
    run.totals.add(loss.detach(), logits.detach(), yb)


def step_function(run: Run) -> Callable[[torch.Tensor, torch.Tensor], None]:
    """What computes a batch's gradients: ``forward_backward`` itself, or replayed as a CUDA graph."""
    body = functools.partial(forward_backward, run)
    why_not = cuda_graph.unsupported_reason(
        run.device, run.drop_last, run.scaler.is_enabled(), run.config.compile != "off"
    )
    if not run.config.cuda_graph or why_not is not None:
        return body
    return cuda_graph.GraphedStep(body, (run.aug_gen,) if run.augment is not None else ())


def train_epoch(run: Run, epoch: int, should_stop: Callable[[], bool]) -> EpochStats | None:
    """One pass over the training images; None when a stop was requested (the epoch is abandoned).

    Loss, accuracy and a non-finite-loss flag accumulate on the device; they are read back (one transfer)
    every step on a CPU and every PROGRESS_EVERY_S seconds on a GPU. Raises DivergedError on a NaN/inf loss.
    """
    run.step_model.train()
    t0 = last_sync = time.perf_counter()
    totals = run.totals
    totals.values.zero_()
    seen, total_loss, n_correct = 0, 0.0, 0.0  # the totals as last read back (the last step always is)
    sync_every_step = syncs_every_step(run.device)
    batch_iter = batches(
        run.data.train_x, run.data.train_y, run.config.batch_size,
        shuffle=True, generator=run.gen, drop_last=run.drop_last,
    )  # fmt: skip
    for step, (xb, yb) in enumerate(batch_iter, start=1):
        run.forward_backward(xb, yb)
        run.scaler.step(run.optimizer)
        run.scaler.update()
        run.scheduler.step()
        seen += len(yb)
        last = step >= run.steps
        if sync_every_step or last or time.perf_counter() - last_sync >= PROGRESS_EVERY_S:
            total_loss, n_correct, _, bad = totals.values.tolist()  # waits for the device's queued steps
            now = last_sync = time.perf_counter()
            if bad:
                lr = run.optimizer.param_groups[0]["lr"]
                raise DivergedError(
                    f"training diverged: the loss became {'NaN' if math.isnan(total_loss) else 'infinite'} "
                    f"at epoch {epoch}, step {int(bad)} (learning rate {lr:.3g}, peak {run.config.lr:g}); "
                    "train again with a lower learning rate"
                )
            lr = run.optimizer.param_groups[0]["lr"]
            run.emit(BatchEnd(epoch, step, run.steps, total_loss / seen, n_correct / seen, lr, now - t0))
        if should_stop():
            return None
        if last:
            break
    return EpochStats(total_loss / max(seen, 1), n_correct / max(seen, 1))


def save(run: Run, epoch: int, row: dict[str, float]) -> None:
    """Checkpoint after an evaluated epoch: the model, the training state and the history so far (the row
    joins ``run.history`` once its checkpoint is written: the history is what the kept checkpoint holds)."""
    history = [*run.history, row]
    save_checkpoint(
        run.run_dir.checkpoint,
        {
            "model": run.config.model_spec().to_dict(),
            "state_dict": {k: v.detach().cpu() for k, v in run.model.state_dict().items()},
            "normalisation": {"mean": MNIST_MEAN, "std": MNIST_STD},
            "epoch": epoch,
            "epochs": run.epochs,
            "steps": run.steps,
            "config": asdict(run.config),
            "history": history,
            "optimizer": run.optimizer.state_dict(),
            "scheduler": run.scheduler.state_dict(),
        },
    )
    run.history.append(row)


def _evaluate(run: Run) -> EvalResult:
    data, config = run.data, run.config
    return evaluate(
        run.model, data.test_x, data.test_y, config.eval_batch_size, config.channels_last, config.tta
    )


def evaluated(config: TrainConfig, epoch: int, epochs: int) -> bool:
    """Whether the test set is evaluated after this epoch (every ``eval_every``; the last one always)."""
    return epoch == epochs or (config.eval_every > 0 and epoch % config.eval_every == 0)


def _run_epochs(run: Run, should_stop: Callable[[], bool]) -> tuple[str, str | None, EvalResult | None]:
    """Train epochs until done, stopped or failed: (status, error, the last evaluation)."""
    last_eval = None
    try:
        for epoch in range(run.start_epoch, run.epochs + 1):
            t0 = time.perf_counter()
            stats = train_epoch(run, epoch, should_stop)
            if stats is None:
                return "stopped", None, last_eval
            test = last_eval = _evaluate(run) if evaluated(run.config, epoch, run.epochs) else None
            row = {
                "epoch": epoch,
                "train_loss": stats.train_loss,
                "train_acc": stats.train_acc,
                "test_loss": test.loss if test else math.nan,  # NaN: not evaluated after this epoch
                "test_acc": test.acc if test else math.nan,
                "lr": run.optimizer.param_groups[0]["lr"],
                "seconds": time.perf_counter() - t0,
            }
            save(run, epoch, row)
            run.emit(EpochEnd(**row, epochs=run.epochs, checkpoint=str(run.run_dir.checkpoint)))
            if epoch < run.epochs and should_stop():
                return "stopped", None, last_eval
        return "completed", None, last_eval
    except KeyboardInterrupt:
        return "stopped", None, last_eval
    except (DivergedError, DiskFullError) as error:  # said as they are, with what is kept
        kept = f"; the checkpoint of epoch {int(run.history[-1]['epoch'])} is kept" if run.history else ""
        return "failed", f"{error}{kept}", None
    except Exception as error:  # noqa: BLE001 - reported as a failed run, with files kept
        traceback.print_exc(file=sys.stderr)
        return "failed", f"{type(error).__name__}: {error}", None


def finish(run: Run, status: str, error: str | None, last_eval: EvalResult | None) -> RunEnded:
    """The final evaluation for the charts (of the kept checkpoint when the run ended mid-epoch), then
    the run's end. A second Ctrl-C here skips the charts; the end is recorded either way."""
    try:
        if last_eval is None and run.history and run.run_dir.checkpoint.is_file():
            run.model.load_state_dict(load_checkpoint(run.run_dir.checkpoint)["state_dict"])
            last_eval = _evaluate(run)
        if last_eval is not None:
            run.emit(
                Evaluated(
                    run.data.test_y.cpu().numpy(),
                    last_eval.preds,
                    last_eval.confidence,
                    run.data.test_x.cpu().numpy(),
                )
            )
    except KeyboardInterrupt:
        pass  # a second Ctrl-C: no charts, but the run's end is still recorded below
    except Exception:  # noqa: BLE001 - charts are a nicety; the run's files are complete
        traceback.print_exc(file=sys.stderr)
    history = run.history
    tested = [r["test_acc"] for r in history if math.isfinite(r["test_acc"])]
    ended = RunEnded(
        status=status,
        epochs_done=int(history[-1]["epoch"]) if history else 0,
        best_test_acc=max(tested, default=None),
        final_test_acc=tested[-1] if tested else None,
        out_dir=str(run.run_dir.path),
        error=error,
    )
    run.emit(ended)
    return ended


def train(
    config: TrainConfig,
    sinks: list[Sink] | None = None,
    should_stop: Callable[[], bool] | None = None,
    lock: run_lock.RunLock | None = None,
) -> RunEnded:
    """Run one training; returns how it ended (completed, stopped or failed).

    ``sinks`` receive the events (None: a console progress bar); the metrics files and charts are always
    written. The run holds its output folder's lock (``lock``: one taken by the caller, else taken here);
    it stops after the current batch when ``should_stop()`` turns True or a stop request for the folder
    appears. Settings that cannot work raise ValueError (``run_lock.AlreadyRunningError`` when another run
    writes into the folder) before anything starts; errors during training end the run as "failed".
    """
    config.validate()
    run_dir = RunDir(config.out_dir).prepare()
    own_lock = lock is None
    lock = run_lock.acquire(run_dir.path) if own_lock else lock
    threads = torch.get_num_threads()
    try:
        if config.threads > 0:
            torch.set_num_threads(config.threads)
        all_sinks: list[Sink] = []  # filled once the run's device is known; set_up emits nothing
        failed: set[int] = set()
        run = set_up(config, run_dir, lambda event: dispatch(all_sinks, event, failed))
        # where the device runs ahead of the host (progress not read every step), charts must not hold it up
        charts = ChartSink(run_dir, background=not syncs_every_step(run.device))
        all_sinks += [MetricsFileSink(run_dir), charts, *([ConsoleSink()] if sinks is None else sinks)]

        def stop() -> bool:
            return run_lock.stop_requested(run_dir.path) or bool(should_stop and should_stop())

        run.emit(_started(run))
        return finish(run, *_run_epochs(run, stop))
    finally:
        torch.set_num_threads(threads)
        if own_lock:
            run_lock.release(lock)


def _started(run: Run) -> RunStarted:
    return RunStarted(
        asdict(run.config),
        str(run.device),
        count_parameters(run.model),
        summary_rows(run.model),
        run.epochs,
        run.start_epoch,
        run.steps,
        str(run.run_dir.path),
        [dict(r) for r in run.history],
    )
