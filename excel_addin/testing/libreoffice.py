"""LibreOffice headless as an independent spreadsheet engine for tests and pictures.

Each call runs ``soffice --headless --convert-to`` with a fresh user profile, so runs never share state
or lock each other out. ``recalc=True`` sets that profile to recalculate every formula when a file is
loaded (Calc's OOXMLRecalcMode/ODFRecalcMode = 0, "always"); ``recalc=False`` keeps the cached values
the file carries, which is what a viewer shows before anything runs. (Calc recalculates array formulas on
load whatever that setting says, so with ``recalc=False`` an .xlsx/.xlsm is converted from a copy whose
array formulas are dropped and their cached values kept.)

Public API:
    available() -> bool
    convert(path, fmt, out_dir, recalc=True) -> Path           # "xlsx", "pdf", "csv", ...
    recalculated_values(path) -> {sheet: 2D list}               # every sheet's values after recalculation
    sheet_values(path, recalc) -> {sheet: 2D list}              # recalculated, or the file's cached values
    render_png(path, out_dir, recalc=False, dpi=60) -> [Path]   # one PNG per printed page
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import zipfile
from pathlib import Path

import openpyxl

TIMEOUT_S = 240

_PROFILE_XCU = """<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry" xmlns:xs="http://www.w3.org/2001/XMLSchema"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<item oor:path="/org.openoffice.Office.Calc/Formula/Load"><prop oor:name="OOXMLRecalcMode" oor:op="fuse">
<value>{mode}</value></prop></item>
<item oor:path="/org.openoffice.Office.Calc/Formula/Load"><prop oor:name="ODFRecalcMode" oor:op="fuse">
<value>{mode}</value></prop></item>
<item oor:path="/org.openoffice.Office.Common/Misc"><prop oor:name="FirstRun" oor:op="fuse">
<value>false</value></prop></item>
</oor:items>
"""


def soffice() -> str | None:
    """The soffice executable, or None when LibreOffice is not installed."""
    return shutil.which("soffice") or shutil.which("libreoffice")


def available() -> bool:
    return soffice() is not None


def _make_profile(root: Path, recalc: bool) -> Path:
    user = root / "user"
    user.mkdir(parents=True)
    # 0 = always recalculate on load, 1 = never (keep the cached values)
    (user / "registrymodifications.xcu").write_text(_PROFILE_XCU.format(mode=0 if recalc else 1))
    return root


_ARRAY_FORMULA = re.compile(rb'<f t="array"[^>]*?(?:/>|>.*?</f>)', re.S)


def cached_arrays_copy(path: Path, folder: Path) -> Path:
    """A copy of an .xlsx/.xlsm in ``folder`` (same name) whose array formulas are dropped, their cached
    values kept as plain values: how Calc shows the values the file carries for them."""
    copy = folder / path.name
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(copy, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename.startswith("xl/worksheets/") and item.filename.endswith(".xml"):
                data = _ARRAY_FORMULA.sub(b"", data)
            target.writestr(item, data)
    return copy


def convert(path: str | Path, fmt: str, out_dir: str | Path, recalc: bool = True) -> Path:
    """Convert ``path`` with LibreOffice to ``fmt`` (an extension, optionally with a filter, e.g.
    ``"csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,false,false,false,-1"``) into
    ``out_dir``; returns the output file. Raises RuntimeError with LibreOffice's output on failure."""
    exe = soffice()
    if exe is None:
        raise RuntimeError("LibreOffice (soffice) is not installed")
    path = Path(path).resolve()
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="lo-profile-") as tmp:
        profile = _make_profile(Path(tmp), recalc)
        source = path
        if not recalc and path.suffix.lower() in (".xlsx", ".xlsm"):
            source = cached_arrays_copy(path, Path(tmp))
        cmd = [
            exe,
            f"-env:UserInstallation={profile.as_uri()}",
            "--headless",
            "--norestore",
            "--nolockcheck",
            "--convert-to",
            fmt,
            "--outdir",
            str(out_dir),
            str(source),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S)
    ext = fmt.split(":")[0]
    produced = sorted(out_dir.glob(f"{path.stem}*.{ext}"))
    if proc.returncode != 0 or not produced:
        raise RuntimeError(
            f"soffice --convert-to {fmt} failed for {path.name} (exit {proc.returncode}):\n"
            f"{proc.stdout}\n{proc.stderr}"
        )
    return out_dir / f"{path.stem}.{ext}" if (out_dir / f"{path.stem}.{ext}").exists() else produced[0]


def recalculated_values(path: str | Path) -> dict[str, list[list]]:
    """Every sheet's cell values (rows of a rectangle from A1; empty cells are None) after LibreOffice
    loaded ``path``, recalculated all formulas, and saved the results as xlsx."""
    return sheet_values(path, recalc=True)


def sheet_values(path: str | Path, recalc: bool) -> dict[str, list[list]]:
    """Every sheet's cell values as LibreOffice sees them, recalculated or as cached in the file."""
    with tempfile.TemporaryDirectory(prefix="lo-values-") as tmp:
        src = Path(tmp) / ("input" + Path(path).suffix)
        shutil.copyfile(path, src)
        out = convert(src, "xlsx", Path(tmp) / "out", recalc=recalc)
        book = openpyxl.load_workbook(out, data_only=True, read_only=True)
        try:
            return {ws.title: [list(row) for row in ws.iter_rows(values_only=True)] for ws in book.worksheets}
        finally:
            book.close()


def render_png(path: str | Path, out_dir: str | Path, recalc: bool = False, dpi: int = 60) -> list[Path]:
    """Print ``path`` to PDF with LibreOffice and rasterise each page to PNG (poppler's pdftoppm);
    returns the PNGs in page order (``<stem>-<page>.png``)."""
    exe = shutil.which("pdftoppm")
    if exe is None:
        raise RuntimeError("pdftoppm (poppler-utils) is not installed")
    out_dir = Path(out_dir)
    pdf = convert(path, "pdf", out_dir, recalc=recalc)
    prefix = out_dir / Path(path).stem
    proc = subprocess.run(
        [exe, "-png", "-r", str(dpi), str(pdf), str(prefix)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"pdftoppm failed: {proc.stderr}")
    return sorted(out_dir.glob(f"{prefix.name}-*.png"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
