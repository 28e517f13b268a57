"""The parser every gradsheet command line uses: a short error with a "did you mean" instead of argparse's
usage dump, and no abbreviated flags.

``python -m ml.train --presets fast`` answers in two lines, before torch is imported::

    python -m ml.train: error: unrecognized arguments: --presets fast; did you mean --preset?
    (python -m ml.train --help lists every option)

A flag that was renamed names its new spelling (``renamed``: old flag -> what to say). Abbreviations are
refused (``allow_abbrev=False``): ``--out`` must never quietly mean ``--out-dir``, so that one flag name
has one meaning across the commands (``--out`` is always a file; a folder is ``--run-dir`` or
``--out-dir``). Nothing here imports torch.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Mapping, Sequence
from typing import NoReturn


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line plus a pointer to ``--help``; ``renamed`` maps flags
    that no longer exist to a hint (e.g. ``{"--out": "--run-dir (the run's folder)"}``)."""

    def __init__(self, *args, renamed: Mapping[str, str] | None = None, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self.renamed = dict(renamed or {})

    def parse_args(self, args: Sequence[str] | None = None, namespace=None) -> argparse.Namespace:
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            self.error(f"unrecognized arguments: {' '.join(extras)}{self.suggestion(extras)}")
        return parsed

    def suggestion(self, words: Sequence[str]) -> str:
        """ "; did you mean --x?" for the first unknown flag among ``words`` that resembles a known one
        (or was renamed); "" when none does."""
        known = {flag[2:]: flag for flag in self._option_string_actions if flag.startswith("--")}
        for word in words:
            flag = word.split("=", 1)[0]
            if not flag.startswith("-"):
                continue
            if flag in self.renamed:
                return f"; {flag} is now {self.renamed[flag]}"
            close = difflib.get_close_matches(flag.lstrip("-"), known, n=1, cutoff=0.7)  # names, not dashes
            if close:
                return f"; did you mean {known[close[0]]}?"
        return ""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n({self.prog} --help lists every option)\n")


def whole(minimum: int):
    """An argparse type: a whole number of at least ``minimum`` (a port, a count of processes or threads)."""

    def parse(text: str) -> int:
        if not text.strip().isdigit() or int(text) < minimum:
            raise argparse.ArgumentTypeError(f"must be a whole number of at least {minimum}, got {text!r}")
        return int(text)

    return parse


def fail(prog: str, message: str, code: int = 2) -> int:
    """Print a command's error as ``Parser`` does (for errors found after parsing); returns ``code``."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    return code
