"""The add-in server's own settings: where runs go, whether it is shared, how many trainings at once
(and the one xlwings Server setting that must come from outside, the licence key).

They come from environment variables, so ``python -m excel_addin.server`` (which sets them from its
options) and ``uvicorn excel_addin.server:app`` behind a proxy configure the same way. Each variable and
its default is named here once.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

LICENSE_ENV = "XLWINGS_LICENSE_KEY"
LICENSE_HINT = (
    f"set {LICENSE_ENV}=noncommercial (xlwings Server is PolyForm Noncommercial, which covers educational "
    "use) or to your xlwings licence key"
)
RUNS_ENV = "GRADSHEET_SERVER_RUNS"
SHARED_ENV = "GRADSHEET_SERVER_SHARED"
MAX_TRAININGS_ENV = "GRADSHEET_MAX_TRAININGS"
THREADS_ENV = "GRADSHEET_TRAINING_THREADS"
DEFAULT_RUNS = "runs/server"
# Trainings at once per GPU by default: on an H200, 4 default runs started together each took 10.0-10.6 s of
# training (6.0-6.5 s alone), 2.4x the images per second of one run; 8 took 15-20 s each for 2.8x (README,
# "Benchmark"). Four keeps each student's wait short while the GPU does most of what it can.
TRAININGS_PER_GPU = 4


@dataclass(frozen=True)
class Options:
    """``runs``: the folder holding one folder per workbook; ``shared``: a classroom server (paths in cells
    and settings must stay inside the server's folders); ``max_trainings``: trainings at once (None:
    TRAININGS_PER_GPU per GPU, one without a GPU); ``threads``: CPU threads per training (0: the cores
    shared among the trainings)."""

    runs: Path
    shared: bool = False
    max_trainings: int | None = None
    threads: int = 0

    @staticmethod
    def from_env(env: Mapping[str, str] = os.environ) -> Options:
        """The options the environment sets (a bad number raises ValueError naming the variable)."""
        return Options(
            runs=Path(env.get(RUNS_ENV) or DEFAULT_RUNS).expanduser().resolve(),
            shared=env.get(SHARED_ENV, "").strip().lower() in ("1", "true", "yes", "on"),
            max_trainings=_count(env, MAX_TRAININGS_ENV, minimum=1),
            threads=_count(env, THREADS_ENV, minimum=0) or 0,
        )

    def to_env(self) -> dict[str, str]:
        """The environment variables that give these options (``from_env``'s inverse)."""
        env = {RUNS_ENV: str(self.runs), SHARED_ENV: "true" if self.shared else "false"}
        env[THREADS_ENV] = str(self.threads)
        if self.max_trainings is not None:
            env[MAX_TRAININGS_ENV] = str(self.max_trainings)
        return env


def _count(env: Mapping[str, str], name: str, minimum: int) -> int | None:
    text = env.get(name, "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) < minimum:
        raise ValueError(f"{name} must be a whole number of at least {minimum}, got {text!r}")
    return int(text)


@functools.cache
def options() -> Options:
    """This server's options, read from the environment once."""
    return Options.from_env()
