"""The committed bench records (bench/results/) and the machines they were measured on, for the tables of
bench/doc_figures.py: ``record`` reads one, ``machine`` names its machine in words, ``source_line`` is the
caption under a table."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path

RESULTS = Path(__file__).resolve().parents[1] / "bench" / "results"

# The machines that records name too briefly to tell (the earlier records hold "x86_64" and 2 cores): who
# measured them, said once. A record that names its CPU model is described from its own fields.
MACHINES = {
    "dev-cpu": "the development machine: 2 cores of an Intel Xeon with AVX-512 and AMX at 2.6 GHz (native "
    "bf16, so training ran in bf16 autocast), torch 2.14.1",
    "h200": "one NVIDIA H200 (16 CPU cores; torch 2.11.0, CUDA 13.0; bf16 autocast)",
}
SHORT = {"dev-cpu": "Xeon (AMX, bf16), 2 cores", "h200": "H200 GPU"}
# records without a CPU model, and whose they are: checked against what they do hold (machine_key)
DEV_SIGNATURE = {"cpu_count": 2, "torch": "2.14.1+cu130"}


class MissingRecordError(LookupError):
    """A table's record is not (yet) in bench/results/: the table cannot be drawn."""

    def __init__(self, name: str):
        super().__init__(f"bench/results/{name} does not exist (a bench writes it with --out)")
        self.name = name


def has_record(name: str) -> bool:
    return (RESULTS / name).is_file()


@cache
def record(name: str) -> dict:
    """A committed record of bench/results/, by its file name (MissingRecordError when there is none)."""
    if not has_record(name):
        raise MissingRecordError(name)
    return json.loads((RESULTS / name).read_text())


def machine_fields(data: dict) -> dict:
    """The machine part of a record, whichever bench wrote it (mnist_bench's ``machine`` dict, or the
    top-level fields of the server benchmarks)."""
    fields = data["machine"] if isinstance(data.get("machine"), dict) else data
    return {
        "cpu_model": fields.get("cpu_model") or fields.get("processor") or None,
        "cpu_count": fields.get("cpu_count") or fields.get("cpus"),
        "bf16": fields.get("cpu_native_bf16"),
        "gpu": fields.get("gpu"),
        "torch": fields.get("torch"),
    }


def machine_key(name: str) -> str | None:
    """MACHINES' key of a record that does not name its CPU (None for one that does); a record whose
    fields contradict the attribution is refused."""
    fields = machine_fields(record(name))
    if fields["gpu"]:
        assert fields["gpu"] == "NVIDIA H200", f"{name}: a GPU this table does not know: {fields['gpu']}"
        return "h200"
    if fields["cpu_model"]:
        return None
    if name == "backprop.json":  # in-process, without torch's version: measured with the MNIST records
        return "dev-cpu"
    assert all(fields[k] == v for k, v in DEV_SIGNATURE.items()), f"{name}: not the development machine"
    return "dev-cpu"


def machine(name: str, short: bool = False) -> str:
    """The machine a record was measured on, in words (``short``: a table cell's few words)."""
    key = machine_key(name)
    if key:
        return SHORT[key] if short else MACHINES[key]
    fields = machine_fields(record(name))
    cpu = re.sub(r"\s+\d+-Core Processor$", "", fields["cpu_model"])
    if fields["bf16"] is None:
        precision = ""
    else:
        precision = ", native bf16" if fields["bf16"] else ", no native bf16: training in fp32"
    if short:
        return f"{cpu}{' (fp32)' if fields['bf16'] is False else ''}, {fields['cpu_count']} cores"
    torch = f", torch {fields['torch'].split('+')[0]}" if fields["torch"] else ""
    return f"{fields['cpu_count']} cores of an {cpu}{precision}{torch}"


def source_line(*names: str) -> str:
    """The caption under a table: its records, grouped by the machine they were measured on."""
    by_machine: dict[str, list[str]] = {}
    for name in names:
        by_machine.setdefault(machine(name), []).append(f"`{name}`")
    parts = [f"{where} ({', '.join(files)})" for where, files in by_machine.items()]
    return "*Measured on " + "; and on ".join(parts) + "; records in `bench/results/`.*"
