"""A training step's forward and backward captured once as a CUDA graph, then replayed for every batch.

On a GPU one step of these small networks is ~250 kernels that together run for about a millisecond, and
launching them one by one from Python takes several: the GPU waits on the host (measured on an H200: 5.6 ms
per step launched, 1.2-1.4 ms of GPU work). A CUDA graph launches the whole recorded step, augmentation, loss,
backward and the progress accumulators included, with one call. The optimizer step and the learning-rate
schedule stay ordinary eager code after it, so checkpoints, resuming and the schedule are the same as
without the graph.

A graph replays fixed memory: the batch is copied into static input tensors, the gradients are the tensors
that the captured backward wrote (never set to None between steps), and the accumulators are the same
tensors all run long (zeroed in place each epoch). It needs one batch shape (every batch full), no
GradScaler (bf16 or fp32, not fp16) and no torch.compile; ``unsupported_reason`` says why a run cannot use
one. The first ``WARMUP_STEPS`` steps run eagerly on a side stream (cuDNN picks its kernels, the
allocator settles), as PyTorch's documentation asks before a capture. If the capture fails anyway, the run
warns once and goes on eagerly: a graph is a speed-up, never a reason for a training to fail.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch

WARMUP_STEPS = 3

Body = Callable[[torch.Tensor, torch.Tensor], None]  # one step's forward + backward on (images, labels)


def unsupported_reason(
    device: torch.device, full_batches: bool, scaler_enabled: bool, compiled: bool
) -> str | None:
    """None when a run's steps can be one CUDA graph, else why not."""
    if device.type != "cuda":
        return "CUDA graphs need a CUDA device"
    if not full_batches:
        return "the training set is not a whole number of full batches (a smaller last batch)"
    if scaler_enabled:
        return "fp16 loss scaling reads values back on the host"
    if compiled:
        return "torch.compile manages its own graphs (reduce-overhead)"
    return None


class GraphedStep:
    """Calls ``body(images, labels)`` for each batch: eagerly while warming up, then as a replayed graph.

    ``generators`` are the non-default CUDA generators the body draws from (the augmentation's); they are
    registered with the graph so that every replay draws new random numbers, as the default generator
    (Dropout's) does by itself.
    """

    def __init__(self, body: Body, generators: tuple[torch.Generator, ...] = ()):
        self.body = body
        self.generators = generators
        self.graph: torch.cuda.CUDAGraph | None = None
        self.images: torch.Tensor | None = None
        self.labels: torch.Tensor | None = None
        self.warmed = 0
        self.failed: str | None = None  # why the capture failed: the steps then stay eager

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        if self.graph is not None:
            self.images.copy_(images)
            self.labels.copy_(labels)
            self.graph.replay()
        elif self.failed is not None:
            self.body(images, labels)
        elif self.warmed < WARMUP_STEPS:
            self._warm_up(images, labels)
        else:
            self._capture(images, labels)

    def _warm_up(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        side = torch.cuda.Stream(images.device)
        side.wait_stream(torch.cuda.current_stream(images.device))
        with torch.cuda.stream(side):
            self.body(images, labels)
        torch.cuda.current_stream(images.device).wait_stream(side)
        self.warmed += 1

    def _capture(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        """Record the body on static copies of this batch, then replay it once to train on the batch."""
        self.images, self.labels = images.clone(), labels.clone()
        graph = torch.cuda.CUDAGraph()
        try:
            for generator in self.generators:
                graph.register_generator_state(generator)
            with torch.cuda.graph(graph):
                self.body(self.images, self.labels)
        except Exception as error:  # noqa: BLE001 - any capture failure: train on without the graph
            torch.cuda.synchronize(images.device)
            self.failed = f"{type(error).__name__}: {error}"
            warnings.warn(
                f"CUDA graph capture failed ({self.failed}); training goes on without it", stacklevel=2
            )
            self.body(images, labels)
            return
        self.graph = graph
        graph.replay()
