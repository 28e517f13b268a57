"""The one source of a run's state on the add-in server: the run book.

A run belongs to a user and one of their workbooks (``RunKey``: the owner's id from sign-in, never from the
workbook, and the workbook's id, which only separates one user's workbooks); its folder is
``<runs>/<owner>/<workbook>/``. The run book takes Train (``submit``) and Stop (``stop``), says where a
run stands (``view``: queued, running, finished, its rows), keeps what a button said to a workbook
(``say``), and counts the server's trainings (``counts``, ``overview`` for a teacher). ``RunBook`` is that
contract; two books keep it:

* ``local.LocalRuns`` (the default): the queue in this process, trainings in worker processes on this
  machine, runs seen through their files;
* ``redis.RedisRuns`` (``--redis URL``): the queue, the caps, the runs' events and files in Redis, shared by
  every web process; trainings run on the training workers (``python -m excel_addin.worker --redis URL``),
  never in a web process.
"""

from __future__ import annotations

import functools
import threading

from excel_addin.server.runs.base import (
    ACTIVE,
    CANCELLED,
    ENDED,
    FAILED,
    PER_USER,
    QUEUED,
    RUNNING,
    TEST_ACC,
    Refused,
    RunBook,
    RunKey,
    folder_keys,
    owner_folder,
    run_folder,
)

__all__ = ["ACTIVE", "CANCELLED", "ENDED", "FAILED", "PER_USER", "QUEUED", "RUNNING", "TEST_ACC", "Refused",
           "RunBook", "RunKey", "folder_keys", "owner_folder", "run_folder", "run_book"]  # fmt: skip


_making = threading.Lock()


def run_book() -> RunBook:
    """This server's run book, set up from its options on first use: Redis's with ``--redis``.

    Made once, whichever requests ask first: after a restart a whole class reconnects at once, and a
    second local book read the restart journal after the first had rewritten it, so the runs that had
    waited lost their "the server restarted" notice and read "No training yet"."""
    with _making:
        return _made_run_book()


@functools.cache
def _made_run_book() -> RunBook:
    from excel_addin.server.options import options

    if options().redis:
        from excel_addin.server.runs.redis import RedisRuns

        return RedisRuns.from_options(options())
    from excel_addin.server.runs.local import LocalRuns

    return LocalRuns.from_options(options())
