"""The Train status line and progress of a run, from its training events: one wording for every face.

The Train sheet's status cell (``excel_addin.sheets.sheet_sink.SheetSink``, in the process that trains)
and the add-in server's ``TRAIN_PROGRESS`` stream (which replays the run's progress.json in another
process) both feed a run's events to a ``StatusLine`` and show what it says, so a run reads the same
everywhere:
``Training on cpu: epoch 3 of 15, step 40/117, loss 0.3512, acc 98.21%, ETA 4:10``, then
``Completed: 15 epochs, test accuracy 99.61%, best 99.63%. Files in runs/mnist``.
"""

from __future__ import annotations

import math
from typing import Any

from ml.config import N_TRAIN_IMAGES
from ml.events import BatchEnd, EpochEnd, RunEnded, RunStarted, Sink, event_from_dict

Line = tuple[str, float | None]  # the status text and the fraction done (None: leave it as it is)

# ---- before a run starts: what Train and Stop say ------------------------------------------------------

NOT_STARTED_TEXT = "Not started: press Train"  # a Train sheet before its first run
STARTING_TEXT = "Starting..."  # a run whose settings this process does not know
STOPPING_TEXT = "Stopping after the current batch (the last checkpoint and metrics stay)..."


def describe_run(config: Any) -> str:
    """What a run will do, in one line: 2 epoch(s) of the small model on 1,000 images, device cpu
    (``config``: an ``ml.config.TrainConfig``)."""
    subset = f"{config.subset:,} images" if config.subset else f"all {N_TRAIN_IMAGES:,} images"
    return f"{config.epochs} epoch(s) of the {config.model} model on {subset}, device {config.device}"


def starting_text(config: Any) -> str:
    """The status line of a run whose worker is starting."""
    return f"{STARTING_TEXT[:-3]}: {describe_run(config)}..."


def not_started(reason: Any) -> str:
    """Train refused, and why."""
    return f"Not started: {reason}"


def not_started_settings(error: Exception) -> str:
    """Train refused: a setting is wrong (the error names it and what to type)."""
    return not_started(f"check the settings: {error}")


def not_launched(error: Exception) -> str:
    """Train refused: the training process could not start."""
    return not_started(f"the training process could not start: {error}")


def not_stopped(error: Exception) -> str:
    """Stop refused: the output folder is wrong, or its lock cannot be read."""
    return f"Not stopped: {error}"


# ---- on the add-in server: the queue, and a run seen through its files -------------------------------

NO_RUN_TEXT = "No training yet: press Train."
CANCELLED_TEXT = "Taken out of the queue: nothing was trained."
ENDED_EARLY_TEXT = "Interrupted: the training process ended unexpectedly"


def waiting_text(position: int, queued: int, slots: int) -> str:
    """The status line of a run waiting in the server's queue (``queued`` runs wait, ``slots`` train; 0:
    no training worker is connected to a distributed server's queue)."""
    capacity = (
        f"this server trains {slots} workbook(s) at a time"
        if slots
        else "no training worker is connected yet; it starts when one is"
    )
    return (
        f"Queued: position {position} of {queued} ({capacity}). "
        "It starts by itself; Stop takes it out of the queue."
    )


QUEUE_UNREACHABLE_TEXT = "the class server's queue (Redis) is not reachable"


def queue_unreachable(error: Any) -> str:
    """A distributed server whose Redis does not answer (``error``: the connection's own words)."""
    return (
        f"{QUEUE_UNREACHABLE_TEXT}: {error}. "
        "Everything goes on by itself when it is back; tell the teacher if this lasts."
    )


RESTARTED_TEXT = "The server restarted while this run waited in the queue: press Train again."
NOTHING_RUNNING_TEXT = "No training is running for this workbook."


def busy_text(position: int | None, other_workbook: str | None = None) -> str:
    """Train refused: a run of this user waits at ``position`` in the queue (None: it is training), in
    this workbook or in ``other_workbook`` (a user trains one run at a time)."""
    mine = other_workbook is None
    where = "this workbook's training" if mine else f"your training in workbook {other_workbook}"
    then = "Press Stop first." if mine else "Press Stop there first."
    if position is not None:
        return not_started(f"{where} is queued (position {position}). {then}")
    return not_started(f"{where} is still running. {then}")


def queue_full(limit: int) -> str:
    """Train refused: the server's queue holds as many runs as it takes."""
    return not_started(f"the server's queue is full ({limit} trainings wait already): try again later.")


def time_limit_text(minutes: float) -> str:
    """A run stopped for outlasting the server's time limit."""
    return f"Stopping: runs on this server last at most {minutes:g} minutes (the last checkpoint stays)..."


def ended_early(text: str | None, log: Any) -> str:
    """A run whose process ended without saying so: after ``text`` (its last status; None: before its
    first event); ``log`` is the worker's log file."""
    when = "before training started" if text is None else text
    return f"{ENDED_EARLY_TEXT}{' ' if text is None else ': '}{when}. See {log}"


def failed_to_start(message: str) -> str:
    """The training process failed before its first event (bad data, an import error, ...)."""
    return f"Failed: {message}"


def nothing_to_stop(out_dir: Any) -> str:
    """Stop with no training running for the output folder."""
    return f"No training is running for {out_dir}."


def format_duration(seconds: float) -> str:
    """A short ETA text: 0:42, 12:05, 1:02:05."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def end_status(event: RunEnded) -> Line:
    """The status line for a finished run, and the progress to show (None: leave it as it is)."""
    best = f", best {event.best_test_acc:.2%}" if event.best_test_acc is not None else ""
    final = f"test accuracy {event.final_test_acc:.2%}{best}" if event.final_test_acc is not None else ""
    epochs = f"{event.epochs_done} epoch{'s' if event.epochs_done != 1 else ''}"
    if event.status == "completed":
        text, progress = f"Completed: {epochs}, {final}", 1.0
    elif event.status == "stopped" and not event.epochs_done:
        text, progress = "Stopped before the first epoch finished (no checkpoint yet)", None
    elif event.status == "stopped":
        text, progress = f"Stopped after {epochs} (checkpoint kept){', ' + final if final else ''}", None
    else:
        text, progress = f"Failed after {epochs}: {event.error or 'unknown error'}", None
    return f"{text}. Files in {event.out_dir}", progress


def unfinished_status(epochs_done: int, epochs: int) -> Line:
    """A run whose record has no end: still running, or killed."""
    return f"Running (or interrupted) after {epochs_done} epoch(s)", epochs_done / max(epochs, 1)


def clamp(progress: float | None) -> float | None:
    """A fraction done as a cell shows it: within 0..1, four decimals."""
    return None if progress is None else round(min(max(progress, 0.0), 1.0), 4)


class StatusLine(Sink):
    """Turns a run's events into its status line and fraction done; remembers what an ETA needs.

    Each ``on_*`` returns the line to show for that event (progress None: leave it as it is); ``line`` is
    what is shown after all events so far (``handle`` feeds any event).
    """

    def __init__(self) -> None:
        self.started: RunStarted | None = None
        self.epoch_seconds: list[float] = []
        self.line: Line = ("", None)

    def on_start(self, event: RunStarted) -> Line:
        self.started = event
        self.epoch_seconds = []
        done = (event.start_epoch - 1) / max(event.epochs, 1)
        text = f"Training on {event.device}: starting epoch {event.start_epoch} of {event.epochs}"
        return self._set(text, done)

    def eta(self, epoch: int, fraction_of_epoch: float, batch_elapsed: float | None) -> float | None:
        """Seconds left when ``fraction_of_epoch`` of ``epoch`` is done: from the mean epoch time so far, or
        in the first epoch from the time its steps took."""
        if self.started is None:
            return None
        remaining_epochs = self.started.epochs - epoch + 1 - fraction_of_epoch
        if self.epoch_seconds:
            return remaining_epochs * (sum(self.epoch_seconds) / len(self.epoch_seconds))
        if batch_elapsed and fraction_of_epoch > 0:
            return remaining_epochs * batch_elapsed / fraction_of_epoch
        return None

    def on_batch(self, event: BatchEnd) -> Line | None:
        """The line after a step (None before the run's start was seen)."""
        if self.started is None:
            return None
        fraction = event.step / max(event.steps, 1)
        eta = self.eta(event.epoch, fraction, event.elapsed)
        text = (
            f"Training on {self.started.device}: epoch {event.epoch} of {self.started.epochs}, "
            f"step {event.step}/{event.steps}, loss {event.loss:.4f}, acc {event.acc:.2%}"
        )
        if eta is not None:
            text += f", ETA {format_duration(eta)}"
        return self._set(text, (event.epoch - 1 + fraction) / max(self.started.epochs, 1))

    def on_epoch(self, event: EpochEnd) -> Line:
        self.epoch_seconds.append(event.seconds)
        device = self.started.device if self.started else "?"
        text = f"Training on {device}: epoch {event.epoch} of {event.epochs} done"
        if math.isfinite(event.test_acc):
            text += f", test accuracy {event.test_acc:.2%}"
        if event.epoch < event.epochs:
            text += f", ETA {format_duration(self.eta(event.epoch + 1, 0.0, None) or 0)}"
        return self._set(text, event.epoch / max(event.epochs, 1))

    def on_end(self, event: RunEnded) -> Line:
        return self._set(*end_status(event))

    def _set(self, text: str, progress: float | None) -> Line:
        """Remember the line as shown (a None progress keeps the last one) and return it as given."""
        self.line = (text, self.line[1] if progress is None else clamp(progress))
        return text, progress


def replay(record: dict[str, Any]) -> StatusLine:
    """The StatusLine of a run from its progress.json (``ml.sinks.ProgressFileSink``): the events replayed
    in the order they happened. ValueError for a record that holds something else."""
    line = StatusLine()
    events = [record.get("started"), *record.get("epochs", []), record.get("batch"), record.get("ended")]
    for event in filter(None, events):
        line.handle(event_from_dict(event))
    return line
