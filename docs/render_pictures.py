"""Draw the workbook's sheets as LibreOffice shows them: ``python -m docs.render_pictures --out docs/img``.

The workbook is the template's own description (``gradsheet_workbook``, with its VBA project and cached
values), printed by LibreOffice as it opens the file (no forced recalculation: what a viewer without
gradsheet's Python shows; LibreOffice still recalculates array formulas, so their cells show their
fallbacks). Only the page setup differs from the template's: each sheet is printed one page wide (its
pages' columns joined), so a picture shows the sheet's top as a screen does. The top of each sheet's
first page is cropped into a PNG.
``classify_explained.png`` is the Classify sheet as What the network sees leaves it for the drawing grid
(the button's picture and status line); with ``--report RUN_DIR``, ``train_sheet.png`` is the Train sheet
of the headless report of that run folder (``python -m excel_addin.report``). Writes only into ``--out``.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path

from ml.cli import Parser

# picture name -> (text that starts the sheet's first page, crop width as a fraction of the page's
# content, crop height as a fraction of the crop's width)
PICTURES = {
    "sheet-backprop": ("Backpropagation by hand", 1.0, 0.42),
    "sheet-derivation": ("The chain rule on a sheet", 1.0, 0.62),
    "sheet-derivation-worked": ("Worked example: the first update", 1.0, 0.42),
    "sheet-lr": ("Learning rate 0.5:", 0.6, 0.45),
    "sheet-graphs": ("Loss curves from the formula sheets", 1.0, 0.5),
    "sheet-train": ("Train a CNN on MNIST", 1.0, 0.45),
    "sheet-classify": ("Classify handwritten digits", 1.0, 0.36),
}
EXPLAINED_PICTURE = ("classify_explained", "Classify handwritten digits", 1.0, 0.64)
REPORT_PICTURE = ("train_sheet", "Training report", 1.0, 0.45)
MAX_WIDTH = 1400  # pixels; keeps each PNG well under 300 KB
DPI = 200


def _page_texts(pdf: Path) -> dict[int, str]:
    from excel_addin.testing import libreoffice

    return dict(enumerate(libreoffice.page_texts(pdf), start=1))


def _first_page(texts: dict[int, str], start: str) -> int:
    return next(page for page, text in texts.items() if text.lstrip().startswith(start))


def _crop_page(pdf: Path, page: int, width: float, aspect: float, path: Path, tmp: Path) -> Path:
    """Rasterise one page, crop it to its content (``width`` of it, at most ``aspect`` x width tall),
    shrink it to MAX_WIDTH and save it with a 256-colour palette (small PNGs; a smaller palette merges the
    charts' series colours into greys)."""
    from PIL import Image, ImageOps

    prefix = tmp / f"page{page}"
    args = ["pdftoppm", "-png", "-r", str(DPI), "-f", str(page), "-l", str(page), "-singlefile"]
    subprocess.run([*args, str(pdf), str(prefix)], check=True)
    image = Image.open(prefix.with_suffix(".png")).convert("RGB")
    x0, y0, x1, y1 = ImageOps.invert(image).getbbox()
    x1 = x0 + int((x1 - x0) * width)
    crop = image.crop((x0 - 8, y0 - 8, x1 + 8, min(y1 + 8, y0 + int((x1 - x0) * aspect))))
    if crop.width > MAX_WIDTH:
        crop = crop.resize((MAX_WIDTH, round(crop.height * MAX_WIDTH / crop.width)), Image.LANCZOS)
    crop.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    prefix.with_suffix(".png").unlink()
    return path


def _one_page_wide(setup):
    """A sheet's print setup without its page columns: the sheet as wide as a screen shows it."""
    return replace(setup, column_breaks=[], repeat_columns=None)


def _printed(spec, out: Path, tmp: Path, vba: bool = True) -> tuple[Path, dict[int, str]]:
    """The workbook ``spec`` (a ``WorkbookSpec``; each sheet printed one page wide), its PDF as
    LibreOffice opens and prints it, and each page's text."""
    from excel_addin.sheets.xlsx_render import write_workbook
    from excel_addin.testing import libreoffice
    from excel_addin.xlsm.vba import vba_project_bytes

    wide = [replace(sheet, printing=_one_page_wide(sheet.printing)) for sheet in spec.sheets]
    path = write_workbook(wide, out, spec.names, spec.active, vba=vba_project_bytes() if vba else None)
    pdf = libreoffice.convert(path, "pdf", tmp, recalc=False)
    return pdf, _page_texts(pdf)


def render(out_dir: Path) -> list[Path]:
    """The template's sheets: one picture each."""
    from excel_addin.sheets.workbook import gradsheet_workbook

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pdf, texts = _printed(gradsheet_workbook(), tmp / "workbook_template.xlsm", tmp)
        return [
            _crop_page(pdf, _first_page(texts, start), width, aspect, out_dir / f"{name}.png", tmp)
            for name, (start, width, aspect) in PICTURES.items()
        ]


def explained_classify_sheet(folder: Path, spec):
    """The Classify sheet of ``spec`` (the template's) as What the network sees leaves it for the drawing
    grid: the grid's explanation (``ml.explain``, the shipped model) as the button's picture, and its
    status line."""
    from excel_addin import buttons
    from excel_addin.cells import prepared_pixels
    from excel_addin.sheets import classify_sheet as cs
    from excel_addin.sheets import layout
    from excel_addin.sheets.spec import ref
    from ml.explain import explain, plot_explanation
    from ml.predict import load_classifier, shipped_model_path

    (sheet,) = [s for s in spec.sheets if s.name == layout.CLASSIFY_SHEET]
    image = prepared_pixels(cs.shipped_grid())
    expl = explain(load_classifier(shipped_model_path()), image, source=cs.GRID_SOURCE)
    png = plot_explanation(expl, folder / f"{cs.EXPLAIN_PICTURE}.png")
    status = layout.CLASSIFY_EXPLAIN_STATUS_CELL
    sheet.write(status, buttons.explained_text(cs.GRID_TARGET, expl), sheet.cells[ref(status)].style)
    sheet.pictures.append(cs.explain_picture(png))
    return sheet


def render_explained(out_dir: Path) -> Path:
    """The Classify sheet after What the network sees, in the template's workbook."""
    from excel_addin.sheets.workbook import gradsheet_workbook

    name, start, width, aspect = EXPLAINED_PICTURE
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        spec = gradsheet_workbook()
        explained_classify_sheet(tmp, spec)
        pdf, texts = _printed(spec, tmp / "classify_explained.xlsm", tmp)
        return _crop_page(pdf, _first_page(texts, start), width, aspect, out_dir / f"{name}.png", tmp)


def render_report(run_dir: Path, out_dir: Path) -> Path:
    """The Train sheet after the run in ``run_dir``, as its headless report writes it."""
    from excel_addin.report import report_view
    from excel_addin.sheets import layout
    from excel_addin.sheets.spec import WorkbookSpec
    from excel_addin.sheets.train_sheet import train_sheet

    name, start, width, aspect = REPORT_PICTURE
    spec = WorkbookSpec([train_sheet(report_view(run_dir), buttons=False)], active=layout.TRAIN_SHEET)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pdf, texts = _printed(spec, tmp / "report.xlsx", tmp, vba=False)
        return _crop_page(pdf, _first_page(texts, start), width, aspect, out_dir / f"{name}.png", tmp)


def build_parser() -> Parser:
    parser = Parser(prog="python -m docs.render_pictures", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", metavar="FOLDER", type=Path, required=True, help="the folder to write the PNGs into"
    )
    parser.add_argument(
        "--report", metavar="RUN_DIR", type=Path, help="also draw train_sheet.png from this run"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    written = [*render(args.out), render_explained(args.out)]
    if args.report:
        written.append(render_report(args.report, args.out))
    for path in written:
        print(f"wrote {path} ({path.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
