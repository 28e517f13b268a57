"""Class codes for tests and pictures: people enrolled with the real command line
(``python -m excel_addin.server class ...``), their codes read from what it prints, and the headers
that sign a request in with one."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from excel_addin.server.options import CLASS_TOKEN

ROOT = Path(__file__).resolve().parents[2]
CODE = re.compile(r"[0-9A-Z]{4}(?:-[0-9A-Z]{4}){3}")


def class_command(runs: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """``python -m excel_addin.server class ARGS --runs RUNS`` (the class list beside ``runs``)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "excel_addin.server", "class", *args, "--runs", str(runs)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")
    return done


def codes_in(output: str) -> dict[str, str]:
    """``{user id: class code}`` from the table that ``class add``/``class reissue`` print."""
    codes = {}
    for line in output.splitlines():
        found = CODE.search(line)
        if found:
            cells = re.split(r"\s{2,}", line.strip())
            codes[cells[1]] = found.group()
    return codes


def enrol(runs: Path, *names: str, teacher: bool = False) -> dict[str, str]:
    """Enrol ``names`` in the class list beside ``runs``: ``{user id: class code}``."""
    return codes_in(class_command(runs, "add", *names, *(["--teacher"] if teacher else [])).stdout)


def signed_in(code: str) -> dict[str, str]:
    """The headers the task pane's getAuth gives a request once signed in with ``code``."""
    return {"Authorization": code, "Auth-Provider": CLASS_TOKEN}
