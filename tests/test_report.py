"""The headless report: a real (tiny) training run's folder becomes a Train-sheet workbook that openpyxl and
LibreOffice open, with the run's metrics, summary, native charts and the four chart pictures."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import openpyxl
import pytest
from PIL import Image

from excel_addin.report import ReportError, build_report, main
from excel_addin.sheets import layout
from excel_addin.sheets.spec import offset
from excel_addin.testing import libreoffice
from ml.events import METRIC_COLUMNS


@pytest.fixture
def run_dir(finished_run) -> Path:
    """The session's finished tiny run (conftest.py: the default model, 2 epochs); read only."""
    return finished_run.path


@pytest.mark.slow
def test_report_holds_the_runs_metrics_summary_and_charts(run_dir, tmp_path):
    out = build_report(run_dir, tmp_path / "report.xlsx")
    book = openpyxl.load_workbook(out)
    sheet = book[layout.TRAIN_SHEET]
    with open(run_dir / "metrics.csv", newline="") as f:
        expected = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]
    header = layout.TRAIN_METRICS_HEADER_CELL
    names = [sheet[offset(header, columns=j)].value for j in range(7)]
    assert sorted(names) == sorted(METRIC_COLUMNS)
    for epoch, row in enumerate(expected, start=1):
        cells = [sheet[offset(header, rows=epoch, columns=j)].value for j in range(7)]
        assert dict(zip(names, cells, strict=True)) == pytest.approx(row)
    assert sheet[offset(header, rows=3)].value is None
    assert sheet[layout.TRAIN_STATUS_CELL].value.startswith("Completed: 2 epochs, test accuracy")
    assert sheet[layout.TRAIN_PROGRESS_CELL].value == 1.0
    assert sheet[layout.TRAIN_SETTING_CELLS["model"]].value == "default"
    assert sheet[layout.TRAIN_SUMMARY_HEADER_CELL].value == "Layer"
    assert len(sheet._charts) == len(layout.TRAIN_CHART_CELLS)
    # The four PNG charts, at their anchors
    anchors = sorted(
        f"{openpyxl.utils.get_column_letter(i.anchor._from.col + 1)}{i.anchor._from.row + 1}"
        for i in sheet._images
    )
    assert anchors == sorted(layout.TRAIN_PICTURE_CELLS.values())


@pytest.mark.slow
def test_report_opens_in_libreoffice_and_shows_numbers_and_pictures(run_dir, tmp_path):
    if not libreoffice.available() or shutil.which("pdftotext") is None:
        pytest.skip("LibreOffice and poppler-utils are needed (CI installs them)")
    out = build_report(run_dir, tmp_path / "report.xlsx")
    pdf = libreoffice.convert(out, "pdf", tmp_path, recalc=False)
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True).stdout
    assert "Completed: 2 epochs" in text and "train_loss" in text and "Conv2d-1" in text
    with open(run_dir / "metrics.csv", newline="") as f:
        last = list(csv.reader(f))[-1]
    assert f"{float(last[1]):.4f}" in text  # the last epoch's train loss, as the sheet formats it
    pages = libreoffice.rasterize(pdf, tmp_path, dpi=50)  # the same printout: one LibreOffice pass
    image = Image.open(pages[0]).convert("RGB")
    # The pictures put colour on the page: the charts' lines and the confusion matrix's reds.
    colours = image.getcolors(maxcolors=1_000_000)
    coloured = sum(n for n, (r, g, b) in colours if max(r, g, b) - min(r, g, b) > 60)
    assert coloured > 0.002 * image.width * image.height


def test_bad_run_folder_is_named(tmp_path, capsys):
    with pytest.raises(ReportError, match="metrics.json is missing"):
        build_report(tmp_path)
    (tmp_path / "metrics.json").write_text('{"epochs": [{"epoch": 1}]}')
    with pytest.raises(ReportError, match="is not a metrics file of ml.train"):
        build_report(tmp_path)
    assert main([str(tmp_path / "nowhere")]) == 2
    assert "no training run in" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_writes_the_default_report(run_dir, tmp_path):
    copy = tmp_path / "moved"
    shutil.copytree(run_dir, copy)  # a moved run folder still finds its own pictures
    proc = subprocess.run(
        [sys.executable, "-m", "excel_addin.report", str(copy)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(copy / "report.xlsx")
    sheet = openpyxl.load_workbook(copy / "report.xlsx")[layout.TRAIN_SHEET]
    assert len(sheet._images) == 4
    # Paths on the sheet are the folder's, not the ones stored at training time.
    assert sheet[layout.TRAIN_STATUS_CELL].value.endswith(f"Files in {copy}")
    assert sheet[layout.TRAIN_SETTING_CELLS["out_dir"]].value == str(copy)
    assert sheet[layout.TRAIN_SETTING_CELLS["model_path"]].value == str(copy / "model.pt")


# ---- a broken run folder: a clear message naming the file, or a report without the broken part -------


@pytest.fixture
def copy_of_run(run_dir, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    return copy


def _edit_record(folder: Path, edit) -> None:
    path = folder / "metrics.json"
    record = json.loads(path.read_text())
    edit(record)
    path.write_text(json.dumps(record))


def test_nan_metrics_become_empty_cells(copy_of_run, tmp_path, capsys):
    """metrics.json writes non-finite values as null (a diverged run): those cells stay empty."""

    def diverge(record):
        record["epochs"][1]["train_loss"] = None
        record["epochs"][1]["test_loss"] = None

    _edit_record(copy_of_run, diverge)
    assert main([str(copy_of_run), "--out", str(tmp_path / "nan.xlsx")]) == 0
    sheet = openpyxl.load_workbook(tmp_path / "nan.xlsx")[layout.TRAIN_SHEET]
    header = layout.TRAIN_METRICS_HEADER_CELL
    names = [sheet[offset(header, columns=j)].value for j in range(7)]
    second = dict(zip(names, [sheet[offset(header, rows=2, columns=j)].value for j in range(7)], strict=True))
    assert second["epoch"] == 2 and second["train_loss"] is None and second["test_loss"] is None
    assert 0 < second["test_acc"] <= 1
    assert "Traceback" not in capsys.readouterr().err


def test_unknown_model_leaves_the_summary_empty_with_a_warning(copy_of_run, tmp_path, capsys):
    def rename(record):
        record["run"]["config"]["model"] = "mystery"

    _edit_record(copy_of_run, rename)
    (copy_of_run / "model.pt").unlink()
    assert main([str(copy_of_run), "--out", str(tmp_path / "mystery.xlsx")]) == 0
    err = capsys.readouterr().err
    assert "warning: no model summary" in err and "'mystery'" in err and "model.pt" in err
    sheet = openpyxl.load_workbook(tmp_path / "mystery.xlsx")[layout.TRAIN_SHEET]
    assert sheet[layout.TRAIN_SETTING_CELLS["model"]].value == "mystery"
    assert sheet[offset(layout.TRAIN_SUMMARY_HEADER_CELL, rows=1)].value is None
    assert sheet[layout.TRAIN_SETTING_CELLS["model_path"]].value is None


def test_a_corrupt_png_is_left_out_with_a_warning(copy_of_run, tmp_path, capsys):
    (copy_of_run / "confusion_matrix.png").write_bytes(b"\x89PNG\r\n\x1a\n but nothing else")
    assert main([str(copy_of_run), "--out", str(tmp_path / "pictures.xlsx")]) == 0
    err = capsys.readouterr().err
    assert f"warning: left out {copy_of_run / 'confusion_matrix.png'}: not a readable PNG" in err
    images = openpyxl.load_workbook(tmp_path / "pictures.xlsx")[layout.TRAIN_SHEET]._images
    assert len(images) == 3


@pytest.mark.slow
def test_an_unwritable_output_is_named(copy_of_run, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    for out in (blocker / "report.xlsx", tmp_path):  # inside a file; an existing folder
        assert main([str(copy_of_run), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: cannot write the report {out}: ") and "Traceback" not in err
    assert not list(tmp_path.glob("*.tmp.xlsx"))  # no half-written report left behind


def test_a_metrics_file_without_epoch_numbers_is_named(copy_of_run, capsys):
    def break_rows(record):
        record["epochs"][0] = {"loss": 1.0}

    _edit_record(copy_of_run, break_rows)
    assert main([str(copy_of_run)]) == 2
    err = capsys.readouterr().err
    assert f"error: {copy_of_run / 'metrics.json'} is not a metrics file of ml.train" in err
