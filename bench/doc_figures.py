"""The figures of README.md and docs/*.md, generated from the committed bench records:
``python bench/doc_figures.py``.

Every table of measured figures in the README and the docs sits between two markers,

    <!-- figures: NAME RECORD -->
    ... (generated: do not edit by hand)
    <!-- /figures -->

where NAME is one of the tables of ``doc_tables.TABLES`` and RECORD a file of bench/results/ (the
``summary``, ``install`` and ``quickstart`` tables read several and take none; ``classroom`` needs one, e.g.
``<!-- figures: classroom classroom_redis.json -->``). Each table ends with a line that names the machine
and the record it comes from. Run without options, the command checks every block of README.md and
docs/*.md against the records and lists the stale ones, and those whose record is not in bench/results/
(exit code 1 if any): it writes nothing. ``--update FILE ...`` rewrites the blocks of the files named, and
nothing else; a block whose record is absent is left as it is and named (exit code 1). ``--show NAME
[RECORD]`` prints one table. The check also holds every figure of the prose (outside the tables) to
``doc_prose.PROSE``, which says what backs it. tests/test_docs_figures.py runs the check, so a table cannot
drift from its record.
"""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path

from doc_prose import unbacked
from doc_records import MissingRecordError
from doc_tables import TABLES

from ml.cli import Parser

ROOT = Path(__file__).resolve().parents[1]
PROG = "python bench/doc_figures.py"
BLOCK = re.compile(r"<!-- figures: ([\w-]+)(?: ([\w.-]+))? -->\n(.*?)<!-- /figures -->\n", re.DOTALL)


def render(name: str, argument: str | None) -> str:
    """The text of one generated block (without its markers); MissingRecordError when its record is absent."""
    if name not in TABLES:
        raise SystemExit(f"{PROG}: error: no table named {name!r}; the tables: {', '.join(TABLES)}")
    table = TABLES[name]
    needs = [p for p in inspect.signature(table).parameters.values() if p.default is p.empty]
    if needs and not argument:
        raise SystemExit(f"{PROG}: error: the table {name!r} needs its record: <!-- figures: {name} FILE -->")
    return (table(argument) if argument else table()).rstrip("\n") + "\n"


def label(match: re.Match) -> str:
    """A block as "NAME RECORD" (or "NAME")."""
    return f"{match[1]} {match[2] or ''}".strip()


def regenerate(text: str, missing: list[str] | None = None) -> str:
    """``text`` with every generated block rendered afresh from the records. A block whose record is not in
    bench/results/ is left as it is, and said in ``missing`` ("NAME RECORD: why")."""

    def fresh(match: re.Match) -> str:
        name, argument = match[1], match[2]
        try:
            body = render(name, argument)
        except MissingRecordError as absent:
            if missing is not None:
                missing.append(f"{label(match)}: {absent}")
            return match[0]
        head = f"<!-- figures: {name}{' ' + argument if argument else ''} -->\n"
        return f"{head}{body}<!-- /figures -->\n"

    return BLOCK.sub(fresh, text)


def documents() -> list[Path]:
    """The files whose figures are generated: README.md and every page of docs/."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def shown(path: Path) -> str:
    return str(path.resolve().relative_to(ROOT)) if path.resolve().is_relative_to(ROOT) else str(path)


def stale(paths: list[Path], missing: list[str] | None = None) -> list[str]:
    """The blocks that differ from their records, as "FILE: NAME RECORD"; the blocks whose record is absent
    go to ``missing`` as "FILE: NAME RECORD: why"."""
    found = []
    for path in paths:
        text, absent = path.read_text(), []
        fresh = regenerate(text, absent)
        if missing is not None:
            missing += [f"{shown(path)}: {line}" for line in absent]
        if fresh != text:
            old = {m[0] for m in BLOCK.finditer(text)}
            names = [label(m) for m in BLOCK.finditer(fresh) if m[0] not in old]
            found.append(f"{shown(path)}: {', '.join(names)}")
    return found


def update(paths: list[Path]) -> int:
    """Rewrites the stale blocks of ``paths``; says which blocks it skipped (their record absent)."""
    skipped: list[str] = []
    for path in paths:
        text, absent = path.read_text(), []
        fresh = regenerate(text, absent)
        skipped += [f"{path}: {line}" for line in absent]
        if fresh != text:
            path.write_text(fresh)
            print(f"updated {path}")
    for line in skipped:
        print(f"skipped {line}", file=sys.stderr)
    return 1 if skipped else 0


def build_parser() -> Parser:
    parser = Parser(prog=PROG, description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--update", metavar="FILE", nargs="+", help="rewrite the generated blocks of these files"
    )
    group.add_argument("--show", metavar="NAME", nargs="+", help="print one table: NAME [RECORD]")
    return parser


def check() -> int:
    """Every block of README.md and docs/ against its record, and the prose's figures: lists what is off."""
    missing: list[str] = []
    found = stale(documents(), missing)
    loose = unbacked(ROOT)
    for line in found:
        print(f"stale: {line}")
    for line in missing:
        print(f"no record: {line}")
    for line in loose:
        print(f"not backed: {line}")
    if found:
        print(f"{PROG} --update FILE ... redraws the stale tables")
    if loose:
        print("bench/doc_prose.py lists each figure of the prose with what backs it")
    if not found and not missing and not loose:
        print("every generated table matches its record, and every figure of the prose is backed")
    return 1 if found or missing or loose else 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.show:
        try:
            print(render(args.show[0], args.show[1] if len(args.show) > 1 else None), end="")
        except MissingRecordError as absent:
            raise SystemExit(f"{PROG}: error: {absent}") from None
        return 0
    if args.update:
        return update(list(map(Path, args.update)))
    return check()


if __name__ == "__main__":
    sys.exit(main())
