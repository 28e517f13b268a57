"""Test-wide settings: headless plotting, the xlwings remote engine's licence, few CPU threads."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")
# xlwings' remote engine (xw.Book(json=...)) is PolyForm Noncommercial: fine for this educational project.
os.environ.setdefault("XLWINGS_LICENSE_KEY", "noncommercial")
