"""A command whose optional extra is not installed says which extra and how to install it, in one line,
instead of a ModuleNotFoundError traceback (a plain ``pip install -e .`` has no ``server`` extra). The
missing package is simulated in a real ``python -m`` process: its installed metadata is hidden."""

from __future__ import annotations

import subprocess
import sys

import pytest

from excel_addin import extras

# The command runs with one distribution's metadata hidden, as if pip had never installed it.
HIDING = """
import importlib.metadata as m, runpy, sys
real = m.version
def version(name):
    if name.lower() == {hidden!r}:
        raise m.PackageNotFoundError(name)
    return real(name)
m.version = version
sys.argv = [{module!r}, *{args!r}]
runpy.run_module({module!r}, run_name="__main__", alter_sys=True)
"""


def run_without(hidden: str, module: str, *args: str) -> subprocess.CompletedProcess:
    code = HIDING.format(hidden=hidden, module=module, args=list(args))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    "module, args, command",
    [
        ("excel_addin.server", ["--help"], "python -m excel_addin.server"),
        ("excel_addin.server", ["class", "add", "--help"], "python -m excel_addin.server"),
        ("excel_addin.worker", ["--redis", "redis://127.0.0.1:1"], "python -m excel_addin.worker --redis"),
    ],
)
def test_a_missing_server_extra_is_named_with_its_install_command(module, args, command):
    done = run_without("limits", module, *args)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.strip() == (
        f"error: {command} needs gradsheet's 'server' extra, which is not installed (missing: limits): "
        "pip install -e '.[server]' in the repository's folder"
    )


def test_with_the_extra_installed_the_command_runs():
    done = run_without("nothing-hidden", "excel_addin.server", "--help")
    assert done.returncode == 0 and "usage: python -m excel_addin.server" in done.stdout


def test_the_extras_packages_come_from_the_projects_metadata():
    assert extras.missing("server") == [] and extras.missing("dev") == []  # this environment has both
    assert extras.missing("no-such-extra") == []
