"""Build ``workbook_template.xlsm`` from source: ``python -m excel_addin.xlsm [--out FILE.xlsm]``.

Renders gradsheet's workbook description (``workbook.gradsheet_workbook``) with XlsxWriter, with cached
values computed by ``ml.backprop`` and the shipped model, and embeds the VBA project (``vba``). The build
is reproducible: the same sources give the same bytes (fixed creation date, deterministic VBA and zip),
and a test checks the committed workbook against a fresh build. By default it writes
runs/workbook_template.xlsm (git ignores runs/); the committed one is rebuilt by naming it:
``python -m excel_addin.xlsm --out workbook_template.xlsm``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from excel_addin.sheets.workbook import gradsheet_workbook
from excel_addin.sheets.xlsx_render import write_workbook
from excel_addin.xlsm.vba import vba_project_bytes
from ml.cli import Parser

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "workbook_template.xlsm"  # the template in the repository, written only when named
DEFAULT_OUT = ROOT / "runs" / COMMITTED.name  # where a build goes unless told
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


def build_parser() -> Parser:
    parser = Parser(
        prog=BUILD_COMMAND,
        description="Build workbook_template.xlsm, the macro-enabled workbook, from source.",
    )
    name = COMMITTED.name
    parser.add_argument(
        "--out", metavar="FILE", default=str(DEFAULT_OUT),
        help=f"the workbook to write (default: runs/{name}; the committed one: --out {name})",
    )  # fmt: skip
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    path = build(args.out)
    print(f"wrote {path} ({path.stat().st_size:,} bytes)")
    return 0
