"""A clean copy of the repository as a git repository of its own: the tracked files and those a commit would
add (untracked, not ignored), committed. A test runs commands in it as a user would in a fresh clone, then
asks git whether they wrote anything git would track (``changes``: ignored files, such as runs/, are fine).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GIT = ["git", "-c", "user.name=gradsheet tests", "-c", "user.email=tests@gradsheet.invalid"]


def make(dest: Path) -> Path:
    """The repository's files copied into ``dest`` (which must not exist) and committed there; a skip where
    the tests do not run in a git checkout (git says which files a clone would have)."""
    listing = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True
    )
    if listing.returncode != 0:
        pytest.skip(
            f"a fresh clone needs the tests to run in a git checkout: {listing.stderr.decode().strip()}"
        )
    listed = listing.stdout
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file():  # a file deleted in the working tree but still in the index is not copied
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "clean clone"]):
        subprocess.run([*GIT, *command], cwd=dest, check=True, capture_output=True)
    return dest


def tracked_times(clone: Path) -> dict[str, int]:
    """Each tracked file's modification time (ns): a rewrite with the same bytes (a reproducible build of
    a committed file) changes it, though git sees no change."""
    names = subprocess.run(["git", "ls-files", "-z"], cwd=clone, capture_output=True, check=True).stdout
    return {name: (clone / name).stat().st_mtime_ns for name in filter(None, names.decode().split("\0"))}


def changes(clone: Path) -> list[str]:
    """What git sees changed or added in the clone since it was made (``git status --porcelain``)."""
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"], cwd=clone, capture_output=True, text=True
    )
    return status.stdout.splitlines()


# what a user's shell passes on; not what tests set in this process (e.g. xlwings-server's
# XLWINGS_ON_SERVER, which takes xlwings' classic UDF decorators away, or gradsheet's state folder)
USER_ENVIRONMENT = ("PATH", "HOME", "USER", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")


def start(clone: Path, *command: str) -> subprocess.Popen:
    """``python COMMAND...`` started in the clone as from a user's shell, importing the clone's code (as an
    install from it would); its output is captured (``communicate``)."""
    env = {name: os.environ[name] for name in USER_ENVIRONMENT if name in os.environ}
    env |= {"PYTHONPATH": str(clone), "MPLBACKEND": "Agg"}
    return subprocess.Popen(
        [sys.executable, *command],
        cwd=clone,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run(clone: Path, *command: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """``python COMMAND...`` run in the clone to its end (see ``start``)."""
    process = start(clone, *command)
    out, err = process.communicate(timeout=timeout)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)
