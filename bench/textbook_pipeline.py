"""The textbook MNIST pipeline, the baseline of gradsheet's speed figures (run by ``bench/textbook.py``).

What a course's notebook does: a torchvision-style dataset of PIL images with per-sample transforms
(RandomAffine, ToTensor, Normalize) through a ``DataLoader`` (batch 128, one worker process), plain NCHW
fp32, the same model and SGD. ``epoch_seconds`` times the training of one epoch (after a few untimed
warm-up steps, as gradsheet's own pipeline is timed); ``train_to`` trains until a target test accuracy or
a number of epochs, evaluating after every epoch (the time-to-accuracy baseline of ``bench/mnist_bench.py``,
run as ``bench/textbook.py``, its own process).
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F  # noqa: N812 - the conventional name

from ml.data import MNIST_MEAN, MNIST_STD, load_mnist, normalise, to_float
from ml.model import build_model

BATCH_SIZE = 128
WORKERS = 1
WARMUP_STEPS = 5  # untimed steps before a timed pipeline (one-time kernel set-up)


class PilMnist(torch.utils.data.Dataset):
    """What torchvision.datasets.MNIST does per item: a PIL image through per-sample transforms."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        from PIL import Image

        img = Image.fromarray(self.images[i].numpy(), mode="L")
        return self.transform(img), int(self.labels[i])


def loader(batch_size: int = BATCH_SIZE, workers: int = WORKERS) -> torch.utils.data.DataLoader:
    """The training images with the textbook's per-sample augmentation."""
    from torchvision import transforms

    data = load_mnist()
    transform = transforms.Compose(
        [
            transforms.RandomAffine(degrees=10, translate=(0.09, 0.09), scale=(0.9, 1.1), shear=8),
            transforms.ToTensor(),
            transforms.Normalize((MNIST_MEAN,), (MNIST_STD,)),
        ]
    )
    dataset = PilMnist(data.train_x, data.train_y, transform)
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=True, num_workers=workers, drop_last=True
    )


def optimizer(model: torch.nn.Module, lr: float = 0.05) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4)


def warm_up(batch_size: int = BATCH_SIZE) -> None:
    """A few untimed steps on a throwaway model: the kernels' one-time set-up is not counted."""
    model = build_model("default").train()
    opt = optimizer(model)
    for _ in range(WARMUP_STEPS):
        loss = F.cross_entropy(model(torch.randn(batch_size, 1, 28, 28)), torch.arange(batch_size) % 10)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def train_steps(model, opt, batches, max_steps: int | None, scheduler=None) -> int:
    """Train on ``batches`` (at most ``max_steps``); returns the steps taken."""
    model.train()
    steps = 0
    for x, y in batches:
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if scheduler is not None:
            scheduler.step()
        steps += 1
        if max_steps and steps >= max_steps:
            break
    return steps


def epoch_seconds(max_steps: int | None, seed: int = 0) -> dict:
    """Training-only seconds of one epoch (estimated from ``max_steps`` when given)."""
    torch.manual_seed(seed)
    batches = loader()
    model = build_model("default")
    opt = optimizer(model)
    warm_up()
    t0 = time.perf_counter()
    steps = train_steps(model, opt, batches, max_steps)
    elapsed = time.perf_counter() - t0
    return {
        "steps": steps,
        "batch_size": BATCH_SIZE,
        "workers": WORKERS,
        "warmup_steps": WARMUP_STEPS,
        "elapsed_s": elapsed,
        "epoch_s": elapsed / steps * len(batches),
        "full_epoch": steps == len(batches),
    }


@torch.no_grad()
def test_accuracy(model: torch.nn.Module) -> float:
    model.eval()
    data = load_mnist()
    correct = 0
    for start in range(0, len(data.test_x), 2000):
        x = normalise(to_float(data.test_x[start : start + 2000]))
        correct += int((model(x).argmax(1) == data.test_y[start : start + 2000]).sum())
    return correct / len(data.test_x)


def train_to(target: float, epochs: int, seed: int, lr: float) -> dict:
    """Train the default model with the textbook pipeline (one-cycle learning rate, as gradsheet), stopping
    at ``target`` test accuracy or after ``epochs``; every epoch's test accuracy and elapsed time."""
    start = time.perf_counter()
    torch.manual_seed(seed)
    batches = loader()
    model = build_model("default")
    opt = optimizer(model, lr)
    total = epochs * len(batches)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total, pct_start=0.25)
    record = {"target": target, "seed": seed, "lr": lr, "epochs": [], "reached_s": None}
    for epoch in range(1, epochs + 1):
        train_steps(model, opt, batches, None, scheduler)
        acc = test_accuracy(model)
        elapsed = time.perf_counter() - start
        record["epochs"].append({"epoch": epoch, "test_acc": acc, "elapsed_s": elapsed})
        print(f"textbook epoch {epoch}: test accuracy {acc:.2%} at {elapsed:.0f} s", flush=True)
        if acc >= target:
            record["reached_s"] = elapsed
            break
    return record
