"""What the workbook's buttons run: VBA ``RunPython "import excel_addin.classic.macros as m; m.train()"``.

Each entry point takes the workbook that called it (``xw.Book.caller()``) and hands it to the shared
button of the same name (``excel_addin.buttons``), which returns at once and says what went wrong in the
sheet, never in VBA's error box. The VBA module ``gradsheet`` is generated from here (``bas_source``):
one Sub per entry of ``layout.MACROS`` (the Sub names the sheets' buttons call), commented with the entry
point's docstring, so the Sub names, the Python names and the comments cannot drift apart.
"""

from __future__ import annotations

import sys
from typing import Any

from excel_addin import buttons
from excel_addin.sheets import layout

VBA_MODULE = "gradsheet"


def caller() -> Any:
    """The workbook whose button ran this (xlwings passes it to the Python that RunPython starts)."""
    import xlwings as xw

    return xw.Book.caller()


def train() -> None:
    """Train the MNIST CNN with the settings on the Train sheet; progress and charts appear on that sheet."""
    buttons.train(caller())


def stop() -> None:
    """Ask a running training to stop after the current batch (the run's files stay complete)."""
    buttons.stop(caller())


def refresh_backprop() -> None:
    """Recompute the Backprop sheet's loss grid with the Python engine from the sheet's inputs."""
    buttons.refresh_backprop(caller())


def random_test_digit() -> None:
    """Write a random MNIST test digit into the Classify sheet's drawing grid (its number and label too)."""
    buttons.random_test_digit(caller())


def clear_grid() -> None:
    """Empty the drawing grid, to draw a digit of your own (1 = ink)."""
    buttons.clear_grid(caller())


def what_the_network_sees() -> None:
    """Draw what the network sees in the chosen image (a row number, or grid): filters, maps, evidence."""
    buttons.what_the_network_sees(caller())


# ---- the VBA module --------------------------------------------------------------------------------------

BAS_HEADER = """\
' gradsheet: the macros behind the workbook's buttons, generated from excel_addin/classic/macros.py (do
' not edit: rebuild the template). Each hands over to Python through xlwings' RunPython (module xlwings
' in this project), which works on Windows and macOS. Python finds the package because xlwings adds this
' workbook's folder to PYTHONPATH (or because gradsheet is pip-installed).
' ("Stop" itself is a VBA statement, hence the Sub StopTraining.)
Option Explicit
"""


def bas_source() -> str:
    """The VBA module ``gradsheet``: a Sub per ``layout.MACROS`` entry calling its entry point here."""
    module = sys.modules[__name__]
    subs = []
    for sub, function in layout.MACROS.items():
        doc = getattr(module, function).__doc__.strip()
        call = f'RunPython "import {__name__} as m; m.{function}()"'
        subs.append(f"' {doc}\nSub {sub}()\n    {call}\nEnd Sub\n")
    return f'Attribute VB_Name = "{VBA_MODULE}"\n{BAS_HEADER}\n' + "\n".join(subs)
