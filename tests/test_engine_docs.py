"""The docs against what they describe: every flag of every command is documented in its command's section
(docs/cli.md, docs/addin.md), and docs/models.md's table has the code's parameters and receptive fields
and the accuracies of the committed bench records it names, so neither can drift."""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path

import pytest
from commands import other_parsers, parsers

from ml.model import MnistCNN
from ml.summary import summary_rows
from ml.variants import VARIANTS

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def sections(markdown: str) -> dict[str, str]:
    """The text under each ``## `command` `` heading, by the command."""
    parts = re.split(r"^## `([^`]+)`\s*$", markdown, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def documented_sections() -> dict[str, str]:
    """The ``## `command` `` sections of every page of docs/ (cli.md has most; addin.md the server's)."""
    found: dict[str, str] = {}
    for page in sorted((ROOT / "docs").glob("*.md")):
        found |= sections(page.read_text())
    return found


def test_every_flag_of_every_command_is_in_its_section_of_the_docs():
    documented = documented_sections()
    for prog, parser in {**parsers(), **other_parsers()}.items():
        assert prog in documented, f"docs/ has no section for {prog}"
        flags = [f for a in parser._actions for f in a.option_strings if f.startswith("--") and f != "--help"]
        missing = [
            flag
            for flag in flags
            if f"`{flag}" not in documented[prog] and f" {flag}" not in documented[prog]
        ]
        assert not missing, f"{prog}: {missing} not in its section of docs/"


def model_rows() -> list[list[str]]:
    """The rows of docs/models.md's variants table (cells stripped)."""
    text = (ROOT / "docs" / "models.md").read_text()
    table = text.split("| model | parameters | receptive field |", 1)[1].split("\n\n", 1)[0]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in table.splitlines()[2:]]


def record_figure(record: str, model: str, tta: bool) -> float:
    """The mean final test accuracy (in %) a record holds for a model or, named so, a preset's runs."""
    name = re.search(r"`(\w+\.json)`", record).group(1)
    data = json.loads((RESULTS / name).read_text())
    if name == "research_log.json":  # exploratory runs: the standard recipe's on the development machine
        (entry,) = [
            e for e in data["entries"]
            if e["model"] == model and e["change"] == "the standard recipe" and e["machine"] == "dev-cpu"
        ]  # fmt: skip
        return statistics.fmean(entry["test_acc"])
    preset = re.search(r"preset `(\w+)`", record)
    if preset:
        return 100 * statistics.fmean(
            r["final_test_acc"] for r in data["time"]["pipelines"][preset[1]]["runs"]
        )
    entry = data["accuracy"][model]
    return 100 * (entry["mean_final_test_acc_tta"] if tta else entry["mean_final_test_acc"])


@pytest.mark.parametrize("row", model_rows(), ids=lambda row: row[0])
def test_the_models_table_is_the_codes_and_the_records(row):
    name, params, field, accuracy, record = (
        cell.strip("`") if k == 0 else cell for k, cell in enumerate(row)
    )
    if name == "custom":
        return
    spec = VARIANTS[name]
    assert params == f"{spec.n_params:,}"
    last_conv = [
        r for r in summary_rows(MnistCNN(spec)) if r.layer.startswith("Conv2d") and (r.size or 0) > 1
    ][-1]
    assert field == f"{last_conv.rf} px"
    if accuracy == "no committed record":
        assert not record
        return
    figures = [float(x) for x in re.findall(r"(\d+\.\d+)%", accuracy)]
    assert figures[0] == round(record_figure(record, name, tta=False), 2)
    if "with TTA" in accuracy:
        assert figures[1] == round(record_figure(record, name, tta=True), 2)
