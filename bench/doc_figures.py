"""The figures of README.md and docs/*.md, generated from the committed bench records:
``python bench/doc_figures.py``.

Every table of measured figures in the README and the docs sits between two markers,

    <!-- figures: NAME RECORD -->
    ... (generated: do not edit by hand)
    <!-- /figures -->

where NAME is one of the tables of ``doc_tables.TABLES`` and RECORD a file of bench/results/ (the
``summary`` and ``quickstart`` tables read several and take none). Each table ends with a line that names
the machine and the record it comes from. Run without options, the command checks every block of
README.md and docs/*.md against the records and lists the stale ones (exit code 1 if any): it writes
nothing. ``--update FILE ...`` rewrites the blocks of the files named, and nothing else;
``--show NAME [RECORD]`` prints one table. The check also holds every figure of the prose (outside the
tables) to ``doc_prose.PROSE``, which says what backs it. tests/test_docs_figures.py runs the check, so a
table cannot drift from its record.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from doc_prose import unbacked
from doc_tables import TABLES

from ml.cli import Parser

ROOT = Path(__file__).resolve().parents[1]
PROG = "python bench/doc_figures.py"
BLOCK = re.compile(r"<!-- figures: ([\w-]+)(?: ([\w.-]+))? -->\n(.*?)<!-- /figures -->\n", re.DOTALL)


def render(name: str, argument: str | None) -> str:
    """The text of one generated block (without its markers)."""
    if name not in TABLES:
        raise SystemExit(f"{PROG}: error: no table named {name!r}; the tables: {', '.join(TABLES)}")
    table = TABLES[name]
    return (table(argument) if argument else table()).rstrip("\n") + "\n"


def regenerate(text: str) -> str:
    """``text`` with every generated block rendered afresh from the records."""

    def fresh(match: re.Match) -> str:
        name, argument = match[1], match[2]
        head = f"<!-- figures: {name}{' ' + argument if argument else ''} -->\n"
        return f"{head}{render(name, argument)}<!-- /figures -->\n"

    return BLOCK.sub(fresh, text)


def documents() -> list[Path]:
    """The files whose figures are generated: README.md and every page of docs/."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def stale(paths: list[Path]) -> list[str]:
    """The blocks that differ from their records, as "FILE: NAME RECORD"."""
    found = []
    for path in paths:
        text = path.read_text()
        fresh = regenerate(text)
        if fresh != text:
            old = {m[0] for m in BLOCK.finditer(text)}
            names = [f"{m[1]} {m[2] or ''}".strip() for m in BLOCK.finditer(fresh) if m[0] not in old]
            found.append(f"{path.relative_to(ROOT)}: {', '.join(names)}")
    return found


def build_parser() -> Parser:
    parser = Parser(prog=PROG, description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--update", metavar="FILE", nargs="+", help="rewrite the generated blocks of these files"
    )
    group.add_argument("--show", metavar="NAME", nargs="+", help="print one table: NAME [RECORD]")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.show:
        print(render(args.show[0], args.show[1] if len(args.show) > 1 else None), end="")
        return 0
    if args.update:
        for path in map(Path, args.update):
            text = path.read_text()
            if regenerate(text) != text:
                path.write_text(regenerate(text))
                print(f"updated {path}")
        return 0
    found = stale(documents())
    for line in found:
        print(f"stale: {line}")
    loose = unbacked(ROOT)
    for line in loose:
        print(f"not backed: {line}")
    if found:
        print(f"{PROG} --update FILE ... redraws the stale tables")
    if loose:
        print("bench/doc_prose.py lists each figure of the prose with what backs it")
    if not found and not loose:
        print("every generated table matches its record, and every figure of the prose is backed")
    return 1 if found or loose else 0


if __name__ == "__main__":
    sys.exit(main())
