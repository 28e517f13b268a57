"""The figures written in the prose of README.md and docs/*.md, outside the generated tables: each
percentage or time (``%``, ``ms``, ``s``, ``seconds``, ``minutes``) must be listed in ``PROSE`` with what
backs it, so that no measured figure sits in the docs without a record.

A figure is backed either by a committed record (``Record``: the file, the values' paths in it and how they
are written; the check reads them and formats them, so the prose must say exactly what the record holds) or
is no measurement at all (``Fixed``: a setting's default, a limit, a target, a layout's scale, with the
reason). Code blocks, inline code, HTML comments and the generated blocks are not prose. ``unbacked``
lists what is found but not listed, and listed but no longer found; bench/doc_figures.py and
tests/test_docs_figures.py run it.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from doc_records import record

NUMBER = r"[±~]?\d[\d,]*(?:\.\d+)?"
FIGURE = re.compile(  # a number, or several ("28.8 / 30.2 / 29.7", "0.15-0.3", "28.8 to 30.2"), and a unit
    rf"(?<![\w.,/-]){NUMBER}(?:\s?(?:-|to|/)\s?{NUMBER})*\s?(?:%|ms\b|s\b|seconds?\b|minutes?\b)"
)
NOT_PROSE = re.compile(r"```.*?```|`[^`\n]*`|<!-- figures: .*?<!-- /figures -->|<!--.*?-->", re.DOTALL)


@dataclass(frozen=True)
class Record:
    """A figure read from a committed record: ``paths`` (dotted, list indexes as numbers) in ``file``,
    written by ``write`` (their values in, the text out)."""

    file: str
    paths: tuple[str, ...]
    write: Callable[..., str]

    def text(self) -> str:
        return self.write(*(value_at(record(self.file), path) for path in self.paths))


@dataclass(frozen=True)
class Fixed:
    """Not a measurement: a default, a limit, a target or a layout's figure (``why`` says which)."""

    why: str


def value_at(data, path: str):
    for part in path.split("."):
        data = data[int(part)] if isinstance(data, list) else data[part]
    return data


def figures(markdown: str) -> list[str]:
    """The figures of ``markdown``'s prose, in order (whitespace inside a figure made one space)."""
    prose = NOT_PROSE.sub(" ", markdown)
    return [re.sub(r"\s+", " ", m[0]) for m in FIGURE.finditer(prose)]


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} minutes"


def mean_percent(field: str) -> Callable[[list[dict]], str]:
    """The runs' mean of ``field`` (a fraction) in percent, as the docs write it."""
    return lambda runs: f"{100 * statistics.fmean(run[field] for run in runs):.2f}%"


def span(values: list[float], between: str) -> str:
    """The lowest and the highest of ``values``, in seconds."""
    return f"{min(values):.1f}{between}{max(values):.1f} s"


def percent(value: float) -> str:
    return f"{100 * value:.2f}%"


def log_mean(model: str) -> Record:
    """The standard recipe's mean for ``model`` in the research log (the development machine's runs)."""
    entries = record(LOG)["entries"]
    index = next(
        k for k, e in enumerate(entries)
        if e["model"] == model and e["change"] == "the standard recipe" and e["machine"] == "dev-cpu"
    )  # fmt: skip
    return Record(LOG, (f"entries.{index}.test_acc",), lambda accs: f"{statistics.fmean(accs):.2f}%")


TIME, GPU, LOG = "mnist_time.json", "mnist_gpu.json", "research_log.json"
TARGET = Fixed("the accuracy target of the time-to-accuracy benchmark (mnist_bench --target)")
DROPOUT = Fixed("a setting of the models: their channel dropout")
PRINT = Fixed("a scale of the print layout (excel_addin/sheets/print_layout.py), not a measurement")
FAST_RUNS, STANDARD_RUNS = "time.pipelines.fast.runs", "time.pipelines.standard.runs"

# Every figure of the prose, per file (relative to the repository's root), in the order it appears: its
# text as written, and what backs it.
PROSE: dict[str, list[tuple[str, Record | Fixed]]] = {
    "docs/benchmark.md": [
        ("99.5%", TARGET),
        ("99.5%", TARGET),
        ("100%", Fixed("a bound: a fraction of the FP32 peak that bf16 can exceed")),
        ("99.70%", Fixed("the course's accuracy target under 20k parameters")),
        ("99.5%", Fixed("the course's accuracy target under 5,000 parameters")),
        ("99.2%", Fixed("the course's stretch target under 2,000 parameters")),
    ],
    "docs/classroom.md": [
        ("15 s", Fixed("the heartbeat's time to live (12 s) and the supervisor's look, a design figure")),
        ("12 s", Fixed("a training slot's heartbeat time to live (excel_addin/jobs)")),
        ("0.15 s", Record("press_to_first_step.json", ("results.1.median_s",), "{:.2f} s".format)),
        ("5.38 s", Record("press_to_first_step.json", ("results.0.median_s",), "{:.2f} s".format)),
    ],
    "docs/cli.md": [
        ("99.5%", TARGET),
        ("16 minutes", Record(TIME, ("wall_s",), minutes)),
    ],
    "docs/models.md": [
        ("99.61%", Record(TIME, (STANDARD_RUNS,), mean_percent("final_test_acc"))),
        ("99.52%", Record("mnist_small.json", ("accuracy.small.mean_final_test_acc",), percent)),
        ("99.64%", log_mean("wide")),
        ("99.48%", Record("mnist_tiny.json", ("accuracy.tiny.mean_final_test_acc",), percent)),
        ("99.50%", Record("mnist_tiny.json", ("accuracy.tiny.mean_final_test_acc_tta",), percent)),
        ("99.60%", Record(TIME, (FAST_RUNS,), mean_percent("final_test_acc"))),
        ("99.60%", log_mean("s6")),
        ("99.43%", Record(LOG, ("references.0.test_acc",), "{:.2f}%".format)),
        ("99.58%", Record(GPU, ("accuracy.default.mean_final_test_acc",), percent)),
        ("99.66%", Record(GPU, ("accuracy.default.mean_final_test_acc_tta",), percent)),
        ("5%", DROPOUT),
        (
            "11.6%",
            Record(
                "mnist_speed.json",
                ("speed.by_threads.2.pipelines",),
                lambda p: f"{1 - p['project_strided_model']['epoch_s'] / p['project']['epoch_s']:.1%}",
            ),
        ),
        (
            "5.99 s",
            Record(
                "mnist_speed.json",
                ("speed.by_threads.2.pipelines.project_strided_model.epoch_s",),
                "{:.2f} s".format,
            ),
        ),
        (
            "6.78 s",
            Record("mnist_speed.json", ("speed.by_threads.2.pipelines.project.epoch_s",), "{:.2f} s".format),
        ),
        ("5%", DROPOUT),
        ("5%", DROPOUT),
        ("99.5%", TARGET),
        (
            "28.8 to 30.2 s",
            Record(
                TIME,
                (FAST_RUNS,),
                lambda runs: span([r["reached_s"] for r in runs], " to "),
            ),
        ),
    ],
    "docs/security.md": [
        ("20 minutes", Fixed("the --max-minutes default of a shared server")),
        ("2 s", Fixed("how often the task pane asks for its status (static/js/gradsheet.js)")),
        ("10 s", Fixed("the window of the default call rate, 2500 per 10 seconds")),
        ("24.0 s", Record("perimeter.json", ("recalculation.seconds",), "{:.1f} s".format)),
    ],
    "docs/workbook.md": [
        ("0 %", Fixed("the progress bar's fallback value: no run")),
        ("30 %", PRINT),
        ("50 %", PRINT),
        ("51 %", PRINT),
        ("65 %", PRINT),
        ("81 %", PRINT),
        ("80 %", PRINT),
        ("54 %", PRINT),
        ("6 %", Fixed("the print layout's margin for LibreOffice's wider columns (print_layout.py)")),
    ],
}


def unbacked(root: Path) -> list[str]:
    """What the prose says that PROSE does not back (or backs wrongly), and what PROSE lists in vain."""
    problems = []
    files = [root / "README.md", *sorted((root / "docs").glob("*.md"))]
    for path in files:
        name = str(path.relative_to(root))
        listed = PROSE.get(name, [])
        found = figures(path.read_text())
        if found != [text for text, _ in listed]:
            problems.append(f"{name}: its prose's figures {found} are not those bench/doc_prose.py lists")
        for text, backing in listed:
            if isinstance(backing, Record) and backing.text() != text:
                problems.append(f"{name}: {text!r}, but {backing.file} says {backing.text()!r}")
    return problems
