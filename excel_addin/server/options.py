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

from ml.config import N_TRAIN_IMAGES

LICENSE_ENV = "XLWINGS_LICENSE_KEY"
LICENSE_HINT = (
    f"set {LICENSE_ENV}=noncommercial (xlwings Server is PolyForm Noncommercial, which covers educational "
    "use) or to your xlwings licence key"
)
RUNS_ENV = "GRADSHEET_SERVER_RUNS"
SHARED_ENV = "GRADSHEET_SERVER_SHARED"
MAX_TRAININGS_ENV = "GRADSHEET_MAX_TRAININGS"
THREADS_ENV = "GRADSHEET_TRAINING_THREADS"
# The distributed mode: the queue, the runs' state and socket.io's messages in this Redis (docs/classroom.md)
REDIS_ENV = "GRADSHEET_REDIS_URL"
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
DEFAULT_RUNS = "runs/server"
# Trainings at once per GPU by default: on an H200, 4 default runs started together each took 10.0-10.6 s of
# training (6.0-6.5 s alone), 2.4x the images per second of one run; 8 took 15-20 s each for 2.8x (README,
# "Benchmark"). Four keeps each student's wait short while the GPU does most of what it can.
TRAININGS_PER_GPU = 4
# A cell function takes a range of at most this many cells (CLASSIFY_PIXELS needs 784), measured before
# anything converts it: a 1000 x 1000 range held up every other request for a minute.
MAX_RANGE_CELLS = 10_000


# The teacher's caps of a shared server: option -> (environment variable, the shared server's default, what
# it caps). A one-person server has none unless set. Defaults for a class of 30 on one machine: each run at
# most 30 epochs and 20 minutes, and the queue as long as the class (one run per student, running or
# waiting).
CAPS = {
    "max_queue": ("GRADSHEET_MAX_QUEUE", 30, "trainings waiting in the queue at most"),
    "max_minutes": ("GRADSHEET_MAX_MINUTES", 20, "minutes a run may train before it is stopped"),
    "max_epochs": ("GRADSHEET_MAX_EPOCHS", 30, "epochs a run may ask for"),
    "max_images": ("GRADSHEET_MAX_IMAGES", N_TRAIN_IMAGES, "training images a run may use"),
}


@dataclass(frozen=True)
class Options:
    """``runs``: the folder holding one folder per user; ``shared``: a classroom server (sign-in, paths in
    cells and settings kept inside the user's folder, the caps of ``CAPS``); ``max_trainings``: trainings at
    once (None: TRAININGS_PER_GPU per GPU, one without a GPU); ``threads``: CPU threads per training (0:
    the cores shared among the trainings); ``max_*``: the caps (None: the mode's default)."""

    runs: Path
    shared: bool = False
    max_trainings: int | None = None
    threads: int = 0
    max_queue: int | None = None
    max_minutes: int | None = None
    max_epochs: int | None = None
    max_images: int | None = None
    redis: str | None = None  # the distributed mode's Redis URL (None: everything in this process)

    def cap(self, name: str) -> int | None:
        """A cap as it applies: its setting, else the shared server's default (a one-person server: none)."""
        value = getattr(self, name)
        return value if value is not None or not self.shared else CAPS[name][1]

    @staticmethod
    def from_env(env: Mapping[str, str] = os.environ) -> Options:
        """The options the environment sets (a bad number raises ValueError naming the variable)."""
        caps = {name: _count(env, variable, minimum=1) for name, (variable, _, _) in CAPS.items()}
        return Options(
            runs=Path(env.get(RUNS_ENV) or DEFAULT_RUNS).expanduser().resolve(),
            shared=env.get(SHARED_ENV, "").strip().lower() in ("1", "true", "yes", "on"),
            max_trainings=_count(env, MAX_TRAININGS_ENV, minimum=1),
            threads=_count(env, THREADS_ENV, minimum=0) or 0,
            **caps,
            redis=redis_url(env.get(REDIS_ENV, "")),
        )

    def to_env(self) -> dict[str, str]:
        """The environment variables that give these options (``from_env``'s inverse)."""
        env = {RUNS_ENV: str(self.runs), SHARED_ENV: "true" if self.shared else "false"}
        env[THREADS_ENV] = str(self.threads)
        if self.max_trainings is not None:
            env[MAX_TRAININGS_ENV] = str(self.max_trainings)
        for name, (variable, _, _) in CAPS.items():
            if getattr(self, name) is not None:
                env[variable] = str(getattr(self, name))
        if self.redis:
            env[REDIS_ENV] = self.redis
        return env


def redis_url(text: str) -> str | None:
    """A Redis URL as given (None for none); ValueError naming the setting for something else."""
    text = text.strip()
    if not text:
        return None
    if not text.startswith(REDIS_SCHEMES):
        raise ValueError(f"{REDIS_ENV} (--redis) must be a URL such as redis://HOST:6379/0, got {text!r}")
    return text


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
