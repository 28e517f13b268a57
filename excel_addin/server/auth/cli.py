"""``python -m excel_addin.server class ...``: the teacher's commands for the class list.

``add`` enrols people (names, or ``--csv`` a file of them; ``--teacher`` for teachers) and prints each
one's class code: the only time a code is shown, since the file keeps its hash alone. ``list`` shows who
is enrolled, ``revoke`` ends a code (at once, also on a running server), ``reissue`` gives a new one.
"""

from __future__ import annotations

import argparse
import os
import sys
import unicodedata
from pathlib import Path

from excel_addin.server.auth import enrol, namelist, roster, tokens
from excel_addin.server.auth.identities import STUDENT, TEACHER
from excel_addin.server.auth.roster import COMMAND, Person, Roster, RosterError
from excel_addin.server.options import (
    CLASS_FILE_ENV,
    CLASS_FILE_NAME,
    DEFAULT_RUNS,
    RUNS_ENV,
    class_file_for,
    runs_folder,
)

PROG = COMMAND
ENROL = f"{PROG} add NAME ... (or --csv FILE)"
SHOWN_ONCE = (
    "Each class code is shown only now (the class list keeps only a hash of it): hand each person their\n"
    "own, e.g. print this and cut it into slips. They type it into the gradsheet pane once.\n"
    f"A lost code: {PROG} reissue ID"
)
CODE_COLUMNS = ("NAME", "ID", "ROLE", "CLASS CODE")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Manage the class list of a shared gradsheet server (--shared): who may sign in with a "
        "class code, as a student or a teacher.",
        epilog=f"The class list is {CLASS_FILE_NAME} beside the runs folder unless --class-file or "
        f"{CLASS_FILE_ENV} says otherwise; use the same --runs/--class-file as the server.",
    )
    where = argparse.ArgumentParser(add_help=False)
    where.add_argument(
        "--class-file",
        type=Path,
        help=f"the class list (default: ${CLASS_FILE_ENV}, else {CLASS_FILE_NAME} beside the runs folder)",
    )
    where.add_argument(
        "--runs", type=Path, help=f"the server's runs folder (default: ${RUNS_ENV}, else {DEFAULT_RUNS})"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add = commands.add_parser("add", parents=[where], help="enrol people and print their class codes")
    add.add_argument("names", nargs="*", metavar="NAME", help='a name, e.g. Alice or "Alice Smith"')
    add.add_argument("--csv", type=Path, action="append", default=[], metavar="FILE",
                     help=f"a CSV file of names: the column headed {' or '.join(namelist.NAME_HEADERS)}, "
                     "or a single column without a header")  # fmt: skip
    add.add_argument(
        "--teacher", action="store_true", help="enrol them as teachers (they see the whole class)"
    )
    commands.add_parser("list", parents=[where], help="who is enrolled (codes are not kept, so not shown)")
    for name, what in (("revoke", "end their class codes (at once, also on a running server)"),
                       ("reissue", "give them new class codes (the old ones stop working)")):  # fmt: skip
        command = commands.add_parser(name, parents=[where], help=what)
        command.add_argument("people", nargs="+", metavar="ID", help="an id from 'class list' (or the name)")
    return parser


def _width(text: str) -> int:
    """Columns ``text`` takes in a terminal (wide East Asian characters take two)."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(_width(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = (
        "  ".join(cell + " " * (w - _width(cell)) for cell, w in zip(row, widths, strict=True))
        for row in rows
    )
    return "\n".join("  " + line.rstrip() for line in lines)


def add(path: Path, current: Roster, args: argparse.Namespace) -> Roster:
    entries = namelist.from_arguments(args.names)
    for csv_file in args.csv:
        try:
            found, notes = namelist.from_csv(csv_file)
        except ValueError as error:
            raise RosterError(str(error)) from None
        entries += found
        for note in notes:
            print(f"Note: {note}.")
    people = enrol.plan(current, entries, TEACHER if args.teacher else STUDENT)
    codes = [tokens.new_code() for _ in people]
    updated = current.enrolled(zip(people, codes, strict=True))
    roster.save(updated, path)
    print(f"Enrolled {len(people)} in {path}.\n{SHOWN_ONCE}\n")
    print(_table([CODE_COLUMNS, *((p.name, p.id, p.role, c) for p, c in zip(people, codes, strict=True))]))
    return updated


def show(path: Path, current: Roster) -> None:
    people = list(current.people.values())
    if not people:
        print(f"{path}: nobody enrolled yet. Enrol with: {ENROL}")
        return
    revoked = sum(not p.active for p in people)
    print(f"{path}: {len(people)} enrolled" + (f", {revoked} revoked" if revoked else "") + "\n")
    rows = [("ID", "NAME", "ROLE", "ENROLLED", "CODE")]
    rows += [(p.id, p.name, p.role, p.enrolled[:10], "active" if p.active else "revoked") for p in people]
    print(_table(rows))


def _people(current: Roster, wanted: list[str], path: Path) -> list[Person]:
    found = [(text, current.find(text)) for text in wanted]
    missing = [text for text, person in found if person is None]
    if missing:
        raise RosterError(
            f"not in {path}: {', '.join(missing)} ('{PROG} list' shows who is enrolled); nothing was changed"
        )
    return list(dict.fromkeys(person for _, person in found))


def revoke(path: Path, current: Roster, wanted: list[str]) -> Roster:
    people = _people(current, wanted, path)
    for person in people:
        current = current.revoked(person.id) if person.active else current
    roster.save(current, path)
    for person in people:
        done = "Revoked" if person.active else "Already revoked:"
        print(f"{done} {person.id} ({person.name}): their class code no longer signs in. A new one: "
              f"{PROG} reissue {person.id}")  # fmt: skip
    return current


def reissue(path: Path, current: Roster, wanted: list[str]) -> Roster:
    people = _people(current, wanted, path)
    codes = [tokens.new_code() for _ in people]
    for person, code in zip(people, codes, strict=True):
        current = current.reissued(person.id, code)
    roster.save(current, path)
    print(f"New class codes in {path}; the old ones no longer sign in.\n{SHOWN_ONCE}\n")
    print(_table([CODE_COLUMNS, *((p.name, p.id, p.role, c) for p, c in zip(people, codes, strict=True))]))
    return current


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    path = class_file_for(runs_folder(args.runs, os.environ), args.class_file, os.environ)
    try:
        current = roster.load(path)
        if args.command == "add":
            add(path, current, args)
        elif args.command == "list":
            show(path, current)
        elif args.command == "revoke":
            revoke(path, current, args.people)
        else:
            reissue(path, current, args.people)
    except RosterError as error:
        sys.exit(f"gradsheet class: {error}")
    except OSError as error:
        sys.exit(f"gradsheet class: cannot write {path}: {error.strerror or error}")
    return 0
