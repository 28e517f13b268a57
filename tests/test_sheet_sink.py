"""The Train-sheet sink against a real xlwings Book (remote engine): what it writes, and that writes survive
a busy Excel (retried, never lost) and a closed workbook (given up on without stopping training)."""

from __future__ import annotations

from pathlib import Path

import pytest
from openpyxl.utils.cell import column_index_from_string, coordinate_from_string

from excel_addin.sheets import layout
from excel_addin.sheets.sheet_sink import RetryingWriter, SheetSink, is_busy
from excel_addin.sheets.spec import offset
from excel_addin.status_line import format_duration
from excel_addin.testing.remote_book import actions, make_book, picture_png, read
from ml.events import METRIC_COLUMNS, BatchEnd, EpochEnd, RunEnded, RunStarted
from ml.model import build_model, count_parameters
from ml.plots import plot_accuracy_curves, plot_confusion_matrix, plot_loss_curves
from ml.summary import summary_rows


class BusyError(Exception):
    """What pywin32 raises while Excel is in cell-edit mode: com_error(hresult, text, ...)."""

    def __init__(self):
        super().__init__(-2147418111, "Call was rejected by callee.", None, None)
        self.hresult = -2147418111


class GoneError(Exception):
    """What a write to a closed workbook raises (not a busy code)."""

    def __init__(self):
        super().__init__(-2147221080, "The object invoked has disconnected from its clients.", None, None)


class FlakyBook:
    """A real Book whose range writes first fail ``busy`` times as a busy Excel would (or always fail).

    Excel's busy state cannot be produced without Excel; everything else is the real xlwings remote Book.
    """

    def __init__(self, book, busy: int = 0, gone: bool = False):
        self.book, self.busy, self.gone, self.attempts = book, busy, gone, 0
        outer = self

        class Range:
            def __init__(self, rng):
                object.__setattr__(self, "rng", rng)

            def __setattr__(self, name, value):
                outer.attempts += 1
                if outer.gone:
                    raise GoneError()
                if outer.busy > 0:
                    outer.busy -= 1
                    raise BusyError()
                setattr(self.rng, name, value)

        class Sheet:
            def __init__(self, sheet):
                self.sheet = sheet
                self.pictures = sheet.pictures

            def __getitem__(self, address):
                return Range(self.sheet[address])

        class Sheets:
            def __getitem__(self, name):
                return Sheet(book.sheets[name])

        self.sheets = Sheets()


def started(out_dir: Path, epochs: int = 3, start_epoch: int = 1, model_name: str = "small") -> RunStarted:
    model = build_model(model_name)
    return RunStarted(
        config={"model": model_name, "epochs": epochs},
        device="cpu",
        n_params=count_parameters(model),
        summary=summary_rows(model),
        epochs=epochs,
        start_epoch=start_epoch,
        steps_per_epoch=10,
        out_dir=str(out_dir),
    )


def epoch_end(out_dir: Path, epoch: int, epochs: int = 3) -> EpochEnd:
    return EpochEnd(
        epoch=epoch,
        train_loss=1.0 / epoch,
        train_acc=0.5 + 0.1 * epoch,
        test_loss=0.9 / epoch,
        test_acc=0.55 + 0.1 * epoch,
        lr=0.01 / epoch,
        seconds=2.0 + epoch,
        epochs=epochs,
        checkpoint=str(out_dir / "model.pt"),
    )


def history(upto: int, out_dir: Path) -> list[dict]:
    return [dict(zip(METRIC_COLUMNS, epoch_end(out_dir, e).row(), strict=True)) for e in range(1, upto + 1)]


def value(book, address: str, rows: int = 1, columns: int = 1):
    return read(book, layout.TRAIN_SHEET, address, rows, columns)


def sheet_row(event: EpochEnd) -> list:
    """An epoch's metrics in the order of the sheet's table columns (layout.TRAIN_METRIC_COLUMNS)."""
    return [getattr(event, name) for name in layout.TRAIN_METRIC_COLUMNS]


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def test_helpers():
    assert offset("A19", rows=3) == "A22"
    assert offset("Z3", columns=1) == "AA3"
    assert offset("AZ10", rows=-1, columns=1) == "BA9"
    assert format_duration(42) == "0:42" and format_duration(3725) == "1:02:05"
    assert is_busy(BusyError()) and not is_busy(GoneError()) and not is_busy(ValueError("x"))


@pytest.mark.slow
def test_a_run_writes_status_rows_summary_and_pictures(tmp_path):
    book = make_book()
    sink = SheetSink(book, progress_every=0.0)
    start = started(tmp_path)
    sink.handle(start)
    assert value(book, layout.TRAIN_STATUS_CELL) == "Training on cpu: starting epoch 1 of 3"
    assert value(book, layout.TRAIN_DEVICE_CELL) == "cpu"
    header = layout.TRAIN_METRICS_HEADER_CELL
    assert value(book, header, 1, len(METRIC_COLUMNS)) == [list(layout.TRAIN_METRIC_COLUMNS)]
    summary = value(book, layout.TRAIN_SUMMARY_HEADER_CELL, len(start.summary) + 2, 5)
    assert summary[0] == ["Layer", "Output shape", "Params", "Jump", "RF"]
    assert summary[1:-1] == [[r.layer, r.shape, r.params, r.jump, r.rf] for r in start.summary]
    assert summary[-1] == ["Total", None, start.n_params, None, None]

    sink.handle(BatchEnd(epoch=1, step=5, steps=10, loss=0.7, acc=0.6, lr=0.01, elapsed=4.0))
    status = value(book, layout.TRAIN_STATUS_CELL)
    # ETA from the pace so far: 5 steps in 4 s, 2.5 epochs left at 8 s per epoch -> 20 s.
    assert status == "Training on cpu: epoch 1 of 3, step 5/10, loss 0.7000, acc 60.00%, ETA 0:20"
    assert value(book, layout.TRAIN_PROGRESS_CELL) == pytest.approx(0.5 / 3, abs=1e-4)

    for epoch in (1, 2, 3):
        plot_loss_curves(history(epoch, tmp_path), tmp_path / "loss_curves.png")
        plot_accuracy_curves(history(epoch, tmp_path), tmp_path / "accuracy_curves.png")
        sink.handle(epoch_end(tmp_path, epoch))
        row = value(book, offset(header, rows=epoch), 1, 7)[0]
        assert row == pytest.approx(sheet_row(epoch_end(tmp_path, epoch)))
    assert value(book, offset(header, rows=4), 1, 7) == [[None] * 7]
    assert value(book, layout.TRAIN_PROGRESS_CELL) == 1.0

    import numpy as np

    plot_confusion_matrix(np.eye(10, dtype=int) * 7, tmp_path / "confusion_matrix.png")
    sink.handle(RunEnded("completed", 3, 0.85, 0.85, str(tmp_path)))
    assert value(book, layout.TRAIN_STATUS_CELL) == (
        f"Completed: 3 epochs, test accuracy 85.00%, best 85.00%. Files in {tmp_path}"
    )

    pictures = book.sheets[layout.TRAIN_SHEET].pictures
    assert sorted(p.name for p in pictures) == ["accuracy_curves", "confusion_matrix", "loss_curves"]
    added = actions(book, "addPicture", layout.TRAIN_SHEET)
    updated = actions(book, "updatePicture", layout.TRAIN_SHEET)
    # Each chart is added once, at its anchor cell, then replaced in place under the same name.
    assert len(added) == 3 and len(updated) == 4
    for action in added:
        assert picture_png(action).startswith(b"\x89PNG")
    anchors = {(a["args"][1], a["args"][2]) for a in added}  # (column, row), 0-based
    expected = set()
    for name in ("loss_curves", "accuracy_curves", "confusion_matrix"):
        letters, row = coordinate_from_string(layout.TRAIN_PICTURE_CELLS[name])
        expected.add((column_index_from_string(letters) - 1, row - 1))
    assert anchors == expected
    assert {a["args"][2] for a in updated} == {"loss_curves", "accuracy_curves"}
    assert picture_png(updated[-1]) == (tmp_path / "accuracy_curves.png").read_bytes()


def test_busy_excel_is_retried_and_no_row_is_lost(tmp_path):
    book = make_book()
    clock = Clock()
    flaky = FlakyBook(book, busy=4)
    sink = SheetSink(flaky, writer=RetryingWriter(sleep=clock.sleep, clock=clock))
    sink.handle(started(tmp_path))
    sink.handle(epoch_end(tmp_path, 1))
    assert sink.writer.retries == 4 and not sink.writer.pending
    assert value(book, offset(layout.TRAIN_METRICS_HEADER_CELL, rows=1)) == 1

    # Excel stays busy longer than an epoch's patience: the row waits in the queue, training goes on...
    flaky.busy = 10_000
    sink.handle(epoch_end(tmp_path, 2))
    assert f"block:{offset(layout.TRAIN_METRICS_HEADER_CELL, rows=2)}" in sink.writer.pending
    assert value(book, offset(layout.TRAIN_METRICS_HEADER_CELL, rows=2)) is None
    # ... and is written as soon as Excel answers again.
    flaky.busy = 0
    sink.handle(epoch_end(tmp_path, 3))
    assert not sink.writer.pending
    for epoch in (1, 2, 3):
        row = value(book, offset(layout.TRAIN_METRICS_HEADER_CELL, rows=epoch), 1, 7)[0]
        assert row == pytest.approx(sheet_row(epoch_end(tmp_path, epoch)))


def test_closed_workbook_detaches_quietly(tmp_path, capsys):
    book = make_book()
    flaky = FlakyBook(book)
    sink = SheetSink(flaky, progress_every=0.0)
    sink.handle(started(tmp_path))
    flaky.gone = True
    attempts = flaky.attempts
    for step in range(1, 10):
        sink.handle(BatchEnd(epoch=1, step=step, steps=10, loss=0.5, acc=0.5, lr=0.01, elapsed=1.0))
    assert sink.writer.detached
    assert flaky.attempts - attempts == sink.writer.max_failed_flushes  # one try per flush, then silence
    sink.handle(epoch_end(tmp_path, 1))
    sink.handle(RunEnded("completed", 1, 0.6, 0.6, str(tmp_path)))
    assert flaky.attempts - attempts == sink.writer.max_failed_flushes
    assert "no longer answers" in capsys.readouterr().err


def test_resume_keeps_earlier_rows_and_stopped_status(tmp_path):
    first_row = offset(layout.TRAIN_METRICS_HEADER_CELL, rows=1)
    row1 = sheet_row(epoch_end(tmp_path, 1))
    cells = {offset(first_row, columns=c): v for c, v in enumerate(row1)}
    book = make_book(cells={layout.TRAIN_SHEET: cells})
    sink = SheetSink(book)
    sink.handle(started(tmp_path, epochs=3, start_epoch=2))
    assert value(book, first_row, 1, 7)[0] == pytest.approx(row1)
    sink.handle(epoch_end(tmp_path, 2))
    sink.handle(RunEnded("stopped", 2, 0.75, 0.75, str(tmp_path)))
    assert value(book, layout.TRAIN_STATUS_CELL).startswith("Stopped after 2 epochs (checkpoint kept)")
    assert value(book, layout.TRAIN_PROGRESS_CELL) == pytest.approx(2 / 3, abs=1e-4)


def test_a_shorter_models_summary_leaves_nothing_of_a_longer_ones(tmp_path):
    book = make_book()
    for name in ("tiny", "small"):  # 47 layers (residual connections), then 18
        start = started(tmp_path / name, model_name=name)
        SheetSink(book, progress_every=0.0).handle(start)
    longest = len(summary_rows(build_model("tiny"))) + 2  # header, layers, total
    rows = value(book, layout.TRAIN_SUMMARY_HEADER_CELL, longest + 5, 5)
    n = len(start.summary)
    assert rows[n + 1] == ["Total", None, start.n_params, None, None]
    assert rows[n + 2 :] == [[None] * 5] * (len(rows) - n - 2)
