"""A simulated student of the classroom benchmark: signed in with a class code of their own, the task pane
open (its socket.io connection, a TRAIN_PROGRESS stream of the workbook, the status polled every 2 s as the
pane does), cell calls with checkable answers at a student's pace, and, for some, a Train press.

Everything a student gets is checked and tallied (``Tally``):

* a cell answer against the reference (``classroom_answers``): else a wrong result;
* an HTTP error, a ``#VALUE!`` where a value was due, a refused press: an error. A request whose connection
  a fault cut (the server or a web process killed under it) is tried again, as a student recalculates,
  and counted apart (``cut_by_faults``); a connection that fails with no fault about is an error;
* every socket.io event received: one for a stream the student did not open is a foreign event;
* each Train press (``Run``): how it ended (completed; interrupted by a fault, or dropped from the queue by
  a server restart, then pressed again as the message says, in a fresh workbook so that each run's rows are
  checked against its own files); its stream's epoch rows against the run's own metrics.json: a row missed
  or repeated is lost, a table whose rows are not a prefix of the run's is inconsistent; and a completed
  run's model through CLASSIFY_PIXELS against that model file loaded here;
* a student who never trains must see "No training yet" in their stream and status, and nothing else.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from classroom_answers import Answers, Question, differs, own_model_answer
from classroom_sites import Faults

from excel_addin import status_line
from excel_addin.sheets.train_sheet import metric_cells
from excel_addin.testing.progress_stream import metric_rows
from excel_addin.testing.student import Student
from excel_addin.testing.waiting import wait_for
from ml.run_dir import DEFAULT_RUN_DIR, RunDir

THINK_S = (0.3, 1.5)  # a student's pause between two cell calls (uniform)
POLL_S = 2.0  # the task pane asks for the status this often (gradsheet.js: POLL_MS)
RETRY_S = 90.0  # how long a request cut by a fault is tried again
RUN_TIMEOUT_S = 900.0  # a press whose run has not ended after this long is unfinished
MAX_PRESSES = 3  # presses of one student (the first and two after faults)
AGAIN = ("interrupted", "restarted")  # outcomes after which the student presses again


@dataclass
class Run:
    """One Train press and what became of it."""

    user: str
    workbook: str
    pressed_s: float  # seconds into the class
    outcome: str = "pending"  # completed, interrupted, restarted, failed (status), unfinished
    status: str = ""
    rows: int = 0  # epoch rows of the run's own metrics.json
    rows_lost: int = 0
    rows_inconsistent: int = 0
    pressed_again: bool = False


@dataclass
class Tally:
    """What one student's class came to."""

    latencies: dict[str, list[float]] = field(default_factory=dict)  # label -> milliseconds
    requests: int = 0
    errors: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    cut_by_faults: int = 0
    reconnects: int = 0
    foreign: int = 0
    events: int = 0
    runs: list[Run] = field(default_factory=list)


@dataclass(frozen=True)
class Clock:
    """The class's times (monotonic): it starts, stops asking at ``end``, waits for runs until ``drain``."""

    start: float
    end: float
    drain: float


@dataclass(frozen=True)
class Plan:
    """What a student does: train at ``press_at_s`` into the class (None: never), with ``settings``."""

    press_at_s: float | None
    settings: dict
    tag: str  # the run's workbook ids start with it (a Redis given to several runs keeps each apart)
    runs: Path  # the server's runs folder, where the student's files are checked


class ClassStudent:
    """One student: ``user`` (their id) signed in with ``code`` on the server at ``url``."""

    def __init__(
        self, url: str, user: str, code: str, answers: Answers, plan: Plan, faults: Faults, seed: int
    ):
        self.user, self.answers, self.plan, self.faults = user, answers, plan, faults
        self.student = Student(url, user, code)
        self.rng = random.Random(seed)
        self.tally = Tally()
        self.workbooks = 0
        self.workbook = ""
        self.pending: Run | None = None
        self.polled = 0.0

    # ---- the class ---------------------------------------------------------------------------------

    def attend(self, clock: Clock) -> Tally:
        """Take part until ``clock.end``, then wait for a pending run until ``clock.drain``."""
        try:
            self._connect()
            self._open_workbook()
            while self._stays(clock):
                self._class_step(clock)
            if self.pending is not None:
                self.pending.outcome = "unfinished"
                self.tally.errors.append(
                    f"{self.user}/{self.pending.workbook}: not ended: {self.pending.status}"
                )
            if self.plan.press_at_s is None:
                self._check_untrained()
        except Exception as error:  # noqa: BLE001 - the bench reports a student that broke down
            self.tally.errors.append(f"{self.user}: {type(error).__name__}: {error}")
        finally:
            self.tally.foreign = len(self.student.foreign())
            self.tally.events = len(self.student.events)
            _quietly(self.student.close)  # its socket may be gone already
        return self.tally

    def _stays(self, clock: Clock) -> bool:
        now = time.monotonic()
        return now < clock.end or (self.pending is not None and now < clock.drain)

    def _class_step(self, clock: Clock) -> None:
        now = time.monotonic()
        self._keep_connected()
        due = self.plan.press_at_s is not None and now >= clock.start + self.plan.press_at_s
        if due and not self.tally.runs:
            self._press(clock)
        if self.pending is not None:
            self._follow(clock)
        if now - self.polled >= POLL_S:
            self._poll()
        if now < clock.end:
            self._ask(self.answers.draw(self.rng))
            time.sleep(self.rng.uniform(*THINK_S))
        else:
            time.sleep(0.5)

    # ---- requests ----------------------------------------------------------------------------------

    def _request(self, label: str, call: Callable[[], Any]) -> Any | None:
        """``call()``'s answer, its latency kept under ``label``; None (and an error) when it failed."""
        first = time.monotonic()
        self.tally.requests += 1
        while True:
            began, started = time.monotonic(), time.perf_counter()
            try:
                answer = call()
            except httpx.HTTPStatusError as error:
                response = error.response
                self.tally.errors.append(f"{label}: HTTP {response.status_code}: {response.text[:200]}")
                return None
            except httpx.TransportError as error:
                if self.faults.explains(began) and time.monotonic() - first < RETRY_S:
                    self.tally.cut_by_faults += 1
                    time.sleep(0.5)
                    continue
                self.tally.errors.append(f"{label}: {type(error).__name__}: {error}")
                return None
            self.tally.latencies.setdefault(label, []).append((time.perf_counter() - started) * 1000)
            return answer

    def _ask(self, question: Question) -> None:
        got = self._request(question.name, lambda: self.student.cell(question.function, *question.args))
        if got is None:
            return
        first = got[0][0] if isinstance(got, list) and got and isinstance(got[0], list) and got[0] else got
        if isinstance(first, str) and first.startswith("#VALUE!"):
            self.tally.errors.append(f"{question.name}{_shown(question.args)}: {first}")
        elif differs(got, question.answer, question.tolerance):
            want = str(question.answer)[:120]
            self.tally.wrong.append(
                f"{question.name}{_shown(question.args)}: got {str(got)[:120]}, want {want}"
            )

    def _poll(self) -> None:
        """The task pane's status request; a student who never trains must read "No training yet"."""
        self.polled = time.monotonic()
        said = self._request("status (task pane)", lambda: self.student.status(self.workbook))
        if (
            said is not None
            and self.plan.press_at_s is None
            and said.get("status") != status_line.NO_RUN_TEXT
        ):
            self.tally.wrong.append(
                f"{self.user}: the status of an untrained workbook: {said.get('status')!r}"
            )

    # ---- the task pane's socket and stream ----------------------------------------------------------

    def _connect(self) -> None:
        """Open the pane's socket.io connection (tried again while a fault explains a failure)."""
        first = time.monotonic()
        while True:
            began = time.monotonic()
            try:
                self.student.connect()
                return
            except Exception:  # socketio.exceptions.ConnectionError and its transport's errors
                if not self.faults.explains(began) or time.monotonic() - first > RETRY_S:
                    raise
                time.sleep(1.0)

    def _keep_connected(self) -> None:
        """A socket that a fault closed: connect again and open the workbook's stream again."""
        if self.student.sio is not None and self.student.sio.connected:
            return
        self.tally.reconnects += 1
        self._connect()
        _quietly(lambda: self.student.stream("TRAIN_PROGRESS", self.workbook))

    def _open_workbook(self) -> None:
        """A fresh workbook of this student (its own id), its TRAIN_PROGRESS stream opened."""
        if self.workbook:
            _quietly(lambda: self.student.sio.emit("xlwings:cancel-task", {"task_key": self._key()}))
        self.workbooks += 1
        self.workbook = f"{self.plan.tag}-{self.workbooks}"
        _quietly(lambda: self.student.stream("TRAIN_PROGRESS", self.workbook))  # else on reconnecting

    def _key(self) -> str:
        return f"TRAIN_PROGRESS_{self.workbook}"  # the client's key, as Student.stream makes it

    # ---- trainings -----------------------------------------------------------------------------------

    def _press(self, clock: Clock) -> None:
        run = Run(self.user, self.workbook, time.monotonic() - clock.start)
        self.tally.runs.append(run)
        answer = self._request(
            "Train (press)", lambda: self.student.press("train", self.workbook, **self.plan.settings)
        )
        if answer is None:
            run.outcome = "press failed"
        else:
            self.pending = run

    def _follow(self, clock: Clock) -> None:
        """Look at the pending run's stream; once it has ended, check it (and press again if told to)."""
        run, values = self.pending, self.student.values(self._key())
        run.status = _status(values[-1]) if values else run.status
        outcome = _outcome(run.status)
        if outcome is None:
            if time.monotonic() - clock.start - run.pressed_s > RUN_TIMEOUT_S:
                self.pending, run.outcome = None, "unfinished"
                self.tally.errors.append(f"{self.user}/{run.workbook}: not ended: {run.status}")
            return
        self.pending, run.outcome = None, outcome
        if outcome in ("completed", "interrupted"):
            self._check_rows(run, values)
        if outcome == "completed":
            self._ask_own_model(run)
        elif outcome in AGAIN and len(self.tally.runs) < MAX_PRESSES:
            run.pressed_again = True
            self._open_workbook()
            self._press(clock)
        else:
            self.tally.errors.append(f"{self.user}/{run.workbook}: {run.status}")

    def _ask_own_model(self, run: Run) -> None:
        """CLASSIFY_PIXELS with the run's own model (read from the student's folder by the server)."""
        try:
            question = own_model_answer(
                self._run_dir(run).checkpoint, self._grid(), f"{run.workbook}/{DEFAULT_RUN_DIR}"
            )
        except Exception as error:  # noqa: BLE001 - ml.predict.ModelNotFoundError: not delivered
            self.tally.errors.append(f"{self.user}/{run.workbook}: its model: {error}")
            return
        self._ask(question)

    def _run_dir(self, run: Run) -> RunDir:
        return RunDir(self.plan.runs / self.user / run.workbook / DEFAULT_RUN_DIR)

    def _grid(self) -> list[list[int]]:
        return self.rng.choice(self.answers.grids)

    def _check_rows(self, run: Run, tables: list[list[list]]) -> None:
        """The stream's epoch rows against the run's own metrics.json (on the web side)."""
        run_dir = self._run_dir(run)
        if run.outcome == "completed":
            try:
                wait_for(lambda: _completed(run_dir), 30, what="a completed metrics.json", interval=0.2)
            except TimeoutError as error:
                self.tally.errors.append(f"{self.user}/{run.workbook}: {error}")
        expected = [metric_cells(row) for row in (run_dir.read_record() or {}).get("epochs", [])]
        final = metric_rows(tables[-1])
        run.rows = len(expected)
        missed = sum(1 for k, row in enumerate(expected) if k >= len(final) or final[k] != row)
        run.rows_lost = missed + max(0, len(final) - len(expected))
        run.rows_inconsistent = sum(1 for t in tables if metric_rows(t) != expected[: len(metric_rows(t))])

    def _check_untrained(self) -> None:
        """Every value of an untrained workbook's stream reads "No training yet" with no rows."""
        for table in self.student.values(self._key()):
            if _status(table) != status_line.NO_RUN_TEXT or metric_rows(table):
                self.tally.wrong.append(
                    f"{self.user}: the stream of an untrained workbook: {str(table)[:160]}"
                )
                return


def _outcome(status: str) -> str | None:
    """How a run ended, by its stream's status (None: not yet)."""
    if status.startswith("Completed"):
        return "completed"
    if status.startswith(status_line.ENDED_EARLY_TEXT):
        return "interrupted"
    if status == status_line.RESTARTED_TEXT:
        return "restarted"
    if status.startswith(("Failed", "Not started", "Stopped", status_line.CANCELLED_TEXT, "#VALUE!")):
        return "failed"
    return None


def _completed(run_dir: RunDir) -> bool:
    return (run_dir.read_record() or {}).get("run", {}).get("status") == "completed"


def _status(table: list[list]) -> str:
    """A TRAIN_PROGRESS table's status (a single cell: its text, e.g. a #VALUE!)."""
    first = table[0] if table and isinstance(table[0], list) else [table]
    return str(first[1] if len(first) > 1 else first[0])


def _quietly(action: Callable[[], Any]) -> None:
    """Do ``action``; a socket that a fault closed meanwhile is reopened by ``_keep_connected``."""
    try:
        action()
    except Exception:  # noqa: BLE001 - socketio's BadNamespaceError, a closed transport
        pass


def _shown(args: tuple) -> str:
    """A call's arguments, short (a pixel grid as its size)."""
    return "(" + ", ".join("28x28 pixels" if isinstance(a, list) else repr(a) for a in args) + ")"
