"""Learning-rate schedules as a fraction of the peak rate, per step: one-cycle, cosine, constant."""

from __future__ import annotations

import math

ONE_CYCLE = {"warm_up": 0.25, "div_factor": 20.0, "final_div_factor": 200.0}


def _cos(start: float, end: float, fraction: float) -> float:
    return end + (start - end) / 2.0 * (1.0 + math.cos(math.pi * fraction))


def lr_factor(schedule: str, step: int, total: int) -> float:
    """The learning rate at ``step`` (0-based) of ``total`` steps, as a fraction of the peak.

    "onecycle" is torch's OneCycleLR (cosine warm-up over the first quarter from peak/20, cosine decay to
    peak/4000), with the same values, but defined for every step count (OneCycleLR divides by zero for
    some short runs, e.g. exactly 4 steps).
    """
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        return _cos(1.0, 0.0, min(step, total) / max(total, 1))
    if total <= 1:
        return 1.0  # a single step: at the peak
    start = 1.0 / ONE_CYCLE["div_factor"]
    end = start / ONE_CYCLE["final_div_factor"]
    warm_end = ONE_CYCLE["warm_up"] * total - 1  # the last warm-up step, as OneCycleLR counts it
    if warm_end > 0 and step <= warm_end:
        return _cos(start, 1.0, step / warm_end)
    return _cos(1.0, end, min(max((step - warm_end) / (total - 1 - warm_end), 0.0), 1.0))
