"""Who an enrolment adds: a person (id, name, role) per name, or every reason it cannot be done.

All or nothing: a list with one bad or duplicate name enrols nobody, so the teacher fixes the list and
runs the same command again. Ids come from names (``names.user_id_for``); two names making the same
id, or an id already in the class list (even a revoked one: its runs keep their owner), are refused.
"""

from __future__ import annotations

from excel_addin.server.auth import names
from excel_addin.server.auth.namelist import Entry
from excel_addin.server.auth.roster import COMMAND, Person, Roster, RosterError


def _taken(person: Person) -> str:
    state = "" if person.active else ", revoked"
    return (
        f"the id {person.id!r} is already enrolled ({person.name}, {person.role}{state}): "
        f"'{COMMAND} reissue {person.id}' gives them a new code; for someone else, add a letter to the name"
    )


def plan(roster: Roster, entries: list[Entry], role: str) -> list[Person]:
    """The people these entries enrol; RosterError listing every problem (one per line)."""
    if not entries:
        raise RosterError("no names given: name people (class add Alice Bob) or a file (--csv students.csv)")
    problems, people, first_of = [], [], {}
    for entry in entries:
        try:
            name = names.display_name(entry.name)
            user_id = names.user_id_for(name)
        except ValueError as error:
            problems.append(f"{entry.where}: {error}")
            continue
        if user_id in roster.people:
            problems.append(f"{entry.where}: {name!r}: {_taken(roster.people[user_id])}")
        elif user_id in first_of:
            earlier = first_of[user_id]
            problems.append(
                f"{entry.where}: {name!r} and {earlier.name!r} ({earlier.where}) both make the id "
                f"{user_id!r}: tell them apart, e.g. '{name} 2'"
            )
        else:
            first_of[user_id] = Entry(name, entry.where)
            people.append(Person(id=user_id, name=name, role=role))
    if problems:
        listed = "\n  ".join(problems)
        raise RosterError(f"nobody was enrolled; fix these and run the command again:\n  {listed}")
    return people
