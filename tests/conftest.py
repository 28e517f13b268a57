"""Test-wide settings (headless plotting, the xlwings remote engine's licence), the template built once
per session from source, with its openpyxl views (formulas and cached values), the template as LibreOffice
shows and prints it (one LibreOffice pass per mode and test run, shared by every module), a TestClient of
the add-in server per test module (``client``), one finished tiny training run per session
(``finished_run``), a fresh clone of the repository (``fresh_clone``) and the MNIST bench's smallest run
in it (``bench_speed_run``)."""

import os
import warnings
from pathlib import Path
from typing import Any, NamedTuple

import openpyxl
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
# xlwings' remote engine (xw.Book(json=...)) is PolyForm Noncommercial: fine for this educational project.
os.environ.setdefault("XLWINGS_LICENSE_KEY", "noncommercial")


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


@pytest.fixture(scope="module")
def client():
    """The add-in server's app under FastAPI's TestClient (server_app.client), one per test module."""
    from server_app import client as make_client

    with make_client() as c:
        yield c


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
