"""Render the README's pictures of the template's sheets with LibreOffice: ``python -m docs.render_pictures``.

LibreOffice prints the workbook (cached values, as any viewer shows them before Python runs) to PDF, the
first page of each sheet is rasterised and cropped to its top rows, and the PNGs go to docs/img/.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from PIL import Image, ImageOps

from excel_addin.build import libreoffice, template

ROOT = Path(__file__).resolve().parent.parent

# picture name -> (text that starts the sheet's first page, crop width as a fraction of the page's
# content, crop height as a fraction of the crop's width)
PICTURES = {
    "sheet-backprop": ("Backpropagation by hand", 1.0, 0.42),
    "sheet-lr": ("Learning rate 0.5:", 0.6, 0.45),
    "sheet-graphs": ("Loss curves from the formula sheets", 1.0, 0.62),
    "sheet-train": ("Train a CNN on MNIST", 1.0, 0.45),
    "sheet-classify": ("Classify handwritten digits", 1.0, 0.22),
}
MAX_WIDTH = 1400  # pixels; keeps each PNG well under 300 KB


def _page_text(pdf: Path, page: int) -> str:
    out = subprocess.run(
        ["pdftotext", "-f", str(page), "-l", str(page), str(pdf), "-"], capture_output=True, text=True
    )
    return out.stdout


def render(out_dir: Path = ROOT / "docs" / "img", dpi: int = 200) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        workbook = template.build(tmp / "workbook_template.xlsm")
        pdf = libreoffice.convert(workbook, "pdf", tmp, recalc=False)
        pages = int(
            next(
                line.split()[-1]
                for line in subprocess.run(
                    ["pdfinfo", str(pdf)], capture_output=True, text=True
                ).stdout.splitlines()
                if line.startswith("Pages:")
            )
        )
        texts = {page: _page_text(pdf, page) for page in range(1, pages + 1)}
        for name, (start, width, aspect) in PICTURES.items():
            page = next(p for p, text in texts.items() if text.lstrip().startswith(start))
            prefix = tmp / f"page{page}"
            subprocess.run(
                ["pdftoppm", "-png", "-r", str(dpi), "-f", str(page), "-l", str(page), str(pdf), str(prefix)],
                check=True,
            )
            image = Image.open(next(tmp.glob(f"page{page}-*.png"))).convert("RGB")
            x0, y0, x1, y1 = ImageOps.invert(image).getbbox()
            x1 = x0 + int((x1 - x0) * width)
            crop = image.crop((x0 - 8, y0 - 8, x1 + 8, min(y1 + 8, y0 + int((x1 - x0) * aspect))))
            if crop.width > MAX_WIDTH:
                crop = crop.resize((MAX_WIDTH, round(crop.height * MAX_WIDTH / crop.width)), Image.LANCZOS)
            path = out_dir / f"{name}.png"
            crop = crop.quantize(
                colors=64, method=Image.Quantize.MEDIANCUT
            )  # text and flat colours: small PNGs
            crop.save(path, optimize=True)
            written.append(path)
            for stale in tmp.glob(f"page{page}-*.png"):
                stale.unlink()
    return written


if __name__ == "__main__":
    for path in render():
        print(f"wrote {path} ({path.stat().st_size // 1024} KB)")
