"""Test-wide settings (headless plotting, the xlwings remote engine's licence), the template built once
per session from source, with its openpyxl views (formulas and cached values), and a TestClient of the
add-in server per test module (``client``)."""

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
