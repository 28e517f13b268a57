"""How many trainings a machine runs at once, on which device, with how many CPU threads each: one rule
for the add-in server's own queue (``server/runs/local.py``) and the training workers of the distributed
mode (``jobs/supervisor.py``)."""

from __future__ import annotations

import os

# Trainings at once per GPU by default: on an H200, 4 default runs started together each took 10.0-10.6 s of
# training (6.0-6.5 s alone), 2.4x the images per second of one run; 8 took 15-20 s each for 2.8x
# (docs/benchmark.md). Four keeps each student's wait short while the GPU does most of what it can.
TRAININGS_PER_GPU = 4


def slot_count(requested: int | None, gpus: int, on_gpu: bool = True) -> int:
    """Trainings at once: as ``requested``, else TRAININGS_PER_GPU per GPU (at least one GPU's worth when
    asked for the GPU), else one on the CPU."""
    if requested:
        return requested
    return max(gpus, 1) * TRAININGS_PER_GPU if on_gpu and gpus else 1


def gpu_of(slot: int, gpus: int) -> int | None:
    """The one GPU slot ``slot`` uses when there are several (k mod gpus, so trainings spread over them);
    None: the only GPU, or none."""
    return slot % gpus if gpus > 1 else None


def threads_per_training(cpu_trainings: int) -> int:
    """CPU threads for each of ``cpu_trainings`` trainings on the CPU at once: the cores shared among them;
    0 (torch's default) when there are none on the CPU."""
    return max(1, (os.cpu_count() or 1) // cpu_trainings) if cpu_trainings else 0
