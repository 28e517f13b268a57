"""``python -m docs.render_pictures`` writes only where it is told: ``--help`` prints the usage and does
nothing else, and without ``--out`` it refuses to run (the pictures themselves are looked at by people)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "docs.render_pictures", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def test_help_only_prints_the_usage(tmp_path):
    done = _run("--help", cwd=tmp_path)
    assert done.returncode == 0 and done.stdout.startswith("usage: python -m docs.render_pictures")
    assert "--out FOLDER" in done.stdout and not list(tmp_path.iterdir())


def test_it_needs_an_output_folder(tmp_path):
    done = _run(cwd=tmp_path)
    assert done.returncode == 2 and "the following arguments are required: --out" in done.stderr
    assert not list(tmp_path.iterdir())
