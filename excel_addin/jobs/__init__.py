"""Trainings as jobs on a Redis queue (RQ): what the add-in server's web processes and the training workers
of the distributed mode share (``python -m excel_addin.server --redis URL`` and
``python -m excel_addin.worker --redis URL``; docs/classroom.md).

Why RQ: a training is one Python call that runs for seconds to minutes, one at a time per slot, with a
result nobody waits on; RQ is exactly a Redis list of such calls plus the registries that say what became of
each (started, finished, failed, cancelled, abandoned), with its own tools to watch them (``rq info``,
rq-dashboard). Celery would bring a broker abstraction, a result backend and a prefork pool that this
needs none of, and its pool forks, which CUDA forbids.

Modules: ``keys`` (every Redis key, the connection and how its failure is worded), ``publish`` (the sinks
that send a run's events and files from the worker to Redis), ``task`` (the job: one training on a
worker), ``slot`` (a warm training process: RQ's SimpleWorker kept alive by heartbeats) and
``supervisor`` (``python -m excel_addin.worker --redis URL``: the slots of one machine, restarted when they
die). The web side's half is ``excel_addin.server.runs.redis``. Nothing here imports the server, so a
training machine needs neither xlwings Server nor a licence key.
"""
