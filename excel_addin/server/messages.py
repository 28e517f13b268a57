"""Messages as a student may see them: no path of the server's machine, nobody else's folder.

Everything the server says to a user (status lines, cell messages, button refusals) passes ``for_user``:
a path inside the user's run folder becomes relative to it (what they typed in the Train sheet), a path
in their own folder relative to that, and every other absolute path is replaced by ``<server path>``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

HIDDEN = "<server path>"
# an absolute POSIX path (not the second slash of a URL, nor a fraction such as 40/117) or a Windows one
_ABSOLUTE = re.compile(r"(?<![\w:/.~])/(?:[^\s'\"`,;()<>]+)|\b[A-Za-z]:\\[^\s'\"`,;()<>]*")


def for_user(text: Any, *folders: Path) -> Any:
    """``text`` with each of ``folders`` (most specific first) shown relative, other paths hidden; a
    non-text value as it is."""
    if not isinstance(text, str):
        return text
    for folder in folders:
        for spelling in {str(folder), os.path.realpath(folder)}:
            text = text.replace(spelling.rstrip(os.sep) + os.sep, "").replace(spelling, ".")
    return _ABSOLUTE.sub(HIDDEN, text)


def table_for_user(table: list[list[Any]], *folders: Path) -> list[list[Any]]:
    """A cell function's result (a table of values) with every text passed through ``for_user``."""
    return [[for_user(value, *folders) for value in row] for row in table]
