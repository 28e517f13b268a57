"""The template prints readably: LibreOffice's PDF of it (as opened) has the pages each sheet's print
setup asks for, the LR sheets' header rows and epoch column on every page, each chart on one page, and the
Derivation and its worked example on one page each. The setup itself (``sheets.print_layout``) is checked
without LibreOffice: the scale it finds, and that a chart across a page break is refused.
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from collections import defaultdict
from dataclasses import replace

import pytest
from PIL import Image

from excel_addin.sheets import backprop_sheets as bs
from excel_addin.sheets import layout, print_layout
from excel_addin.sheets.spec import PrintSetup, SheetSpec
from excel_addin.sheets.workbook import gradsheet_workbook

SHEETS = {sheet.name: sheet for sheet in gradsheet_workbook(predict_examples=False).sheets}
RATE_SHEETS = [layout.rate_sheet_name(lr) for lr in layout.DEFAULT_RATES]
# pages per sheet as LibreOffice prints the template (it leaves out pages without content): the LR
# sheets 3 columns of pages (weights | forward pass, error, deltas | gradients, engine) x 3 of rows
PAGES = {
    layout.BACKPROP_SHEET: 2,
    layout.DERIVATION_SHEET: 2,
    **dict.fromkeys(RATE_SHEETS, 9),
    layout.GRAPHS_SHEET: 2,
    layout.TRAIN_SHEET: 4,
    layout.CLASSIFY_SHEET: 1,
    layout.XLWINGS_CONF_SHEET: 1,
}


# ---- the setup, measured ---------------------------------------------------------------------------


def test_every_sheet_has_a_scale_and_the_tables_are_readable():
    scales = {name: print_layout.page_scale(sheet) for name, sheet in SHEETS.items()}
    assert all(10 <= scale <= 100 for scale in scales.values()), scales
    assert all(scales[name] >= 60 for name in RATE_SHEETS), scales  # not the one page at ~30% of before
    assert scales[layout.GRAPHS_SHEET] >= 75 and scales[layout.TRAIN_SHEET] >= 75, scales
    assert print_layout.one_page(SHEETS[layout.CLASSIFY_SHEET])


def test_the_lr_pages_are_whole_groups_of_columns_with_the_epoch_repeated():
    setup = SHEETS[RATE_SHEETS[0]].printing
    groups = [group for _, _, group in bs.LR_COLUMNS]
    for col in setup.column_breaks:
        assert groups[col] != groups[col - 1]  # a page starts a group
    assert setup.repeat_columns == (0, 0) and groups[0] == "epoch"
    head = bs.lr_first_data_row() - 1
    assert setup.repeat_rows == (head - 1, head)  # the group titles and the column headers


def test_a_chart_across_a_page_break_is_refused():
    graphs = SHEETS[layout.GRAPHS_SHEET]
    chart = graphs.charts[0]
    broken = replace(graphs, printing=replace(graphs.printing, row_breaks=[chart.anchor[0] + 5]))
    with pytest.raises(ValueError, match=f"{chart.name} .* straddles a page break"):
        print_layout.page_scale(broken)


def test_a_chart_taller_than_a_page_lowers_the_scale_until_it_fits():
    sheet = SheetSpec("tall")
    sheet.write("A1", "x")
    sheet.charts.append(replace(SHEETS[layout.GRAPHS_SHEET].charts[0], anchor=(0, 0), height=1000.0))
    height = print_layout.PAGE_POINTS[True][1]
    assert print_layout.page_scale(sheet) == int(100 * height / 1005 * print_layout.SAFETY)
    sheet.printing = PrintSetup(landscape=False)  # a portrait page is taller
    assert print_layout.page_scale(sheet) > int(100 * height / 1005 * print_layout.SAFETY)


# ---- the PDF -----------------------------------------------------------------------------------------

_PAGE = re.compile(r'<page width="([\d.]+)" height="([\d.]+)">(.*?)</page>', re.S)
_WORD = re.compile(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">(.*?)</word>')
FOOTER = re.compile(r"^(.+) page (\d+) of (\d+)$")
DPI = 100


def _visible_words(page_xml: str, image: Image.Image) -> list[tuple[float, str]]:
    """(top, text) of the page's words that show on the rendered page. LibreOffice also draws a chart
    that starts on the next page into this one, hidden by the page's clip, and pdftotext reports such
    text as if it were there: a word counts where its box has ink."""
    words = []
    for x0, y0, x1, y1, text in _WORD.findall(page_xml):
        box = [round(float(v) * DPI / 72) for v in (x0, y0, x1, y1)]
        if (
            image.crop((box[0], box[1], max(box[2], box[0] + 1), max(box[3], box[1] + 1))).getextrema()[0]
            < 160
        ):
            words.append((float(y0), html.unescape(text)))
    return words


def _pages(pdf, folder) -> list[tuple[str, str]]:
    """Each printed page's sheet (from its footer: the sheet's name, the page number) and its text above
    the footer: the words poppler finds that show on the page as pdftoppm draws it."""
    if shutil.which("pdftotext") is None or shutil.which("pdftoppm") is None:
        pytest.skip("poppler-utils (pdftotext, pdftoppm) is not installed")
    out = subprocess.run(["pdftotext", "-bbox", str(pdf), "-"], capture_output=True, text=True, check=True)
    subprocess.run(["pdftoppm", "-gray", "-r", str(DPI), str(pdf), str(folder / "page")], check=True)
    images = sorted(folder.glob("page-*.pgm"), key=lambda path: int(path.stem.rsplit("-", 1)[1]))
    pages = []
    for (_, _, body), path in zip(_PAGE.findall(out.stdout), images, strict=True):
        words = _visible_words(body, Image.open(path))
        footer_top = max(top for top, text in words if text == "page")
        footer = " ".join(text for top, text in words if abs(top - footer_top) < 3)
        match = FOOTER.match(footer)
        assert match, footer
        pages.append((match.group(1), " ".join(text for top, text in words if top < footer_top - 3)))
    return pages


@pytest.fixture(scope="module")
def pages(printed, tmp_path_factory) -> dict[str, list[str]]:
    """Sheet name -> the text of each of its printed pages, in order."""
    by_sheet = defaultdict(list)
    for sheet, text in _pages(printed, tmp_path_factory.mktemp("pages")):
        by_sheet[sheet].append(text)
    return dict(by_sheet)


@pytest.mark.slow
def test_each_sheet_prints_on_its_pages(pages):
    assert {sheet: len(texts) for sheet, texts in pages.items()} == PAGES


def test_every_lr_page_shows_the_header_rows_and_the_epochs(pages):
    first_groups = ("weights: w := w", "forward pass", "gradients ∂E_total/∂w")
    for sheet in RATE_SHEETS:
        texts = pages[sheet]
        assert texts[0].startswith(f"Learning rate {sheet[3:]}: 100 epochs")
        for k, text in enumerate(texts):
            assert " epoch " in f" {text} " and first_groups[k // 3] in text, (sheet, k)
        epochs = [int(t) for text in texts[:3] for t in re.findall(r"(?<![\d.E-])\d{1,3}(?![\d.])", text)]
        assert set(range(bs.EPOCHS + 1)) <= set(epochs)  # every epoch printed, down the first column


def test_derivation_and_its_worked_example_are_one_page_each(pages):
    part, worked = pages[layout.DERIVATION_SHEET]
    assert part.startswith("The chain rule on a sheet") and "Gradient descent: every weight at once" in part
    assert "Worked example" not in part
    assert worked.startswith("Worked example: the first update") and "w8 ← w8 − η × ∂E/∂w8" in worked


CHARTS = {  # sheet -> each chart's title, and a text at its bottom (axis title or legend)
    layout.BACKPROP_SHEET: [("Loss curves: E_total by epoch, six learning rates", "epoch (weight updates)")],
    layout.GRAPHS_SHEET: [
        ("E_total by epoch for six learning rates", "epoch (weight updates)"),
        ("E_total by epoch for six learning rates (log scale)", "epoch (weight updates)"),
    ],
    layout.TRAIN_SHEET: [("Loss by epoch", "test_loss"), ("Accuracy by epoch", "test_acc")],
}


def test_no_chart_is_split_across_pages(pages):
    """A chart's title and the text at its bottom are on the same page: one page holds it whole."""
    for sheet, charts in CHARTS.items():
        assert len(charts) == len(SHEETS[sheet].charts)
        for title, bottom in charts:
            (page,) = [
                text for text in pages[sheet] if f"{title} " in f"{text} " and f"{title} (" not in text
            ]
            assert bottom in page.split(title, 1)[1], (sheet, title)
    graphs = pages[layout.GRAPHS_SHEET]
    assert [text.count("E_total by epoch for six learning rates") for text in graphs] == [1, 1]


@pytest.mark.slow
def test_the_page_setup_is_in_the_file(formulas):
    ws = formulas[RATE_SHEETS[0]]
    assert ws.print_title_rows == "$5:$6" and ws.print_title_cols == "$A:$A"
    assert ws.page_setup.orientation == "landscape" and ws.page_setup.scale == print_layout.page_scale(
        SHEETS[RATE_SHEETS[0]]
    )
    assert [b.id for b in ws.col_breaks.brk] == [bs.lr_col(key) for key in bs.PAGE_STARTS]
    assert "&A" in ws.oddFooter.left.text
