"""Test-wide settings (headless plotting, the xlwings remote engine's licence), the template built once
per session from source, with its openpyxl views (formulas and cached values), the template as LibreOffice
shows and prints it (one LibreOffice pass per mode and test run, shared by every module), a TestClient of
the add-in server per test module (``client``), a run-lock state folder per test (``state_dir``), the add-in
server and a classroom server as real processes, one each per test run (``live_server``, ``classroom``),
one finished tiny training run per session (``finished_run``), a fresh clone of the repository
(``fresh_clone``) and the MNIST bench's smallest run in it (``bench_speed_run``).

The ``slow`` marker (``-m "not slow"``: the quick loop while developing; CI runs everything): a test marked
by hand takes a second or more; a test that uses one of SLOW_FIXTURES is slow by that alone."""

import os
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import openpyxl
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
# xlwings' remote engine (xw.Book(json=...)) is PolyForm Noncommercial: fine for this educational project.
os.environ.setdefault("XLWINGS_LICENSE_KEY", "noncommercial")

# Fixtures that take seconds the first time (LibreOffice, a server process, a training, a clone).
SLOW_FIXTURES = frozenset(
    {"shown_as_opened", "shown_recalculated", "printed", "live_server", "classroom", "finished_run",
     "fresh_clone", "bench_speed_run"}
)  # fmt: skip


def pytest_collection_modifyitems(items):
    """A test that needs one of SLOW_FIXTURES (directly or through another fixture) is ``slow``."""
    for item in items:
        if SLOW_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> Path:
    """workbook_template.xlsm built from source into a temporary folder (tests only read it)."""
    from excel_addin.xlsm import template

    return template.build(tmp_path_factory.mktemp("template") / "workbook_template.xlsm")


def _libreoffice():
    from excel_addin.testing import libreoffice

    if not libreoffice.available():
        pytest.skip("LibreOffice (soffice) is not installed")
    return libreoffice


@pytest.fixture(scope="session")
def shown_as_opened(built):
    """The template as LibreOffice opens it (its default: cached values kept, array formulas recalculated):
    a ``libreoffice.Shown`` (values and error cells of every sheet)."""
    return _libreoffice().shown(built, recalc=False)


@pytest.fixture(scope="session")
def shown_recalculated(built):
    """The template after LibreOffice recalculated every formula (what a student's first edit, Google Sheets
    and Excel without gradsheet's Python show): a ``libreoffice.Shown``."""
    return _libreoffice().shown(built, recalc=True)


@pytest.fixture(scope="session")
def printed(built, tmp_path_factory) -> Path:
    """The template printed to PDF by LibreOffice, as opened (the file's own print setup)."""
    return _libreoffice().convert(built, "pdf", tmp_path_factory.mktemp("printed"), recalc=False)


@pytest.fixture(scope="module")
def formulas(built):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # openpyxl: "extension is not supported" for data bars
        return openpyxl.load_workbook(built, keep_vba=True)


@pytest.fixture(scope="module")
def cached(built):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return openpyxl.load_workbook(built, data_only=True)


@pytest.fixture()
def state_dir(tmp_path, monkeypatch) -> Path:
    """A run-lock state folder of the test's own (``ml.run_lock.STATE_ENV``), for the tests that take run
    locks themselves: their locks and stop files never meet another test's (modules use it with
    ``pytestmark = pytest.mark.usefixtures("state_dir")``)."""
    from ml import run_lock

    path = tmp_path / "state"
    monkeypatch.setenv(run_lock.STATE_ENV, str(path))
    return path


@pytest.fixture(scope="module")
def client():
    """The add-in server's app under FastAPI's TestClient (server_app.client), one per test module."""
    from server_app import client as make_client

    with make_client() as c:
        yield c


# ---- the add-in server as real processes on loopback, each started once per test run ----------------------


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    """``python -m excel_addin.server --http --max-trainings 1``: the one-person server, training one run at
    a time on any machine, shared by the modules that need no option of their own (a server start takes
    seconds). A test that kills, restarts or configures a server starts its own ``LiveServer``."""
    from excel_addin.testing.live_server import LiveServer

    live = LiveServer(tmp_path_factory.mktemp("live-server"), "--http", "--max-trainings", "1").wait_ready()
    yield live
    live.stop()


class Classroom(NamedTuple):
    server: Any  # excel_addin.testing.live_server.LiveServer
    codes: dict[str, str]  # {user id: class code} of everyone enrolled before the server started


@pytest.fixture(scope="session")
def classroom(tmp_path_factory) -> Classroom:
    """A classroom server (``--shared --host 127.0.0.1 --max-trainings 1``, class codes) with Alice, Alice
    Smith, Bob and Carol enrolled and their teacher Ms Smith, shared by the classroom tests. A test that
    revokes a code, or needs a student no other test has touched, enrols one of its own (enrolment and
    revocation take effect while the server runs)."""
    from excel_addin.testing.class_codes import enrol
    from excel_addin.testing.live_server import LiveServer

    folder = tmp_path_factory.mktemp("classroom")
    codes = enrol(folder / "runs", "Alice", "Alice Smith", "Bob", "Carol")
    codes |= enrol(folder / "runs", "Ms Smith", teacher=True)
    options = ("--http", "--shared", "--host", "127.0.0.1", "--max-trainings", "1")
    server = LiveServer(folder, *options).wait_ready()
    yield Classroom(server, codes)
    server.stop()


# ---- shared by the session: one finished tiny training run, a fresh clone, the bench's smallest run ----


class FinishedRun(NamedTuple):
    path: Path  # the run's folder: metrics, charts, checkpoint
    recorder: Any  # run_recorder.Recorder: every event of the run, in order
    ended: Any  # ml.events.RunEnded


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory) -> FinishedRun:
    """One finished tiny training run (the default model, 4,000 images, 2 epochs, one thread), trained once
    per session for the tests that only read a run (its events, files, checkpoint, report). Read it only:
    a test that changes a run works on a copy."""
    from run_recorder import Recorder

    from ml.train import TrainConfig, train

    out = tmp_path_factory.mktemp("finished-run")
    recorder = Recorder()
    config = TrainConfig(epochs=2, batch_size=128, lr=0.2, subset=4000, out_dir=str(out), seed=0, threads=1)
    ended = train(config, [recorder])
    assert ended.status == "completed", ended.error
    return FinishedRun(out, recorder, ended)


@pytest.fixture(scope="session")
def fresh_clone(tmp_path_factory) -> Path:
    """The repository's files as a fresh clone (tests/fresh_clone.py), to run commands with their defaults."""
    import fresh_clone as clone

    return clone.make(tmp_path_factory.mktemp("clone") / "gradsheet")


@pytest.fixture(scope="session")
def bench_speed_run(fresh_clone):
    """bench/mnist_bench.py's speed section at its smallest (one thread, one timed step per pipeline), run
    in the fresh clone with its default output (runs/bench/mnist.json): the finished process."""
    import fresh_clone as clone

    skip = ("--skip-time", "--skip-accuracy", "--skip-predict")
    return clone.run(fresh_clone, "bench/mnist_bench.py", *skip, "--speed-threads", "1", "--speed-steps", "1")
