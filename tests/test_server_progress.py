"""Where a workbook's run stands, read from its progress.json alone (as after a server restart): the spill
of TRAIN_PROGRESS, a resumed run's earlier epochs, a run whose process died, no run at all."""

from __future__ import annotations

import server_app  # noqa: F401 - configures the server's runs folder for this session
from test_progress_file import run_events

from excel_addin import status_line
from excel_addin.server.auth import LOCAL_ID
from excel_addin.server.options import options
from excel_addin.server.runs import RunKey, files, run_book, run_folder
from excel_addin.sheets.layout import TRAIN_METRIC_COLUMNS
from ml.events import RunStarted
from ml.run_dir import RunDir
from ml.sinks import ProgressFileSink


def write_run(wid: str, events) -> RunDir:
    run_dir = RunDir(run_folder(options().runs, RunKey(LOCAL_ID, wid)) / "runs" / "mnist")
    run_dir.path.mkdir(parents=True, exist_ok=True)
    sink = ProgressFileSink(run_dir, every=0.0)
    for event in events:
        sink.handle(event)
    return run_dir


def view(wid: str):
    """Where the local user's workbook ``wid``'s run stands, as the run book says."""
    return run_book().view(RunKey(LOCAL_ID, wid))


def test_a_finished_run_as_the_stream_spills_it():
    run_dir = write_run("finished", run_events("runs/finished"))
    table = view("finished").table()
    assert table[0][:2] == [
        "status",
        "Completed: 2 epochs, test accuracy 87.00%, best 87.00%. Files in runs/finished",
    ]
    assert table[1][:2] == ["progress", 1.0] and table[2][:2] == ["queue", ""]
    assert table[3] == list(TRAIN_METRIC_COLUMNS)
    assert [row[0] for row in table[4:]] == [1, 2] and table[5][
        TRAIN_METRIC_COLUMNS.index("test_acc")
    ] == 0.87
    assert {len(row) for row in table} == {len(TRAIN_METRIC_COLUMNS)}
    assert files.latest_run(run_folder(options().runs, RunKey(LOCAL_ID, "finished"))) == run_dir


def test_a_resumed_run_shows_its_earlier_epochs_too():
    start, *rest = run_events("runs/resumed")
    earlier = {
        "epoch": 1,
        "train_loss": 0.9,
        "train_acc": 0.7,
        "test_loss": 0.8,
        "test_acc": 0.75,
        "lr": 0.1,
        "seconds": 3.0,
    }
    resumed = RunStarted(**{**start.__dict__, "start_epoch": 2, "history": [earlier]})
    epoch_two = [e for e in rest if getattr(e, "epoch", None) == 2]
    write_run("resumed", [resumed, *epoch_two])
    rows = view("resumed").rows
    assert [row[0] for row in rows] == [1, 2] and rows[0][TRAIN_METRIC_COLUMNS.index("test_acc")] == 0.75


def test_a_run_whose_process_died_says_so():
    write_run("died", run_events("runs/died")[:6])  # started, some steps, no end, and no process holds it
    state = view("died")
    assert state.status.startswith(
        "Interrupted: the training process ended unexpectedly: Training on cpu: epoch 1"
    )
    assert state.status.endswith("train_worker.log")


def test_no_run_yet():
    assert view("never-trained").status == status_line.NO_RUN_TEXT


def test_the_summary_part_is_the_train_sheets_summary_table():
    """TRAIN_PROGRESS(id, "summary") fills the add-in Train sheet's model-summary block, as the sink does in
    the workbook route."""
    from ml.summary_table import SUMMARY_HEADER, summary_cells

    started, *rest = run_events("runs/summary")
    write_run("summary", [started, *rest])
    table = view("summary").part("summary")
    assert table[0] == list(SUMMARY_HEADER)
    assert table[1:-1] == [summary_cells(row) for row in started.summary] and len(table) == 3
    assert table[-1] == ["Total", "", started.n_params, "", ""]
    assert view("no-run-yet").part("summary") == [list(SUMMARY_HEADER)]
