"""The README and docs/ against the committed bench records and against themselves (issue 26): every
generated table equals a fresh rendering from its record and names its machine, every figure of the prose
is backed (bench/doc_prose.py), the check fails when a figure or a record changes, and every relative link
and picture resolves, anchors included."""

from __future__ import annotations

import re
from pathlib import Path

import doc_figures
import doc_prose
import doc_records
import doc_tables
import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CODE = re.compile(r"```.*?```", re.DOTALL)
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^)\s]+)\)")


def test_every_generated_table_matches_its_record():
    missing: list[str] = []
    assert doc_figures.stale(PAGES, missing) == []
    assert missing == []  # a block naming a record that is not committed


def test_the_readme_and_the_benchmark_page_have_their_tables_and_each_names_its_machine():
    blocks = {page.name: list(doc_figures.BLOCK.finditer(page.read_text())) for page in PAGES}
    assert {m[1] for m in blocks["README.md"]} >= {"install", "quickstart", "summary"}
    assert {m[1] for m in blocks["benchmark.md"]} >= {"time", "speed", "accuracy", "gpu", "research-log"}
    for block in (m for found in blocks.values() for m in found):
        caption = block[3].rstrip("\n").splitlines()[-1]
        assert caption.startswith(("*Measured on ", "*From `bench/results/")), (block[1], caption)
        assert re.search(r"Xeon|EPYC|H200|cores", caption + block[3]), block[1]


def test_a_changed_figure_or_record_is_caught():
    readme = (ROOT / "README.md").read_text()
    block = next(doc_figures.BLOCK.finditer(readme, readme.index("<!-- figures: summary")))
    figure = re.search(r"\d+\.\d+%", block[3])[0]
    tampered = readme.replace(block[0], block[0].replace(figure, "99.99%", 1))
    assert doc_figures.regenerate(tampered) == readme  # the regenerated table restores the record's figure
    assert doc_prose.figures("A run reached 99.71% in 12.5 s, `not 3 s` <!-- nor 4 s -->.") == [
        "99.71%",
        "12.5 s",
    ]


def test_every_figure_of_the_prose_is_backed():
    assert doc_prose.unbacked(ROOT) == []


def test_a_figure_added_to_the_prose_is_refused(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text("The fast preset takes 31 s here.\n")
    assert doc_prose.unbacked(tmp_path) == [
        "README.md: its prose's figures ['31 s'] are not those bench/doc_prose.py lists"
    ]


CLASS = {  # a classroom record's fields as bench/classroom_bench.py writes them (classroom_report.summarise)
    "mode": "distributed", "students": 20, "web_processes": 2, "train_workers": 2, "seconds": 90.0,
    "requests": 12345, "errors": 0, "wrong_results": 1, "foreign_events": 0, "rows_lost": 0,
    "trainings_pressed": 8, "trainings_completed": 7, "trainings_interrupted_and_pressed_again": 1,
    "trainings_dropped_by_restart_and_pressed_again": 2, "p50_ms": 12.5, "p95_ms": 80.1, "p99_ms": 150.0,
    "press_to_first_step_cold_s": 5.38, "press_to_first_step_warm_s": None,
    "machine": {"processor": "AMD EPYC", "cpu_count": 2, "load_average_before": [1.25, 1.0, 0.5]},
}  # fmt: skip


def test_the_classroom_table_renders_a_classroom_record(monkeypatch):
    """The table the classroom benchmark's records go into (``figures: classroom FILE``), on a small record:
    every figure where it belongs, an absent one as "-", and the caption naming the record's machine."""
    monkeypatch.setattr(doc_tables, "record", lambda name: CLASS)
    monkeypatch.setattr(doc_records, "record", lambda name: CLASS)
    table = doc_tables.classroom_table("classroom_made_up.json").splitlines()
    assert table[:2] == ["| the class | figure |", "|---|---|"]
    assert "| mode | distributed: 2 web process(es), 2 train worker(s) |" in table
    assert "| students; class length | 20; 90 s |" in table
    assert "| requests | 12,345 |" in table
    assert "| errors; wrong results | 0; 1 |" in table
    assert "| foreign events; rows lost | 0; 0 |" in table
    assert "| trainings pressed; completed; pressed again after a fault | 8; 7; 3 |" in table
    assert "| latency p50 / p95 / p99 | 12 / 80 / 150 ms |" in table
    assert "| press Train -> first step: fresh process; warm slot | 5.38 s; - |" in table
    assert "| load average at the start | 1.2 |" in table
    assert (
        table[-1]
        == "*Measured on 2 cores of an AMD EPYC (`classroom_made_up.json`); records in `bench/results/`.*"
    )


def test_a_block_whose_record_is_absent_is_kept_and_named(capsys, tmp_path):
    """The classroom records come later: a block naming one that is not in bench/results/ stays as it is,
    the check names it, --update skips it (exit code 1) and --show says what is missing."""
    absent = "classroom_not_measured_yet.json"
    block = f"<!-- figures: classroom {absent} -->\nto be drawn\n<!-- /figures -->\n"
    page = tmp_path / "page.md"
    page.write_text(f"# A page\n\n{block}")
    missing: list[str] = []
    assert doc_figures.regenerate(page.read_text(), missing) == page.read_text()
    assert missing == [
        f"classroom {absent}: bench/results/{absent} does not exist (a bench writes it with --out)"
    ]
    assert doc_figures.stale([page], []) == []
    assert doc_figures.main(["--update", str(page)]) == 1
    assert page.read_text() == f"# A page\n\n{block}"
    assert f"skipped {page}: classroom {absent}" in capsys.readouterr().err
    with pytest.raises(SystemExit, match=f"bench/results/{absent} does not exist"):
        doc_figures.main(["--show", "classroom", absent])
    with pytest.raises(SystemExit, match="needs its record"):
        doc_figures.render("classroom", None)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = CODE.sub("", page.read_text())
    return {slug(m[1]) for m in re.finditer(r"^#{1,6} (.+)$", text, flags=re.MULTILINE)}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_picture_resolves(page):
    broken = []
    for target in LINK.findall(CODE.sub("", page.read_text())):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:: not this repository's
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append(f"{target}: no such heading")
    assert broken == []
