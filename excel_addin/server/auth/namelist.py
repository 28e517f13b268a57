"""The names a teacher enrols: from the command line or from a CSV file, each with where it came from
(so a message can point at the line to fix).

A CSV file (UTF-8, a spreadsheet's BOM welcome; separated by commas, semicolons or tabs) gives its names
in the column headed by one of NAME_HEADERS (any case); a file of one column may leave the header out.
Empty lines and rows with an empty name are skipped and reported.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

NAME_HEADERS = ("name", "student", "full name", "display name")
_SEPARATORS = ",;\t"


@dataclass(frozen=True)
class Entry:
    """A name to enrol and where it came from (``argument 2``, ``students.csv line 5``)."""

    name: str
    where: str


def from_arguments(texts: list[str]) -> list[Entry]:
    return [Entry(text, f"argument {number}") for number, text in enumerate(texts, start=1)]


def _rows(path: Path) -> list[tuple[int, list[str]]]:
    """The file's rows with their line numbers; ValueError naming the file if it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8 text: save it as 'CSV UTF-8' and try again") from None
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror or error}") from None
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=_SEPARATORS)
    except csv.Error:
        dialect = csv.excel  # one column: nothing to tell the separator by
    reader = csv.reader(text.splitlines(), dialect)
    return [(reader.line_num, [cell.strip() for cell in row]) for row in reader]


def _name_column(path: Path, first: list[str]) -> int | None:
    """The index of the names column if ``first`` is a header row; None for a headerless single column."""
    headers = [cell.lower() for cell in first]
    for header in NAME_HEADERS:
        if header in headers:
            return headers.index(header)
    if len([cell for cell in first if cell]) > 1:
        raise ValueError(
            f"{path}: which column holds the names? Head it with one of {', '.join(NAME_HEADERS)} "
            f"(the first row is {', '.join(first)})"
        )
    return None


def from_csv(path: Path) -> tuple[list[Entry], list[str]]:
    """The names in a CSV file, and notes on the lines skipped."""
    rows = _rows(path)
    empty = [line for line, row in rows if not any(row)]
    rows = [(line, row) for line, row in rows if any(row)]
    if not rows:
        raise ValueError(f"{path} holds no names")
    column = _name_column(path, rows[0][1])
    if column is None:
        column = next(i for i, cell in enumerate(rows[0][1]) if cell)
    else:
        rows = rows[1:]
    entries, nameless = [], []
    for line, row in rows:
        name = row[column] if column < len(row) else ""
        if name:
            entries.append(Entry(name, f"{path.name} line {line}"))
        else:
            nameless.append(line)
    notes = []
    if empty:
        notes.append(f"skipped empty lines of {path.name}: {', '.join(map(str, empty))}")
    if nameless:
        notes.append(f"skipped lines of {path.name} with no name: {', '.join(map(str, nameless))}")
    return entries, notes
