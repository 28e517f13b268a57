"""The research log's tables (docs/benchmark.md), from bench/results/research_log.json: per target, every
try with its model, its change against the standard recipe, its seeds, its final test accuracies and its
machine; then the public figures it was measured against."""

from __future__ import annotations

import statistics

from doc_records import SHORT, record

LOG = "research_log.json"


def figures(values: list[float], digits: int = 2) -> str:
    """ "99.60 / 99.62 / 99.58% (mean 99.60%)", or one figure."""
    text = " / ".join(f"{v:.{digits}f}" for v in values) + "%"
    return text + (f" (mean {statistics.fmean(values):.2f}%)" if len(values) > 1 else "")


def plain_cell(entry: dict) -> str:
    """The try's accuracy without test-time augmentation, as the log recorded it."""
    if "test_acc" in entry:
        return figures(entry["test_acc"])
    if "mean" in entry:
        return f"mean {entry['mean']:.2f}%"
    if "range" in entry:
        low, high = entry["range"]
        return f"{low:.2f}-{high:.2f}%"
    if "delta_points" in entry:
        low, high = entry["delta_points"]
        return f"{low:+.2f} to {high:+.2f} points"
    return ""


def tta_cell(entry: dict) -> str:
    """With test-time augmentation: 5 views unless said."""
    parts = []
    if "test_acc_tta5" in entry:
        parts.append(figures(entry["test_acc_tta5"]))
    if "mean_tta5" in entry:
        parts.append(f"mean {entry['mean_tta5']:.2f}%")
    if "mean_tta9" in entry:
        parts.append(f"9 views: mean {entry['mean_tta9']:.3f}%")
    if "mean_tta" in entry:
        parts.append(f"{entry['mean_tta']:.2f}%")
    return "; ".join(parts)


def seeds_cell(entry: dict) -> str:
    return ", ".join(map(str, entry["seeds"])) if entry["seeds"] else "not said"


def research_log() -> str:
    """Every try of the log, one table per target, and the public references."""
    data = record(LOG)
    lines: list[str] = []
    targets = list(dict.fromkeys(e["target"] for e in data["entries"]))
    for target in targets:
        lines += [f"**{target}**", "", "| model | change | seeds | final test acc | with TTA | machine |"]
        lines.append("|---|---|---|---|---|---|")
        for e in (e for e in data["entries"] if e["target"] == target):
            cells = [e["model"], e["change"], seeds_cell(e), plain_cell(e), tta_cell(e), SHORT[e["machine"]]]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines.append("Measured against:")
    for ref in data["references"]:
        figure = f"{ref['test_acc']:.2f}%" if "test_acc" in ref else "{:.2f}-{:.2f}%".format(*ref["range"])
        epochs = f" after {ref['epochs']} epochs" if "epochs" in ref else ""
        lines.append(f"- {ref['what']}: {figure}{epochs}")
    lines += ["", f"*From `bench/results/{LOG}`: {data['source']}*"]
    return "\n".join(lines)
