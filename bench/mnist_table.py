"""The MNIST benchmark's printed tables (Markdown) from its JSON record, and the formatting of its figures.

Torch-free: ``format_table`` reads a record as ``bench/mnist_bench.py`` writes it.
"""

from __future__ import annotations

import statistics


def as_percent(value: float | None, digits: int = 2) -> str:
    return f"{value:.{digits}%}" if value is not None else "n/a"


def mean_of_all(values: list[float | None]) -> float | None:
    """The mean, or None when any run has no figure (a mean of the others would flatter the model)."""
    return None if any(v is None for v in values) else statistics.fmean(values)


def as_seconds(value: float | None, digits: int = 1, missing: str = "not reached") -> str:
    return f"{value:.{digits}f} s" if value is not None else missing


def median_or_none(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def format_time(time_result: dict) -> list[str]:
    """The time-to-accuracy table: each preset (one process per seed) and the textbook pipeline."""
    target = time_result["target"]
    lines = [
        f"| pipeline | final test acc per seed | all >= {target:.1%} | time to {target:.1%} per seed "
        "(process start, data loading included) | process wall per seed | peak RSS |",
        "|---|---|---|---|---|---|",
    ]
    for name, block in time_result["pipelines"].items():
        runs = block["runs"]
        finals = ", ".join(as_percent(r["final_test_acc"]) for r in runs)
        passed = "yes" if all((r["final_test_acc"] or 0) >= target for r in runs) else "no"
        times = ", ".join(
            f"{as_seconds(r['reached_s'])} ({as_seconds(r.get('reached_train_s'))} training)" for r in runs
        )
        walls = ", ".join(f"{r['wall_s']:.1f} s" for r in runs)
        rss = max(r["peak_rss_mb"] for r in runs)
        lines.append(f"| preset `{name}` | {finals} | {passed} | {times} | {walls} | {rss:.0f} MB |")
    tb = time_result.get("textbook")
    if tb:
        reused = " (figure reused from an earlier run)" if tb.get("reused") else ""
        final = f"{as_percent(tb['final_test_acc'])} after {len(tb['epochs'])} epochs"
        passed = "yes" if tb["reached_s"] else "no"
        lines.append(
            f"| textbook{reused} | {final} | {passed} | {as_seconds(tb['reached_s'])} | "
            f"{tb['wall_s']:.0f} s | {tb['peak_rss_mb']:.0f} MB |"
        )
    for entry in time_result.get("concurrent", []):
        lines.append(
            f"\n{entry['trainings']} trainings at once: {entry['wall_s']:.1f} s, "
            f"{entry['images_per_s']:,.0f} images/s together, final accuracies {entry['final_test_acc']}"
        )
    return lines + [""]


def format_table(result: dict) -> str:
    lines = format_time(result["time"]) if "time" in result else []
    if "accuracy" in result:
        lines += [
            "| model | params | epochs | seeds | final test acc per seed | mean | with TTA: per seed | mean "
            "| wall time per run | training alone per run | s/epoch (training, median) |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for name, acc in result["accuracy"].items():
            per = ", ".join(f"{r['final_test_acc']:.2%}" for r in acc["runs"])
            per_tta = ", ".join(as_percent(r["final_test_acc_tta"]) for r in acc["runs"])
            walls = ", ".join(f"{r['wall_s']:.1f} s" for r in acc["runs"])
            trains = ", ".join(as_seconds(r.get("train_s"), missing="n/a") for r in acc["runs"])
            lines.append(
                f"| {name} | {acc['params']:,} | {acc['epochs']} | {len(acc['runs'])} | {per} | "
                f"**{acc['mean_final_test_acc']:.2%}** | {per_tta} | "
                f"{as_percent(acc['mean_final_test_acc_tta'], digits=3)} | {walls} | {trains} | "
                f"{as_seconds(acc.get('median_train_epoch_s'), digits=2, missing='n/a')} |"
            )
        lines.append("")
    if "speed" in result:
        lines += [
            "| threads | pipeline | s/epoch (training) | images/s | GFLOP/s | of peak FP32 | speed-up |",
            "|---|---|---|---|---|---|---|",
        ]
        for n, block in result["speed"]["by_threads"].items():
            for name, s in block["pipelines"].items():
                partial = "" if s["full_epoch"] else f" (from {s['steps']} steps)"
                lines.append(
                    f"| {n} | {name} | {s['epoch_s']:.1f}{partial} | {s['images_per_s']:,.0f} | "
                    f"{s['gflops']:.1f} | {s['fraction_of_peak_fp32']:.1%} | "
                    f"{s['speedup_vs_textbook']:.2f}x |"
                )
        lines.append("")
        for n, block in result["speed"]["by_threads"].items():
            lines.append(
                f"peak FP32 ({n} thread(s)) = {block['peak_formula']} = "
                f"{block['peak_fp32_gflops']:.0f} GFLOP/s"
            )
        per_image = result["speed"]["train_gflop_per_image"]
        lines.append(
            "training MFLOP per image (conv layers): "
            + ", ".join(f"{name} {gflop * 1000:.1f}" for name, gflop in per_image.items())
        )
        lines.append("")
    if "predict" in result:
        pr = result["predict"]
        lines += [
            "| prediction | value |",
            "|---|---|",
            f"| warm latency, one PNG file (median / p90) | {pr['latency_ms_median']:.2f} ms / "
            f"{pr['latency_ms_p90']:.2f} ms |",
            f"| user-style pictures of {pr['images']} MNIST test digits, with preprocessing | "
            f"{pr['user_style_acc']:.2%} |",
            f"| the same {pr['images']} digits from MNIST itself | {pr['mnist_same_digits_acc']:.2%} |",
            f"| the same pictures fed as-is (resized to 28x28 only) | {pr['as_is_acc']:.2%} |",
        ]
    return "\n".join(lines)
