"""LibreOffice headless as an independent spreadsheet engine for tests and pictures.

Each call runs ``soffice --headless --convert-to`` with a fresh user profile, so runs never share state
or lock each other out. ``recalc=True`` sets that profile to recalculate every formula when a file is
loaded (Calc's OOXMLRecalcMode/ODFRecalcMode = 0, "always": what a student's first edit leads to, and
what Google Sheets and Excel do on open); ``recalc=False`` is Calc's default, "never": the file as opened,
its cached values shown (Calc still recalculates array formulas on load, whatever that setting says).

Public API:
    available() -> bool
    convert(path, fmt, out_dir, recalc=True) -> Path           # "xlsx", "pdf", "csv", ...
    shown(path, recalc) -> Shown                                # values and error cells of every sheet
    recalculated_values(path) -> {sheet: 2D list}               # every sheet's values after recalculation
    sheet_values(path, recalc) -> {sheet: 2D list}              # recalculated, or as opened
    error_cells(xlsx) -> {sheet: [A1, ...]}                     # the cells holding an error value
    render_png(path, out_dir, recalc=False, dpi=60) -> [Path]   # one PNG per printed page
    rasterize(pdf, out_dir, dpi=60) -> [Path]                   # one PNG per page of a PDF
    page_texts(pdf) -> [str]                                    # each printed page's text (pdftotext)
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import tempfile
import zipfile
from dataclasses import dataclass
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
            str(path),
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


@dataclass(frozen=True)
class Shown:
    """A workbook as LibreOffice shows it: every sheet's cell values (rows of a rectangle from A1; empty
    cells are None) and the addresses of the cells that hold an error value (#NAME?, #VALUE!, Err:508...)."""

    values: dict[str, list[list]]
    errors: dict[str, list[str]]

    def error_count(self) -> int:
        return sum(len(cells) for cells in self.errors.values())


def shown(path: str | Path, recalc: bool) -> Shown:
    """``path`` as LibreOffice shows it, recalculated or as opened: one conversion to xlsx, read back."""
    with tempfile.TemporaryDirectory(prefix="lo-values-") as tmp:
        src = Path(tmp) / ("input" + Path(path).suffix)
        shutil.copyfile(path, src)
        out = convert(src, "xlsx", Path(tmp) / "out", recalc=recalc)
        book = openpyxl.load_workbook(out, data_only=True, read_only=True)
        try:
            values = {
                ws.title: [list(row) for row in ws.iter_rows(values_only=True)] for ws in book.worksheets
            }
        finally:
            book.close()
        return Shown(values, error_cells(out))


def recalculated_values(path: str | Path) -> dict[str, list[list]]:
    """Every sheet's cell values after LibreOffice loaded ``path`` and recalculated all formulas."""
    return shown(path, recalc=True).values


def sheet_values(path: str | Path, recalc: bool) -> dict[str, list[list]]:
    """Every sheet's cell values as LibreOffice shows them, recalculated or as opened."""
    return shown(path, recalc).values


_SHEET = re.compile(r'<sheet [^>]*?name="([^"]*)"[^>]*?r:id="([^"]+)"')
_RELATION = re.compile(r'<Relationship [^>]*?Id="([^"]+)"[^>]*?Target="([^"]+)"')
_RELATION_REVERSED = re.compile(r'<Relationship [^>]*?Target="([^"]+)"[^>]*?Id="([^"]+)"')
_ERROR_CELL = re.compile(r'<c r="([A-Z]+[0-9]+)"[^>]*? t="e"')


def error_cells(xlsx: str | Path) -> dict[str, list[str]]:
    """Sheet name -> the addresses of its cells holding an error value (``t="e"`` in the file), for an
    .xlsx/.xlsm; read from the XML, so a text such as "#VALUE! reason" is not counted."""
    with zipfile.ZipFile(xlsx) as book:
        workbook = book.read("xl/workbook.xml").decode("utf-8")
        relations = book.read("xl/_rels/workbook.xml.rels").decode("utf-8")
        targets = dict(_RELATION.findall(relations))
        targets.update((rid, target) for target, rid in _RELATION_REVERSED.findall(relations))
        errors = {}
        for name, rid in _SHEET.findall(workbook):
            target = targets[rid].lstrip("/")
            part = target if target.startswith("xl/") else f"xl/{target}"
            errors[html.unescape(name)] = _ERROR_CELL.findall(book.read(part).decode("utf-8"))
    return errors


def render_png(path: str | Path, out_dir: str | Path, recalc: bool = False, dpi: int = 60) -> list[Path]:
    """Print ``path`` to PDF with LibreOffice and rasterise each page to PNG (poppler's pdftoppm);
    returns the PNGs in page order (``<stem>-<page>.png``)."""
    return rasterize(convert(path, "pdf", out_dir, recalc=recalc), out_dir, dpi)


def rasterize(pdf: str | Path, out_dir: str | Path, dpi: int = 60) -> list[Path]:
    """Each page of a PDF as a PNG in ``out_dir`` (``<stem>-<page>.png``, in page order)."""
    exe = shutil.which("pdftoppm")
    if exe is None:
        raise RuntimeError("pdftoppm (poppler-utils) is not installed")
    prefix = Path(out_dir) / Path(pdf).stem
    proc = subprocess.run(
        [exe, "-png", "-r", str(dpi), str(pdf), str(prefix)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"pdftoppm failed: {proc.stderr}")
    return sorted(prefix.parent.glob(f"{prefix.name}-*.png"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))


def page_texts(pdf: str | Path) -> list[str]:
    """The text of each page of a PDF, in order (poppler's pdftotext; pages split at form feeds)."""
    exe = shutil.which("pdftotext")
    if exe is None:
        raise RuntimeError("pdftotext (poppler-utils) is not installed")
    proc = subprocess.run([exe, "-layout", str(pdf), "-"], capture_output=True, text=True, timeout=TIMEOUT_S)
    if proc.returncode != 0:
        raise RuntimeError(f"pdftotext failed: {proc.stderr}")
    return proc.stdout.split("\f")[:-1]
