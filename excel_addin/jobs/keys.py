"""Every Redis key of the distributed mode, named once, and the connection both sides open.

RQ keeps its own keys (``rq:queue:gradsheet``, ``rq:job:<run id>``, its registries and workers): a run's
id is its RQ job's id. gradsheet's keys, all under ``gradsheet:``:

* ``gradsheet:active`` (hash): ``<owner>/<workbook>`` -> the run id of that workbook's queued or running
  run: what the caps count (at most one per workbook, ``per_owner`` per user);
* ``gradsheet:latest`` (hash): ``<owner>/<workbook>`` -> its latest run id (what TRAIN_PROGRESS shows);
* ``gradsheet:notices`` (hash): ``<owner>/<workbook>`` -> what a button said to it (JSON: text, progress,
  time on Redis's clock);
* ``gradsheet:caps`` (hash): the caps every web process enforces (``per_owner``, ``queue``, ``minutes``);
* ``gradsheet:run:<id>`` (hash): owner, workbook, config (TrainConfig JSON, out_dir as the web side names
  it), created (Redis's clock), error (why it failed before training);
* ``gradsheet:run:<id>:events`` (stream): the run's training events, one ``event`` field of JSON each
  (``ml.events.event_to_dict``), in order;
* ``gradsheet:run:<id>:files`` (hash): file name -> bytes (model, metrics, charts, log), and
  ``gradsheet:run:<id>:version``, counted up after each shipment;
* ``gradsheet:run:<id>:stop``: set when Stop was pressed.

A run's keys expire ``RUN_TTL_S`` after it was queued (its files are in the owner's folder by then).
"""

from __future__ import annotations

import json
from typing import Any

PREFIX = "gradsheet:"
QUEUE = "gradsheet"  # RQ's queue of trainings
ACTIVE = PREFIX + "active"
LATEST = PREFIX + "latest"
NOTICES = PREFIX + "notices"
CAPS = PREFIX + "caps"
RUN_TTL_S = 7 * 24 * 3600
EVENT_FIELD = b"event"
# A job's execution is declared abandoned (RQ: AbandonedJobError, then its FailedJobRegistry) when its
# slot sent no heartbeat for this long: a training killed with SIGKILL reads "Interrupted" after it.
HEARTBEAT_EVERY_S = 2
HEARTBEAT_TTL_S = 12


def field(owner: str, workbook: str) -> str:
    """A workbook's field in the ACTIVE, LATEST and NOTICES hashes."""
    return f"{owner}/{workbook}"


def run(run_id: str) -> str:
    return f"{PREFIX}run:{run_id}"


def events(run_id: str) -> str:
    return f"{run(run_id)}:events"


def files(run_id: str) -> str:
    return f"{run(run_id)}:files"


def version(run_id: str) -> str:
    return f"{run(run_id)}:version"


def stop(run_id: str) -> str:
    return f"{run(run_id)}:stop"


def run_keys(run_id: str) -> tuple[str, ...]:
    """Every key of a run (to give them all the run's time to live)."""
    return run(run_id), events(run_id), files(run_id), version(run_id), stop(run_id)


def connect(url: str) -> Any:
    """A client of the Redis at ``url`` that fails fast when it is away (one retry, for a connection the
    server closed, then the error) instead of redis-py's default of retrying for seconds."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    once = Retry(NoBackoff(), 1)
    return redis.Redis.from_url(
        url, socket_connect_timeout=3, socket_timeout=10, retry=once, health_check_interval=15
    )


def shown_url(url: str) -> str:
    """A Redis URL fit for a log: without its password."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc)) if parts.password else url


def redis_errors() -> tuple[type[Exception], ...]:
    """What a Redis that went away raises."""
    import redis

    return (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def describe(error: Exception) -> str:
    """A connection error in a line (redis-py's words, without the exception's class or a last full stop)."""
    return str(error).strip().rstrip(".") or type(error).__name__


def redis_now(client: Any) -> float:
    """Redis's clock (seconds): the one clock every web process and worker shares."""
    seconds, micros = client.time()
    return seconds + micros / 1e6


def say(client: Any, owner: str, workbook: str, text: str, progress: float | None = None) -> None:
    """Keep what was said to a workbook (by a button, or a worker's time limit), on Redis's clock: its
    TRAIN_PROGRESS shows it until the run moves on."""
    record = {"text": text, "progress": progress, "time": redis_now(client)}
    client.hset(NOTICES, field(owner, workbook), json.dumps(record))
