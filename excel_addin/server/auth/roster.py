"""The class list: who may sign in with a class code, with which role, and the hash of each one's code.

One JSON file (``options.CLASS_FILE_NAME`` beside the runs folder unless set), written whole to a
temporary file that only its owner may read (0600) and then renamed over the old one, so a reader sees
the old list or the new one, never half of one. It holds no code, only each code's SHA-256 (see
``tokens``). ``RosterFile`` re-reads it when it changes, so a code revoked from the command line stops
working on a running server at its next request.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from excel_addin.server.auth import names, tokens
from excel_addin.server.auth.identities import ROLES, STUDENT

FORMAT = "gradsheet class list"
VERSION = 1
COMMAND = "python -m excel_addin.server class"  # the teacher's command that edits it (auth.cli)


class RosterError(ValueError):
    """The class list cannot be read or changed as asked (the message says why and what to do)."""


@dataclass(frozen=True)
class Person:
    """An enrolled person. ``code_sha256`` is None once the code is revoked."""

    id: str
    name: str
    role: str = STUDENT
    code_sha256: str | None = None
    enrolled: str = ""
    revoked: str | None = None

    @property
    def active(self) -> bool:
        return self.code_sha256 is not None


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Roster:
    """The class list as read from its file: ``people`` by id, in the order they were enrolled."""

    people: dict[str, Person]

    def find(self, id_or_name: str) -> Person | None:
        """The person with this id, or whose name makes this id ("Alice Smith" finds alice-smith)."""
        return self.people.get(id_or_name) or self.people.get(names.slug(id_or_name))

    def person_with_code(self, typed: str) -> Person | None:
        """The active person whose code this is; None for anything else. Every entry is compared (no
        early exit), each with hmac.compare_digest."""
        if tokens.canonical(typed) is None:
            return None
        typed_digest = tokens.digest(typed)
        found = None
        for person in self.people.values():
            if tokens.matches(typed_digest, person.code_sha256):
                found = person
        return found

    def enrolled(self, people: Iterable[tuple[Person, str]]) -> Roster:
        """A roster with these (person, code) added; the codes become hashes."""
        added = {p.id: replace(p, code_sha256=tokens.digest(code), enrolled=_now()) for p, code in people}
        return Roster({**self.people, **added})

    def revoked(self, person_id: str) -> Roster:
        """This roster with the person's code revoked (their id stays taken: their runs keep their owner)."""
        person = self.people[person_id]
        return Roster({**self.people, person_id: replace(person, code_sha256=None, revoked=_now())})

    def reissued(self, person_id: str, code: str) -> Roster:
        """This roster with the person's code replaced by ``code`` (active again if it was revoked)."""
        person = self.people[person_id]
        fresh = replace(person, code_sha256=tokens.digest(code), revoked=None)
        return Roster({**self.people, person_id: fresh})


def load(path: Path) -> Roster:
    """The class list in ``path`` (no file: nobody enrolled); RosterError naming the file if unreadable."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Roster({})
    except OSError as error:
        raise RosterError(f"cannot read the class list {path}: {error.strerror or error}") from None
    try:
        data = json.loads(text)
        if data.get("format") != FORMAT or data.get("version") != VERSION:
            raise ValueError(f"not a {FORMAT} of version {VERSION}")
        people = [Person(**entry) for entry in data["people"]]
        for person in people:
            _check(person)
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise RosterError(
            f"{path} is not a class list gradsheet can read ({error}): restore it from a backup, or move it "
            "away and enrol the class again"
        ) from None
    return Roster({person.id: person for person in people})


def _check(person: Person) -> None:
    if not names.is_user_id(person.id) or person.id in names.RESERVED_IDS:
        raise ValueError(f"the id {person.id!r} is not a folder-safe user id")
    if person.role not in ROLES:
        raise ValueError(f"{person.id}: unknown role {person.role!r}")


def save(roster: Roster, path: Path) -> None:
    """Write the class list to ``path``: readable by its owner only, replacing the old file in one step."""
    data = {"format": FORMAT, "version": VERSION, "people": [asdict(p) for p in roster.people.values()]}
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # 0600
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


class RosterFile:
    """The class list of one file, re-read whenever the file changes (checked on every ``current()``:
    one ``stat``). A missing file is an empty list; an unreadable one raises RosterError each time."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._seen: tuple | None = None
        self._roster = Roster({})

    def current(self) -> Roster:
        try:
            stat = self.path.stat()
            seen = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            seen = None
        with self._lock:
            if seen != self._seen or seen is None:
                self._roster = load(self.path)
                self._seen = seen
            return self._roster
