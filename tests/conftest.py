"""Test-wide settings (headless plotting, the xlwings remote engine's licence), the template built once
per session from source, with its openpyxl views (formulas and cached values), the template as LibreOffice
shows and prints it (one LibreOffice pass per mode and test run, shared by every module), and a TestClient
of the add-in server per test module (``client``)."""

import os
import warnings
from pathlib import Path

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
