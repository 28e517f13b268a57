"""Build ``workbook_template.xlsm`` from source: ``python -m excel_addin.xlsm [--out PATH]``.

Renders gradsheet's workbook description (``workbook.gradsheet_workbook``) with XlsxWriter, with cached
values computed by ``ml.backprop`` and the shipped model, and embeds the VBA project (``vba``). The build
is reproducible: the same sources give the same bytes (fixed creation date, deterministic VBA and zip),
and a test checks the committed workbook against a fresh build.
"""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from excel_addin.sheets.workbook import gradsheet_workbook
from excel_addin.sheets.xlsx_render import write_workbook
from excel_addin.xlsm.vba import vba_project_bytes

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "workbook_template.xlsm"
BUILD_COMMAND = "python -m excel_addin.xlsm"
CREATED = dt.datetime(2025, 1, 1, 0, 0, 0)  # fixed, so two builds are byte-identical


def build(out: str | Path = DEFAULT_OUT) -> Path:
    """Write the template to ``out`` and return its path."""
    spec = gradsheet_workbook()
    properties = {
        "title": "gradsheet",
        "subject": "Train neural networks from a spreadsheet",
        "author": "gradsheet",
        "comments": f"Built by {BUILD_COMMAND}; do not edit by hand.",
        "created": CREATED,
    }
    return write_workbook(spec.sheets, out, spec.names, spec.active, properties, vba=vba_project_bytes())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=BUILD_COMMAND, description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(DEFAULT_OUT), help=f"output path (default: {DEFAULT_OUT.name})")
    args = parser.parse_args(argv)
    path = build(args.out)
    print(f"wrote {path} ({path.stat().st_size:,} bytes)")
    return 0
