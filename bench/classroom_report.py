"""The classroom benchmark's record (``summarise``: the JSON's fields) and its table (``print_table``).

Counts: ``requests`` (cell calls, status polls and presses, each counted once however often a fault made
the student try it again), ``errors``, ``wrong_results`` (cell answers that differ from the engine's, and
streams or statuses of a workbook never trained that show anything but "No training yet"),
``foreign_events`` (socket.io events a client received for a stream it did not open), ``rows_lost`` (epoch
rows of a run that its owner's stream missed or repeated, against the run's own metrics.json) and
``rows_inconsistent`` (stream tables whose rows were not a prefix of the run's). Every Train press is a
run in ``runs`` with its outcome. Latencies are those of answered requests, per label and overall; a
request that a fault cut is tried again and counted in ``requests_cut_by_faults``, its wait left out.
"""

from __future__ import annotations

import os
import platform
import time
from collections import Counter
from dataclasses import asdict

import numpy as np
from classroom_students import AGAIN, Tally
from press_to_first_step import processor

SAMPLES = 20  # errors and wrong results quoted in the record


def percentiles(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"count": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None}
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {"count": len(values), "p50_ms": round(float(p50), 1), "p95_ms": round(float(p95), 1),
            "p99_ms": round(float(p99), 1)}  # fmt: skip


def training_outcomes(runs: list) -> dict:
    """What became of the presses: completed, pressed again after a fault, anything else."""
    outcomes = Counter(run.outcome for run in runs)
    again = Counter(run.outcome for run in runs if run.outcome in AGAIN and run.pressed_again)
    accounted = all(
        run.outcome == "completed" or (run.outcome in AGAIN and run.pressed_again) for run in runs
    )
    return {
        "trainings_pressed": len(runs),
        "trainings_completed": outcomes["completed"],
        "trainings_interrupted_and_pressed_again": again["interrupted"],
        "trainings_dropped_by_restart_and_pressed_again": again["restarted"],
        "trainings_otherwise": {k: v for k, v in outcomes.items() if k != "completed" and k not in again},
        "every_press_completed_or_pressed_again": accounted,
    }


def counts(tallies: list[Tally]) -> dict:
    runs = [run for tally in tallies for run in tally.runs]
    return {
        "requests": sum(t.requests for t in tallies),
        "errors": sum(len(t.errors) for t in tallies),
        "wrong_results": sum(len(t.wrong) for t in tallies),
        "foreign_events": sum(t.foreign for t in tallies),
        "rows_lost": sum(run.rows_lost for run in runs),
        "rows_inconsistent": sum(run.rows_inconsistent for run in runs),
        "rows_checked": sum(run.rows for run in runs),
        "events_received": sum(t.events for t in tallies),
        "requests_cut_by_faults": sum(t.cut_by_faults for t in tallies),
        "stream_reconnects": sum(t.reconnects for t in tallies),
        **training_outcomes(runs),
    }


def latency(tallies: list[Tally]) -> dict:
    by_label: dict[str, list[float]] = {}
    for tally in tallies:
        for label, values in tally.latencies.items():
            by_label.setdefault(label, []).extend(values)
    overall = percentiles([v for values in by_label.values() for v in values])
    by_function = {label: percentiles(values) for label, values in sorted(by_label.items())}
    return {**{k: v for k, v in overall.items() if k != "count"}, "latency_ms": by_function}


def targets(record: dict) -> dict[str, bool]:
    """The issue's targets, each met or not, in this run."""
    met = {name: record[name] == 0 for name in ("errors", "wrong_results", "foreign_events", "rows_lost")}
    met["every_press_completed_or_pressed_again"] = record["every_press_completed_or_pressed_again"]
    cold, warm = record["press_to_first_step_cold_lower_bound_s"], record["press_to_first_step_warm_s"]
    if cold is not None and warm is not None:
        met["warm_at_most_half_of_cold"] = warm <= cold / 2
    return met


def summarise(config, site, tallies, faults, problems, timed, took, load_before, command) -> dict:
    """The run's record (see the module's doc)."""
    record = {
        "benchmark": "a class at the add-in server (bench/classroom_bench.py)",
        "command": command,
        "mode": site.mode,
        "layout": site.layout,
        "students": config.students,
        "trainers": config.trainer_count,
        "web_processes": site.web_processes,
        "train_workers": site.train_workers,
        "seconds": config.seconds,
        "class_took_s": round(took, 1),
        "training_settings": config.settings,
        **counts(tallies),
        **latency(tallies),
        "press_to_first_step_cold_s": timed["cold"],
        "press_to_first_step_cold_lower_bound_s": timed["cold_lower"],
        "press_to_first_step_warm_s": timed["warm"],
        "faults": [asdict(fault) for fault in faults.done] if config.faults else "left out (--no-faults)",
        "bench_problems": problems,
        "error_samples": [e for t in tallies for e in t.errors][:SAMPLES],
        "wrong_samples": [w for t in tallies for w in t.wrong][:SAMPLES],
        "runs": [asdict(run) for t in tallies for run in t.runs],
        "machine": {
            "node": platform.node(),
            "processor": processor(),
            "cpu_count": os.cpu_count(),
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
        },  # fmt: skip
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
    }
    record["targets_met"] = targets(record)
    return record


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def print_table(record: dict) -> None:
    """The run's figures, then the latency per function."""
    machine = record["machine"]
    print(f"classroom: {record['mode']} ({record['layout']})")
    print(
        f"{machine['processor']}, {machine['cpu_count']} cores, load {machine['load_average_before'][0]:.1f}"
    )
    rows = [
        ("students (trainers)", f"{record['students']} ({record['trainers']})"),
        ("web processes / training workers", f"{record['web_processes']} / {record['train_workers']}"),
        ("class length (with its runs' end)", f"{record['seconds']:g} s ({record['class_took_s']:g} s)"),
        ("requests", record["requests"]),
        ("errors", record["errors"]),
        ("wrong results", record["wrong_results"]),
        ("foreign events", f"{record['foreign_events']} (of {record['events_received']} received)"),
        ("rows lost / inconsistent", f"{record['rows_lost']} / {record['rows_inconsistent']} "
                                     f"(of {record['rows_checked']} rows)"),
        ("trainings pressed / completed", f"{record['trainings_pressed']} / {record['trainings_completed']}"),
        ("interrupted, pressed again", record["trainings_interrupted_and_pressed_again"]),
        ("dropped by the restart, pressed again", record["trainings_dropped_by_restart_and_pressed_again"]),
        ("otherwise", record["trainings_otherwise"] or "none"),
        ("requests cut by faults (tried again)", record["requests_cut_by_faults"]),
        ("stream reconnects", record["stream_reconnects"]),
        ("press -> first step, cold", f"{_seconds(record['press_to_first_step_cold_s'])} (started "
                                      f"after {_seconds(record['press_to_first_step_cold_lower_bound_s'])})"),
        ("press -> first step, warm", _seconds(record["press_to_first_step_warm_s"])),
    ]  # fmt: skip
    for name, value in rows:
        print(f"  {name:<40}{value}")
    faults = record["faults"]
    for fault in faults if isinstance(faults, list) else []:
        print(f"  fault at {fault['at_s']:.1f} s: {fault['what']} ({fault['detail']})")
    for problem in record["bench_problems"]:
        print(f"  bench problem: {problem}")
    print(f"\n  {'latency':<32}{'count':>8}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}")
    overall = {"count": record["requests"], **{k: record[k] for k in ("p50_ms", "p95_ms", "p99_ms")}}
    for label, figures in [*record["latency_ms"].items(), ("all", overall)]:
        shown = [
            f"{figures[k]:>10}" if figures[k] is not None else f"{'-':>10}"
            for k in ("p50_ms", "p95_ms", "p99_ms")
        ]
        print(f"  {label:<32}{figures['count']:>8}{''.join(shown)}")
    print(
        "\n  targets: "
        + ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in record["targets_met"].items())
    )
