"""Render the README's pictures of the workbook with LibreOffice: ``python -m docs.render_pictures``.

LibreOffice prints the template (cached values, as any viewer shows them before Python runs) to PDF, the
first page of each sheet is rasterised and cropped to its top rows, and the PNGs go to docs/img/. The
Classify sheet is drawn once more as What the network sees leaves it for the drawing grid
(``classify_explained.png``: the template's sheet with the button's picture and status line). With
``--report RUN_DIR`` the Train sheet after a run is drawn too (``train_sheet.png``), from the headless
report of that run folder (``python -m excel_addin.report``).
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
from pathlib import Path

from PIL import Image, ImageOps

from excel_addin.report import build_report
from excel_addin.sheets.xlsx_render import write_workbook
from excel_addin.testing import libreoffice
from excel_addin.xlsm import template

ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = ROOT / "docs" / "img"

# picture name -> (text that starts the sheet's first page, crop width as a fraction of the page's
# content, crop height as a fraction of the crop's width)
PICTURES = {
    "sheet-backprop": ("Backpropagation by hand", 1.0, 0.42),
    "sheet-derivation": ("The chain rule on a sheet", 1.0, 0.62),
    "sheet-derivation-worked": ("Worked example: the first update", 1.0, 0.42),
    "sheet-lr": ("Learning rate 0.5:", 0.6, 0.45),
    "sheet-graphs": ("Loss curves from the formula sheets", 1.0, 0.62),
    "sheet-train": ("Train a CNN on MNIST", 1.0, 0.45),
    "sheet-classify": ("Classify handwritten digits", 1.0, 0.36),
}
EXPLAINED_PICTURE = ("classify_explained", "Classify handwritten digits", 1.0, 0.64)
REPORT_PICTURE = ("train_sheet", "Training report", 1.0, 0.45)
MAX_WIDTH = 1400  # pixels; keeps each PNG well under 300 KB


def _page_text(pdf: Path, page: int) -> str:
    out = subprocess.run(
        ["pdftotext", "-f", str(page), "-l", str(page), str(pdf), "-"], capture_output=True, text=True
    )
    return out.stdout


def _page_count(pdf: Path) -> int:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True).stdout
    return int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))


def _crop_page(pdf: Path, page: int, width: float, aspect: float, path: Path, dpi: int, tmp: Path) -> Path:
    """Rasterise one page, crop it to its content (``width`` of it, at most ``aspect`` x width tall),
    shrink it to MAX_WIDTH and save it with a 256-colour palette (small PNGs; a smaller palette merges the
    charts' series colours into greys)."""
    prefix = tmp / f"page{page}"
    subprocess.run(
        [
            "pdftoppm",
            "-png",
            "-r",
            str(dpi),
            "-f",
            str(page),
            "-l",
            str(page),
            "-singlefile",
            str(pdf),
            str(prefix),
        ],
        check=True,
    )
    image = Image.open(prefix.with_suffix(".png")).convert("RGB")
    x0, y0, x1, y1 = ImageOps.invert(image).getbbox()
    x1 = x0 + int((x1 - x0) * width)
    crop = image.crop((x0 - 8, y0 - 8, x1 + 8, min(y1 + 8, y0 + int((x1 - x0) * aspect))))
    if crop.width > MAX_WIDTH:
        crop = crop.resize((MAX_WIDTH, round(crop.height * MAX_WIDTH / crop.width)), Image.LANCZOS)
    crop.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    prefix.with_suffix(".png").unlink()
    return path


def _pdf_pages(workbook: Path, tmp: Path) -> tuple[Path, dict[int, str]]:
    pdf = libreoffice.convert(workbook, "pdf", tmp, recalc=False)
    return pdf, {page: _page_text(pdf, page) for page in range(1, _page_count(pdf) + 1)}


def render(out_dir: Path = OUT_DIR, dpi: int = 200) -> list[Path]:
    """The template's sheets: one picture each."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pdf, texts = _pdf_pages(template.build(tmp / "workbook_template.xlsm"), tmp)
        for name, (start, width, aspect) in PICTURES.items():
            page = next(p for p, text in texts.items() if text.lstrip().startswith(start))
            written.append(_crop_page(pdf, page, width, aspect, out_dir / f"{name}.png", dpi, tmp))
    return written


def render_report(run_dir: Path, out_dir: Path = OUT_DIR, dpi: int = 200) -> Path:
    """The Train sheet after the run in ``run_dir``, from its headless report."""
    name, start, width, aspect = REPORT_PICTURE
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pdf, texts = _pdf_pages(build_report(run_dir, tmp / "report.xlsx"), tmp)
        page = next(p for p, text in texts.items() if start in text)
        return _crop_page(pdf, page, width, aspect, out_dir / f"{name}.png", dpi, tmp)


def explained_classify_sheet(folder: Path):
    """The template's Classify sheet as What the network sees leaves it for the drawing grid: the grid's
    explanation (``ml.explain``, the shipped model) as the button's picture, and its status line."""
    from excel_addin import buttons
    from excel_addin.cells import prepared_pixels
    from excel_addin.sheets import classify_sheet as cs
    from excel_addin.sheets import layout
    from excel_addin.sheets.spec import ref
    from excel_addin.sheets.workbook import gradsheet_workbook
    from ml.explain import explain, plot_explanation
    from ml.predict import load_classifier, shipped_model_path

    (sheet,) = [s for s in gradsheet_workbook().sheets if s.name == layout.CLASSIFY_SHEET]
    image = prepared_pixels(cs.shipped_grid())
    expl = explain(load_classifier(shipped_model_path()), image, source=cs.GRID_SOURCE)
    png = plot_explanation(expl, folder / f"{cs.EXPLAIN_PICTURE}.png")
    status = layout.CLASSIFY_EXPLAIN_STATUS_CELL
    sheet.write(status, buttons.explained_text(cs.GRID_TARGET, expl), sheet.cells[ref(status)].style)
    sheet.pictures.append(cs.explain_picture(png))
    return sheet


def render_explained(out_dir: Path = OUT_DIR, dpi: int = 200) -> Path:
    """The Classify sheet after What the network sees (its other sheets' cells are not needed: the file's
    cached values are what LibreOffice shows)."""
    name, start, width, aspect = EXPLAINED_PICTURE
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        workbook = write_workbook([explained_classify_sheet(tmp)], tmp / "classify.xlsx")
        pdf, texts = _pdf_pages(workbook, tmp)
        page = next(p for p, text in texts.items() if text.lstrip().startswith(start))
        return _crop_page(pdf, page, width, aspect, out_dir / f"{name}.png", dpi, tmp)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m docs.render_pictures", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--report", metavar="RUN_DIR", type=Path, help="also draw train_sheet.png from this run"
    )
    args = parser.parse_args(argv)
    written = [*render(), render_explained()]
    if args.report:
        written.append(render_report(args.report))
    for path in written:
        print(f"wrote {path} ({path.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
