"""The run book of the distributed mode (``--redis URL``): the queue, the caps, the runs' events and files in
Redis, shared by every web process; the trainings on the training workers (``python -m excel_addin.worker
--redis URL``), never in a web process.

Train queues an RQ job (``excel_addin.jobs.task.train_job``, its id the run's) after an atomic check of the
caps that every web process reads from Redis (one active run per workbook, ``per_owner`` per user, the
queue's length: ``RESERVE``). Where a run stands comes from RQ (queued, started, failed, cancelled) and from
the run's event stream (``stream``: its status line and rows), so any web process serves TRAIN_PROGRESS
and a restarted one shows the same rows; a run the worker's death left behind is RQ's abandoned job,
shown "Interrupted". Viewing a run brings its files into the owner's folder (``delivery``). Stop sets the
run's stop key, which the job watches whatever machine runs it; a waiting run is taken out of RQ's queue.

Redis may go away: every call then says so (``status_line.queue_unreachable``) instead of failing, a view
shows the rows already delivered, and everything works again once Redis answers.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rq import Queue, Worker
from rq.job import Job

from excel_addin import status_line
from excel_addin.jobs import keys
from excel_addin.server.progress import Progress
from excel_addin.server.runs import files
from excel_addin.server.runs.base import (
    CANCELLED,
    ENDED,
    FAILED,
    PER_USER,
    QUEUED,
    RUNNING,
    Refused,
    RunBook,
    RunKey,
    folder_keys,
    run_folder,
)
from excel_addin.server.runs.delivery import Delivery
from excel_addin.server.runs.stream import Streams
from ml import run_lock
from ml.config import TrainConfig
from ml.run_dir import WORKER_LOG, RunDir, is_inside

logger = logging.getLogger(__name__)
JOB = "excel_addin.jobs.task.train_job"
TIMEOUT_GRACE_S = 600  # RQ's hard time limit: the minutes cap (which the job keeps itself) plus this
CLEANUP_EVERY_S = 2.0  # how often a web process runs RQ's cleanup of abandoned jobs
ENQUEUE_GRACE_S = 60.0  # a reserved place whose job is not in RQ after this long was left by a dead process
STATES = {
    "queued": QUEUED,
    "deferred": QUEUED,
    "scheduled": QUEUED,
    "started": RUNNING,
    "finished": ENDED,
    "stopped": ENDED,
    "failed": FAILED,
    "canceled": CANCELLED,
}  # fmt: skip  (RQ's status -> ours)

# Reserve the workbook's place among the active runs if the caps allow (an empty run id: only ask): KEYS
# active, queue, caps; ARGV field, owner prefix, run id. Answers {"ok", id}, {"same" | "owner", field, id}
# or {"full", cap}.
RESERVE = """
local same = redis.call('HGET', KEYS[1], ARGV[1])
if same then return {'same', ARGV[1], same} end
local per_owner = tonumber(redis.call('HGET', KEYS[3], 'per_owner') or '')
if per_owner then
  local all, mine, first, first_id = redis.call('HGETALL', KEYS[1]), 0, nil, nil
  for i = 1, #all, 2 do
    if string.sub(all[i], 1, #ARGV[2]) == ARGV[2] then
      mine = mine + 1
      if not first then first, first_id = all[i], all[i + 1] end
    end
  end
  if mine >= per_owner then return {'owner', first, first_id} end
end
local cap = tonumber(redis.call('HGET', KEYS[3], 'queue') or '')
if cap and redis.call('LLEN', KEYS[2]) >= cap then return {'full', tostring(cap)} end
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) end
return {'ok', ARGV[3]}
"""
# Forget an active run if it is still the one recorded: KEYS active; ARGV field, run id.
RELEASE = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0
"""


@dataclass(frozen=True)
class RemoteJob:
    """A run as Redis knows it: whose, its id (RQ's job id), settings, state and when it was queued."""

    key: RunKey
    run_id: str
    config: TrainConfig
    state: str
    created: float
    error: str | None = None

    @property
    def run_dir(self) -> RunDir:
        return RunDir(self.config.out_dir)


class RedisRuns(RunBook):
    """The runs of every web process of a distributed server, in the Redis at ``url``."""

    def __init__(self, root: Path, url: str, caps: dict[str, Any] | None = None, client: Any = None):
        self.root, self.url = root, url
        self.client = client or keys.connect(url)
        self.queue = Queue(keys.QUEUE, connection=self.client)
        self.caps = {name: value for name, value in (caps or {}).items() if value is not None}
        self.streams, self.delivery = Streams(), Delivery()
        self._reserve = self.client.register_script(RESERVE)
        self._release = self.client.register_script(RELEASE)
        self._cleaned, self._caps_written = 0.0, False
        self._lock = threading.Lock()
        self._write_caps()

    @staticmethod
    def from_options(options) -> RedisRuns:
        """The run book a server with these ``options`` uses; its caps become every web process's."""
        caps = {"per_owner": PER_USER if options.shared else None, "queue": options.cap("max_queue"),
                "minutes": options.cap("max_minutes")}  # fmt: skip
        return RedisRuns(options.runs, options.redis, caps)

    def _write_caps(self) -> None:
        """Put this process's caps into Redis (the last web process started sets them for all)."""
        try:
            with self.client.pipeline() as pipe:
                pipe.delete(keys.CAPS)
                if self.caps:
                    pipe.hset(keys.CAPS, mapping={k: str(v) for k, v in self.caps.items()})
                pipe.execute()
            self._caps_written = True
        except keys.redis_errors():
            pass  # written at the first Train once Redis answers

    # ---- Train and Stop -----------------------------------------------------------------------------

    def refusal(self, key: RunKey) -> str | None:
        try:
            self._tidy()
            verdict = self._verdict(key, "")
        except keys.redis_errors() as error:
            return status_line.not_started(_unreachable(error))
        return None if verdict[0] == "ok" else self._refusal_text(verdict)

    def _verdict(self, key: RunKey, run_id: str) -> list[str]:
        """RESERVE's answer for the workbook: with a ``run_id`` its place is taken when the caps allow,
        without the caps are only asked."""
        places = [keys.ACTIVE, self.queue.key, keys.CAPS]
        answer = self._reserve(keys=places, args=[keys.field(*key), f"{key.owner}/", run_id])
        return [part.decode() for part in answer]

    def submit(self, key: RunKey, config: TrainConfig, lock: run_lock.RunLock) -> RemoteJob:
        """Queue the run (the web host's lock is released: the run's place in Redis is its lock). Its
        record comes first, so that no other web process takes its place for a stale one meanwhile."""
        run_lock.release(lock)
        run_id = uuid.uuid4().hex
        try:
            self._tidy()
            minutes = self._shared_cap("minutes")
            created = self._record(key, config, run_id, minutes)
            verdict = self._verdict(key, run_id)
            if verdict[0] != "ok":
                self.client.delete(*keys.run_keys(run_id))
                raise Refused(self._refusal_text(verdict).removeprefix(status_line.not_started("")))
            self.client.hset(keys.LATEST, keys.field(*key), run_id)
            self.queue.enqueue_call(JOB, args=(run_id,), job_id=run_id, timeout=_timeout(minutes),
                                    result_ttl=keys.RUN_TTL_S, failure_ttl=keys.RUN_TTL_S,
                                    description=f"train {keys.field(*key)}")  # fmt: skip
        except keys.redis_errors() as error:
            self._forget_active(key, run_id)
            raise Refused(_unreachable(error)) from None
        return RemoteJob(key, run_id, config, QUEUED, created)

    def _refusal_text(self, verdict: list[str]) -> str:
        """Why the caps refuse a run (RESERVE's answer): Train's "Not started: ..." line."""
        if verdict[0] == "same":
            text = status_line.busy_text(self._position_of(verdict[2]))
        elif verdict[0] == "owner":
            text = status_line.busy_text(self._position_of(verdict[2]), verdict[1].split("/", 1)[1])
        else:
            text = status_line.queue_full(int(verdict[1]))
        return text

    def _shared_cap(self, name: str) -> float | None:
        """A cap as every web process enforces it (Redis's ``keys.CAPS``)."""
        value = self.client.hget(keys.CAPS, name)
        return None if value is None else float(value)

    def _record(self, key: RunKey, config: TrainConfig, run_id: str, minutes: float | None) -> float:
        """Write the run's record (and a resumed run's checkpoint); when Redis's clock says it was made."""
        created = keys.redis_now(self.client)
        spec = {"owner": key.owner, "workbook": key.workbook, "config": config.to_json(), "created": created}
        if minutes is not None:
            spec["minutes"] = minutes
        with self.client.pipeline() as pipe:
            pipe.hset(keys.run(run_id), mapping=spec)
            checkpoint = RunDir(config.out_dir).checkpoint
            if config.resume and checkpoint.is_file():
                pipe.hset(keys.files(run_id), checkpoint.name, checkpoint.read_bytes())
            for name in keys.run_keys(run_id):
                pipe.expire(name, keys.RUN_TTL_S)
            pipe.execute()
        return created

    def cancel(self, key: RunKey) -> RemoteJob | None:
        """Take the workbook's waiting run out of RQ's queue (atomically: a run a worker took is not)."""
        try:
            job = self.latest(key)
            if job is None or job.state != QUEUED or not self.queue.remove(job.run_id):
                return None
            Job.fetch(job.run_id, connection=self.client).cancel()
            self._forget_active(key, job.run_id)
        except keys.redis_errors():
            return None  # Stop then says that Redis does not answer
        return replace(job, state=CANCELLED)

    def stop(self, key: RunKey) -> str:
        if self.cancel(key) is not None:
            return status_line.CANCELLED_TEXT
        try:
            job = self.latest(key)
            stopped = job is not None and job.state == RUNNING and self._ask_stop(job)
        except keys.redis_errors() as error:
            return status_line.not_stopped(_unreachable(error))
        return status_line.STOPPING_TEXT if stopped else status_line.NOTHING_RUNNING_TEXT

    def request_stop(self, key: RunKey, out_dir: Path) -> RemoteJob | None:
        """The Stop button: the workbook's running run is asked to stop if it trains into ``out_dir``;
        ValueError (said as "Not stopped: ...") when Redis does not answer."""
        try:
            job = self.latest(key)
            wanted = job is not None and job.state == RUNNING
            if wanted and Path(job.config.out_dir).resolve() == Path(out_dir).resolve():
                return job if self._ask_stop(job) else None
        except keys.redis_errors() as error:
            raise ValueError(_unreachable(error)) from None
        return None

    def _ask_stop(self, job: RemoteJob) -> bool:
        self.client.set(keys.stop(job.run_id), b"1", ex=keys.RUN_TTL_S)
        return True

    # ---- where runs stand ---------------------------------------------------------------------------

    def latest(self, key: RunKey) -> RemoteJob | None:
        """The workbook's latest run, as RQ says it stands (None: Redis has no run of it)."""
        run_id = self.client.hget(keys.LATEST, keys.field(*key))
        return None if run_id is None else self._job(key, run_id.decode())

    def _job(self, key: RunKey, run_id: str) -> RemoteJob | None:
        spec = {k.decode(): v.decode() for k, v in self.client.hgetall(keys.run(run_id)).items()}
        if "config" not in spec:
            return None
        status = self.client.hget(Job.key_for(run_id), "status")
        state = STATES.get(status.decode(), ENDED) if status else ENDED
        config = TrainConfig.from_json(spec["config"])
        return RemoteJob(key, run_id, config, state, float(spec.get("created", 0)), spec.get("error"))

    def position(self, job: RemoteJob) -> int | None:
        try:
            return self._position_of(job.run_id)
        except keys.redis_errors():
            return None

    def _position_of(self, run_id: str) -> int | None:
        found = self.queue.get_job_position(run_id)
        return None if found is None else found + 1

    def counts(self) -> dict[str, int]:
        """Trainings running (RQ's started registry), waiting (its queue) and the slots (its workers);
        zeros while Redis does not answer."""
        try:
            self._clean_up()
            running = self.queue.started_job_registry.get_job_count(cleanup=False)
            return {"running": running, "queued": self.queue.count, "slots": Worker.count(queue=self.queue)}
        except keys.redis_errors():
            return {"running": 0, "queued": 0, "slots": 0}

    def say(self, key: RunKey, text: str, progress: float | None = None) -> None:
        try:
            keys.say(self.client, key.owner, key.workbook, text, progress)
        except keys.redis_errors():
            pass  # the workbook's stream says that Redis does not answer

    def view(self, key: RunKey) -> Progress:
        try:
            return self._view(key)
        except keys.redis_errors() as error:
            found = files.latest_run(run_folder(self.root, key))
            rows = files.from_files(found, running=True) if found is not None else Progress("")
            return replace(rows, status=_unreachable(error), progress=None, queue=None)

    def _view(self, key: RunKey) -> Progress:
        job = self.latest(key)
        record, last_time = (None, 0.0) if job is None else self.streams.read(self.client, job.run_id)
        state = self._state(key, job, record)
        if job is not None and is_inside(job.config.out_dir, run_folder(self.root, key)):
            try:
                self.delivery.bring(self.client, job.run_id, Path(job.config.out_dir), record)
            except OSError as error:  # a full disk, ...: tried again at the next look
                logger.warning("run %s: its files could not be written: %s", job.run_id, error)
        notice = self.client.hget(keys.NOTICES, keys.field(*key))
        since = max(job.created if job else 0.0, last_time)
        said = json.loads(notice) if notice else None
        if said is None or said["time"] < since:
            return state
        progress = state.progress if said["progress"] is None else said["progress"]
        return replace(state, status=said["text"], progress=progress)

    def _state(self, key: RunKey, job: RemoteJob | None, record: dict[str, Any] | None) -> Progress:
        """Where the run stands by RQ and its events (no run in Redis: by the files of the latest here)."""
        if job is None:
            found = files.latest_run(run_folder(self.root, key))
            return Progress(status_line.NO_RUN_TEXT) if found is None else files.from_files(found, False)
        if job.state == QUEUED and record is None:
            position = self._position_of(job.run_id)
            if position is not None:
                counts = self.counts()
                text = status_line.waiting_text(position, counts["queued"], counts["slots"])
                return Progress(text, 0.0, position)
        if job.state == CANCELLED:
            return Progress(status_line.CANCELLED_TEXT)
        if job.state == FAILED and job.error:
            return Progress(status_line.failed_to_start(job.error))
        running = job.state in (QUEUED, RUNNING)
        return files.from_record(record, running, status_line.starting_text(job.config), WORKER_LOG)

    def known_keys(self) -> set[RunKey]:
        try:
            recorded = {RunKey(*f.decode().split("/", 1)) for f in self.client.hkeys(keys.LATEST)}
        except keys.redis_errors():
            recorded = set()
        return recorded | folder_keys(self.root)

    def active_keys(self) -> set[RunKey]:
        try:
            self._tidy()
            return {RunKey(*f.decode().split("/", 1)) for f in self.client.hkeys(keys.ACTIVE)}
        except keys.redis_errors():
            return set()

    # ---- keeping Redis tidy -------------------------------------------------------------------------

    def _clean_up(self) -> None:
        """RQ's cleanup of its started registry (at most every CLEANUP_EVERY_S): a job whose heartbeat
        stopped (its slot died) moves to the FailedJobRegistry as abandoned."""
        now = time.monotonic()
        with self._lock:
            if now - self._cleaned < CLEANUP_EVERY_S:
                return
            self._cleaned = now
        self.queue.started_job_registry.cleanup()

    def _tidy(self) -> None:
        """Clean up, then forget the active runs that ended (finished, failed, cancelled), or whose job
        never came (a web process that died between the reservation and the queue), so that the caps
        count only the living."""
        if not self._caps_written:
            self._write_caps()
        self._clean_up()
        active = list(self.client.hgetall(keys.ACTIVE).items())
        with self.client.pipeline() as pipe:
            for _, run_id in active:
                pipe.hget(Job.key_for(run_id.decode()), "status")
                pipe.hget(keys.run(run_id.decode()), "created")
            found = pipe.execute()
        now = keys.redis_now(self.client)
        for (field, run_id), status, created in zip(active, found[::2], found[1::2], strict=True):
            if status is not None:
                ended = STATES.get(status.decode()) not in (QUEUED, RUNNING)
            else:  # not queued yet, or never will be
                ended = created is None or now - float(created) > ENQUEUE_GRACE_S
            if ended:
                self._release(keys=[keys.ACTIVE], args=[field, run_id])

    def _forget_active(self, key: RunKey, run_id: str) -> None:
        try:
            self._release(keys=[keys.ACTIVE], args=[keys.field(*key), run_id])
        except keys.redis_errors():
            pass  # tidied once Redis answers


def _timeout(minutes: float | None) -> int:
    """RQ's hard time limit of a run (-1: none): the minutes cap, which the job keeps itself, and more."""
    return -1 if minutes is None else int(minutes * 60) + TIMEOUT_GRACE_S


def _unreachable(error: Exception) -> str:
    return status_line.queue_unreachable(keys.describe(error))
