"""Names and the ids made from them: a user id is a folder name (``[a-z0-9_-]{1,64}``), since a user's
runs live in ``<runs>/<user id>/``; a display name is what the pane and the teacher see."""

from __future__ import annotations

import re
import unicodedata

USER_ID = re.compile(r"[a-z0-9_-]{1,64}")
MAX_NAME_LENGTH = 100
LOCAL_ID = "local"  # the one user of a server without sign-in: no enrolled person may take it
RESERVED_IDS = frozenset({LOCAL_ID})


def is_user_id(text: object) -> bool:
    """Whether ``text`` is a folder-safe user id."""
    return isinstance(text, str) and USER_ID.fullmatch(text) is not None


def display_name(text: str) -> str:
    """``text`` with its spaces tidied (runs of white space become one space); ValueError for an empty,
    over-long or control-character name."""
    name = " ".join(text.split())
    if not name:
        raise ValueError("an empty name")
    if len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"{name[:20]!r}...: a name of at most {MAX_NAME_LENGTH} characters, please")
    if any(unicodedata.category(ch).startswith("C") for ch in name):
        raise ValueError(f"{name!r} holds a control character")
    return name


def slug(text: str) -> str:
    """``text`` as a folder-safe id, or "" when nothing of it is left: accents dropped ("Zoë" -> "zoe"),
    lower case, every run of other characters one "-" ("Alice Smith" -> "alice-smith"), at most 64."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    made = re.sub(r"[^a-z0-9_]+", "-", ascii_text.lower()).strip("-_")
    return made[:64].rstrip("-_")


def user_id_for(name: str) -> str:
    """The user id of an enrolled person's display name; ValueError saying why there is none."""
    made = slug(name)
    if not made:
        raise ValueError(
            f"{name!r} has no Latin letter or digit to name a folder with: add its spelling in Latin "
            "letters after it, as in '李雷 (Li Lei)'"
        )
    if made in RESERVED_IDS:
        raise ValueError(f"{name!r} would get the id {made!r}, which the server keeps: add a letter")
    return made
