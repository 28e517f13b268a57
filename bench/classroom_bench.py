"""A class at the add-in server: simulated students with class codes, cells, streams, Train presses and
faults, against the embedded default or the distributed mode, every answer checked.

    python bench/classroom_bench.py --students 20 --seconds 90 [--out FILE.json]
    python bench/classroom_bench.py --students 20 --web-processes 2 --train-workers 2 --redis auto \\
        --seconds 90 [--out FILE.json]

Without ``--redis`` it measures the embedded default (``python -m excel_addin.server --shared``: one process,
a fresh training process per press). With ``--redis URL`` (``auto``: a private ``redis-server`` on a free
port, which needs the Debian package) it runs W web processes (uvicorn's workers on one port) and K
training workers of one warm slot each against that Redis (a given Redis should be one of its own: the runs
stay in it). Every student (``classroom_students``) signs in with a class code of their own (enrolled with
the real ``class add`` command), keeps the task pane's TRAIN_PROGRESS stream and status poll going, and
calls BACKPROP_LOSS, BACKPROP_CURVE, CLASSIFY_PIXELS (real MNIST test digits) and MODEL_SUMMARY, each
answer checked against the engine in this process (``classroom_answers``); ``--trainers`` of them press
Train once (1,000 images, the small model, ``--epochs``) at times spread over the first half of the class.

The faults are part of the run (``--no-faults`` leaves them out): a third of the way in, a training's
process is killed with SIGKILL mid-run (embedded: the run's training process; distributed: the slot that
runs it); half way, a web process is (embedded: the server, started again on its port; distributed: one of
uvicorn's processes, which uvicorn replaces). A student whose run was interrupted, or dropped from the queue
by the restart, presses Train again as the message tells them (the server does not requeue a run).

Before the class, the same command times a Train press to its first training step: cold, on a one-person
embedded server (its fresh training process; ``started_at`` is a lower bound of the first step, the
first progress.json showing a step an upper bound), and, in the distributed mode, warm (an idle warm slot,
to the first step in the run's Redis stream).

Prints a table and writes JSON (default runs/bench/classroom.json, which git ignores; the committed records
are written with ``--out bench/results/...``) with the machine (processor, cores, load average).
"""

from __future__ import annotations

import os
import platform
import shlex
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("XLWINGS_LICENSE_KEY", "noncommercial")

import classroom_answers  # noqa: E402
from bench_record import add_out_option, write_record  # noqa: E402
from classroom_report import print_table, summarise  # noqa: E402
from classroom_sites import EmbeddedSite, Fault, Faults, RedisSite, cold_first_step  # noqa: E402
from classroom_students import ClassStudent, Clock, Plan, Tally  # noqa: E402
from press_to_first_step import RUN  # noqa: E402

from excel_addin.server.auth.names import user_id_for  # noqa: E402
from excel_addin.testing.student import Student  # noqa: E402
from ml.cli import Parser  # noqa: E402

PROG = "python bench/classroom_bench.py"
WORKER_FAULT_AT, WEB_FAULT_AT, LATEST_FAULT_AT = 0.35, 0.55, 0.8  # fractions of the class
PRESSES_BY = 0.5  # the trainers press within this fraction of the class
TIMER = "Timer"  # the user who presses for the warm timing, before the class


@dataclass(frozen=True)
class ClassConfig:
    """One class: how many students and trainers, for how long, against which server."""

    students: int = 20
    trainers: int | None = None  # None: half the students
    seconds: float = 90.0
    redis: str | None = None  # None: the embedded default; "auto": a private redis-server; else its URL
    web_processes: int = 1
    train_workers: int = 1
    epochs: int = 3
    faults: bool = True
    timings: bool = True  # time the cold and warm presses first
    drain_s: float = 600.0  # how long pressed runs may take to end after the class
    seed: int = 0

    @property
    def trainer_count(self) -> int:
        return self.students // 2 if self.trainers is None else min(self.trainers, self.students)

    @property
    def settings(self) -> dict:
        """A trainer's Train settings (the small model on 1,000 images, CPU)."""
        return {**RUN, "epochs": self.epochs}


def build_parser() -> Parser:
    p = Parser(prog=PROG, description=__doc__.splitlines()[0])
    p.add_argument("--students", type=int, default=20, help="simulated students (default 20)")
    p.add_argument(
        "--web-processes", type=int, help="web processes (needs --redis; default 2 with it, else 1)"
    )
    p.add_argument("--train-workers", type=int, help="training workers (needs --redis; default 2 with it)")
    p.add_argument(
        "--redis", metavar="URL", help="the distributed mode on this Redis; auto: start a private one"
    )
    p.add_argument("--seconds", type=float, default=90.0, help="length of the class (default 90)")
    p.add_argument("--trainers", type=int, help="students who press Train (default: half)")
    p.add_argument("--epochs", type=int, default=3, help="epochs of each pressed training (default 3)")
    p.add_argument("--no-faults", action="store_true", help="leave the kill -9 faults out")
    p.add_argument("--seed", type=int, default=0, help="what the students ask, and when (default 0)")
    add_out_option(p, "classroom.json")
    return p


def config_of(args) -> ClassConfig:
    """The class the command line asks for; ValueError for what cannot be."""
    if args.redis is None and ((args.web_processes or 1) != 1 or (args.train_workers or 1) != 1):
        raise ValueError("--web-processes and --train-workers above 1 need --redis URL (or --redis auto)")
    if args.students < 1 or args.seconds <= 0 or args.epochs < 1:
        raise ValueError("--students, --seconds and --epochs must be positive")
    default = 2 if args.redis else 1
    return ClassConfig(
        args.students,
        args.trainers,
        args.seconds,
        args.redis,
        args.web_processes or default,
        args.train_workers or default,
        args.epochs,
        not args.no_faults,
        seed=args.seed,
    )


def names(count: int) -> list[str]:
    return [f"Student {k:02d}" for k in range(1, count + 1)]


def open_site(config: ClassConfig, folder: Path):
    """The server the class goes to, with its students (and the timer) enrolled."""
    enrolled = [*names(config.students), TIMER]
    if config.redis is None:
        return EmbeddedSite(folder, enrolled)
    site = RedisSite(folder, enrolled, config.redis, config.web_processes, config.train_workers)
    site.start_workers()
    return site


def timings(config: ClassConfig, folder: Path, site) -> dict[str, float | None]:
    """Press -> first step: cold (the embedded default's fresh process) and warm (an idle warm slot)."""
    if not config.timings:
        return {"cold": None, "cold_lower": None, "warm": None}
    settings = {**config.settings, "epochs": 1}
    cold = cold_first_step(folder / "cold", settings)
    warm = None
    if isinstance(site, RedisSite):
        timer = Student(site.url, user_id_for(TIMER), site.codes[user_id_for(TIMER)])
        try:
            warm = site.warm_first_step(timer, settings)
        finally:
            timer.close()
    return {"cold": cold["upper"], "cold_lower": cold["lower"], "warm": warm}


def inject_faults(site, faults: Faults, clock: Clock, problems: list[str]) -> None:
    """Kill a training mid-run a third of the way in, a web process half way (see the module's doc)."""
    length = clock.end - clock.start
    try:
        time.sleep(max(0.0, clock.start + WORKER_FAULT_AT * length - time.monotonic()))
        if site.kill_worker(faults, clock.start + LATEST_FAULT_AT * length) is None:
            faults.done.append(Fault("kill -9 of a training mid-run", -1, "no training was under way"))
        time.sleep(max(0.0, clock.start + WEB_FAULT_AT * length - time.monotonic()))
        site.kill_web(faults, clock.start + LATEST_FAULT_AT * length)
    except Exception as error:  # noqa: BLE001 - the report says what went wrong with the fault itself
        problems.append(f"fault injection: {type(error).__name__}: {error}")


def hold_class(config: ClassConfig, site, answers, tag: str) -> tuple[list[Tally], Faults, list[str]]:
    """The students' class, with the faults: each student's tally, the faults, problems of the bench."""
    faults, problems = Faults(), []
    trainers = config.trainer_count
    students = []
    for k, user in enumerate(user_id_for(name) for name in names(config.students)):
        press_at = config.seconds * (0.05 + PRESSES_BY * k / trainers) if k < trainers else None
        plan = Plan(press_at, config.settings, tag, site.runs)
        seed = config.seed * 1000 + k
        students.append(ClassStudent(site.url, user, site.codes[user], answers, plan, faults, seed))
    start = time.monotonic()
    clock = Clock(start, start + config.seconds, start + config.seconds + config.drain_s)
    faults.start = start
    tallies: list[Tally | None] = [None] * len(students)

    def attend(k: int) -> None:
        tallies[k] = students[k].attend(clock)

    threads = [threading.Thread(target=attend, args=(k,), daemon=True) for k in range(len(students))]
    if config.faults:
        threads.append(
            threading.Thread(target=inject_faults, args=(site, faults, clock, problems), daemon=True)
        )
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [t for t in tallies if t is not None], faults, problems


def run_classroom(config: ClassConfig, folder: Path, command: str = "") -> dict:
    """Hold the class in ``folder`` and return its record (``classroom_report.summarise``)."""
    load_before = os.getloadavg()
    answers = classroom_answers.prepare(config.seed)
    site = open_site(config, folder / "site")
    try:
        timed = timings(config, folder, site)
        tag = f"b{int(time.time()) % 100000}"  # fresh workbook ids in a Redis given to several runs
        started = time.monotonic()
        tallies, faults, problems = hold_class(config, site, answers, tag)
        took = time.monotonic() - started
    finally:
        site.close()
    return summarise(config, site, tallies, faults, problems, timed, took, load_before, command)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_of(args)
    except ValueError as error:
        parser.error(str(error))
    command = shlex.join(["python", "bench/classroom_bench.py", *(sys.argv[1:] if argv is None else argv)])
    with tempfile.TemporaryDirectory(prefix="gradsheet-classroom-") as tmp:
        record = run_classroom(config, Path(tmp), command)
    record["python"] = platform.python_version()
    print_table(record)
    write_record(args.out, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
