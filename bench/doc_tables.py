"""The tables that bench/doc_figures.py puts into the README and the docs, each drawn from committed records
(``TABLES``: name -> a function of the record's file name, or of nothing for the tables that read several).

Torch-free. Each table ends with the line that names its records and their machines (``source_line``).
"""

from __future__ import annotations

import statistics

from doc_records import SHORT, MissingRecordError, has_record, machine, record, source_line
from doc_research_log import LOG, research_log
from mnist_table import as_percent

TIME, GPU, PREDICT, BACKPROP = "mnist_time.json", "mnist_gpu.json", "mnist_predict.json", "backprop.json"
QUICK, QUICK_CPU = "quickstart.json", "quickstart_cpu.json"
SMALL, TINY = "mnist_small.json", "mnist_tiny.json"
PIPELINES = {  # time-to-accuracy pipelines, as the tables name them
    "fast": "`--preset fast` (model `fast`, 34,602 parameters, 8 epochs, TTA 5)",
    "standard": "`--preset standard` (model `default`, 19,650 parameters, 15 epochs)",
}


def seconds(values: list[float], digits: int = 1) -> str:
    return " / ".join(f"{v:.{digits}f}" for v in values) + " s"


def span(values: list[float], digits: int = 1, unit: str = " s") -> str:
    """A range "low-high" (or one figure) of measured values."""
    low, high = f"{min(values):.{digits}f}", f"{max(values):.{digits}f}"
    return (low if low == high else f"{low}-{high}") + unit


def percents(fractions: list[float]) -> str:
    return " / ".join(f"{100 * f:.2f}" for f in fractions) + "%"


def rows(header: list[str], body: list[list[str]]) -> list[str]:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(cells) + " |" for cells in body]


def time_table(name: str = TIME) -> str:
    """Time to 99.5% test accuracy on a CPU: each preset as one ``python -m ml.train`` process per seed,
    and the textbook pipeline."""
    data = record(name)["time"]
    target = f"{data['target']:.1%}"
    body = []
    for key, block in data["pipelines"].items():
        runs = block["runs"]
        body.append([
            PIPELINES[key], percents([r["final_test_acc"] for r in runs]),
            "yes" if block["all_reached"] else "no", f"**{seconds([r['reached_s'] for r in runs])}**",
            seconds([r["wall_s"] for r in runs]), f"{max(r['peak_rss_mb'] for r in runs) / 1024:.1f} GB",
        ])  # fmt: skip
    book = data.get("textbook")
    if book:
        final = f"{100 * book['final_test_acc']:.2f}% at epoch {len(book['epochs'])}"
        body.append([
            f"textbook pipeline (`bench/textbook.py`, default model, seed {book['seed']})", final,
            "yes" if book["reached_s"] else "no", f"{book['reached_s']:.0f} s", f"{book['wall_s']:.0f} s",
            f"{book['peak_rss_mb'] / 1024:.1f} GB",
        ])  # fmt: skip
    seeds = "/".join(str(r["seed"]) for r in next(iter(data["pipelines"].values()))["runs"])
    header = ["pipeline", f"final test acc, seeds {seeds}", f"all ≥ {target}", f"time to {target}",
              "process wall", "peak RSS"]  # fmt: skip
    threads = record(name)["args"]["threads"]
    note = f"Threads: {threads}; from process start (data loading included) to the first epoch at {target}."
    return "\n".join([*rows(header, body), "", note, source_line(name)])


def speed_table(name: str = TIME) -> str:
    """Seconds per training epoch (60,000 images), each pipeline in the same process after warm-up steps."""
    labels = {
        "textbook": "textbook: PIL dataset, per-sample `RandomAffine`, `DataLoader` (batch 128), NCHW fp32",
        "project": "gradsheet, default model: in-memory uint8, batch augmentation, channels_last, batch 512",
        "project_fp32": "gradsheet, default model, fp32 (`--amp off`)",
        "project_fast_preset_model": "gradsheet, `fast` model",
    }
    body = []
    for threads, block in record(name)["speed"]["by_threads"].items():
        for key, s in block["pipelines"].items():
            body.append([
                threads, labels[key], f"{s['epoch_s']:.1f}", f"{s['images_per_s']:,.0f}",
                f"{s['gflops']:.1f}", f"{s['fraction_of_peak_fp32']:.1%}", f"{s['speedup_vs_textbook']:.2f}x",
            ])  # fmt: skip
    header = ["threads", "pipeline", "s/epoch", "images/s", "GFLOP/s", "of peak FP32", "speed-up"]
    peaks = "; ".join(
        f"{n} thread(s): {b['peak_formula']} = {b['peak_fp32_gflops']:.0f} GFLOP/s"
        for n, b in record(name)["speed"]["by_threads"].items()
    )
    return "\n".join([*rows(header, body), "", f"Peak FP32: {peaks}.", source_line(name)])


def accuracy_table() -> str:
    """Final test accuracy per model and seed, standard recipe, from every record that measured one."""
    log = {
        e["model"]: e
        for e in record(LOG)["entries"]
        if e["change"] == "the standard recipe" and e["machine"] == "dev-cpu"
    }
    pipelines = record(TIME)["time"]["pipelines"]
    small, tiny = record(SMALL)["accuracy"]["small"]["runs"], record(TINY)["accuracy"]["tiny"]["runs"]
    measured = [
        ("default", TIME, pipelines["standard"]["runs"], None, "15 epochs"),
        ("fast", TIME, pipelines["fast"]["runs"], None, "8 epochs, TTA 5 (`--preset fast`)"),
        ("small", SMALL, small, None, "15 epochs"),
        ("tiny", TINY, tiny, "final_test_acc_tta", "15 epochs"),
    ]
    body = []
    for model, name, runs, tta, how in measured:
        accs = [r["final_test_acc"] for r in runs]
        cell = f"{percents(accs)}: **{100 * statistics.fmean(accs):.2f}%**"
        if tta:
            with_tta = [r[tta] for r in runs]
            cell += f"; with TTA 5 {percents(with_tta)}: **{100 * statistics.fmean(with_tta):.2f}%**"
        body.append([f"`{model}`", how, cell, f"`{name}`", machine(name, short=True)])
    for model in ("wide", "s6"):
        accs = log[model]["test_acc"]
        cell = f"{' / '.join(f'{a:.2f}' for a in accs)}%: **{statistics.fmean(accs):.2f}%**"
        body.append([f"`{model}`", "15 epochs", cell, f"`{LOG}`", SHORT[log[model]["machine"]]])
    header = ["model", "run", "final test acc, seeds 1 / 2 / 3: mean", "record", "machine"]
    return "\n".join([*rows(header, body), "", source_line(TIME, SMALL, TINY)])


def gpu_table(name: str = GPU) -> str:
    """Time to 99.5% on one GPU: from the start of training and from process start."""
    data = record(name)["time"]
    target = f"{data['target']:.1%}"
    body = []
    for key, block in data["pipelines"].items():
        runs = block["runs"]
        body.append([
            PIPELINES[key], percents([r["final_test_acc"] for r in runs]),
            "yes" if block["all_reached"] else "no", f"**{seconds([r['reached_train_s'] for r in runs])}**",
            seconds([r["reached_s"] for r in runs]), seconds([r["epochs"][-1]["train_at_s"] for r in runs]),
            seconds([r["setup_s"] for r in runs]), seconds([r["wall_s"] for r in runs]),
        ])  # fmt: skip
    header = ["pipeline", "final test acc, seeds 1 / 2 / 3", f"all ≥ {target}", f"{target}: training",
              f"{target}: from process start", "whole run: training", "set-up", "process wall"]  # fmt: skip
    return "\n".join([*rows(header, body), "", source_line(name)])


def concurrent_table(name: str = GPU) -> str:
    """Several standard trainings started at once on one GPU (a classroom server's slots)."""
    data = record(name)["time"]
    alone = data["pipelines"]["standard"]["runs"]
    images = 60_000 * record(name)["args"]["epochs"]
    one = images / statistics.fmean(r["wall_s"] for r in alone)
    body = [["1", seconds([statistics.fmean(r["wall_s"] for r in alone)]), f"{one:,.0f}", "1.0x", ""]]
    for entry in data["concurrent"]:
        body.append([
            str(entry["trainings"]), seconds([entry["wall_s"]]), f"{entry['images_per_s']:,.0f}",
            f"{entry['images_per_s'] / one:.1f}x", percents(entry["final_test_acc"]),
        ])  # fmt: skip
    header = [
        "trainings at once",
        "all finished after",
        "images/s together",
        "x one process",
        "final test acc",
    ]
    return "\n".join([*rows(header, body), "", source_line(name)])


def predict_table(name: str = PREDICT) -> str:
    p = record(name)["predict"]
    body = [
        ["warm latency, one PNG file through `Classifier.predict` (median / p90)",
         f"{p['latency_ms_median']:.2f} ms / {p['latency_ms_p90']:.2f} ms"],
        [f"user-style pictures of {p['images']} MNIST test digits, with the preprocessing",
         as_percent(p["user_style_acc"])],
        [f"the same {p['images']} digits straight from MNIST", as_percent(p["mnist_same_digits_acc"])],
        ["the same pictures fed as-is (resized to 28x28 only)", as_percent(p["as_is_acc"])],
    ]  # fmt: skip
    return "\n".join([*rows(["prediction (the shipped model)", "value"], body), "", source_line(name)])


def backprop_table(name: str = BACKPROP) -> str:
    body = [
        [f"{r['case']}", f"{r['median_ms']:.1f}", f"{r['speedup_vs_baseline']:.1f}x"]
        for r in record(name)["results"]
    ]
    return "\n".join([*rows(["case", "median ms", "x baseline"], body), "", source_line(name)])


def press_table(name: str = "press_to_first_step.json") -> str:
    body = [
        [r["case"], f"{r['median_s']:.2f}", f"{r['min_s']:.2f}", f"{r['x_warm']:.1f}x"]
        for r in record(name)["results"]
    ]
    load = record(name)["load_average_before"][0]
    header = ["press Train ->", "median s", "min s", "x warm"]
    return "\n".join([*rows(header, body), "", f"Load average {load:.1f} at the start.", source_line(name)])


def load_words(name: str) -> str:
    """The load a Quick start record ran under, in words: above the core count, other work shared the CPU
    and the times are longer than on an idle machine."""
    fields = record(name)["machine"]
    start, end, cores = fields["load_avg_start"], fields["load_avg_end"], fields["cpu_count"]
    words = (
        f"load average {start[0]:.1f} at the start, {end[0]:.1f} at the end, "
        f"{end[2]:.1f} over its last 15 min"
    )
    if max(start[0], end[0], end[2]) > cores:
        words += f": above its {cores} cores, other work shared the CPU, so an idle machine is faster"
    return words


def quickstart_table() -> str:
    """The Quick start's commands: last lines and wall times here, and the fast preset's on the development
    machine (the time-to-accuracy record's processes, the same command)."""
    quick = record(QUICK)
    xeon = [r["wall_s"] for r in record(TIME)["time"]["pipelines"]["fast"]["runs"]]
    body = []
    for command, runs in quick["commands"].items():
        last = runs[-1]["stdout"] or runs[-1]["stderr"]
        lines = "<br>".join(f"`{line}`" for line in (last if "--preset" in command else last[-1:]))
        other = span(xeon) if "--preset fast" in command else "not recorded"
        body.append([f"`{command}`", lines, span([r["wall_s"] for r in runs]), other])
    header = [
        "command",
        "its last lines",
        f"here: {machine(QUICK, short=True)}",
        f"{machine(TIME, short=True)}",
    ]
    note = (
        f"Wall time of the whole command, {len(next(iter(quick['commands'].values())))} run(s) here "
        f"({load_words(QUICK)}); on the development machine, seeds 1-3 of the same command in `{TIME}`."
    )
    return "\n".join([*rows(header, body), "", note, source_line(QUICK, TIME)])


def install_table() -> str:
    """The Quick start's virtual environment on disk: with pip's default PyTorch, and with the CPU-only build
    installed first (each the environment that ran a Quick start record); a record not yet made is said."""
    body, made, absent = [], [], []
    for name, how in ((QUICK, "pip's default PyTorch (CUDA's libraries included)"),
                      (QUICK_CPU, "PyTorch's CPU-only build first")):  # fmt: skip
        if not has_record(name):
            absent.append(f"{how}: no record yet (`{name}`, the Quick start bench in such an environment)")
            continue
        data, _ = record(name), made.append(name)
        torch = data["machine"]["torch"]
        body.append([how, f"torch {torch}", f"{data['environment_bytes'] / 2**30:.1f} GB", f"`{name}`"])
    if not made:
        raise MissingRecordError(QUICK)
    notes = [f"Not measured: {'; '.join(absent)}.", ""] if absent else []
    return "\n".join([*rows(["install", "PyTorch", ".venv on disk", "record"], body), "", *notes,
                      source_line(*made)])  # fmt: skip


def summary_table() -> str:
    """The README's results: one line per headline figure, with its machine and record."""
    cpu, gpu = record(TIME)["time"]["pipelines"], record(GPU)["time"]["pipelines"]
    fast, standard = cpu["fast"]["runs"], cpu["standard"]["runs"]
    quick = record(QUICK)
    here = quick["commands"]["python -m ml.train --preset fast"]
    warm = {r["case"]: r for r in record(BACKPROP)["results"]}["600 BACKPROP_LOSS cells, warm cache"]
    latency = record(PREDICT)["predict"]["latency_ms_median"]
    body = [
        ["`--preset fast`: 99.5% test accuracy, from process start",
         span([r["reached_s"] for r in fast]), TIME],
        ["`--preset fast`, seed 1: final test accuracy",
         percents([r["final_test_acc"] for r in fast if r["seed"] == 1]), TIME],
        ["`--preset fast`, seed 1: final test accuracy",
         percents([quick["fast_run"]["final_test_acc"]]), QUICK],
        ["`--preset fast`: the whole command", f"{span([r['wall_s'] for r in here])} ({load_words(QUICK)})",
         QUICK],
        ["`--preset fast` on a GPU: 99.5%, training alone",
         span([r["reached_train_s"] for r in gpu["fast"]["runs"]]), GPU],
        ["default model, 15 epochs: final test accuracy, seeds 1-3",
         percents([r["final_test_acc"] for r in standard]), TIME],
        ["default model, 15 epochs: the whole command", span([r["wall_s"] for r in standard], 0), TIME],
        ["default model, 15 epochs on a GPU: training alone",
         span([r["epochs"][-1]["train_at_s"] for r in gpu["standard"]["runs"]]), GPU],
        ["classifying one picture (warm, median)", f"{latency:.2f} ms", PREDICT],
        ["Backprop sheet, 600 cells (warm cache)",
         f"{warm['median_ms']:.1f} ms ({warm['speedup_vs_baseline']:.0f}x the uncached grid)", BACKPROP],
    ]  # fmt: skip
    table = rows(["result", "figure", "machine"], [[a, b, machine(c, short=True)] for a, b, c in body])
    return "\n".join([*table, "", source_line(TIME, PREDICT, BACKPROP, QUICK, GPU)])


def measured(value, form: str) -> str:
    """A figure of a record in ``form`` (e.g. "{:.2f} s"), or "-" where the record holds none (e.g. no warm
    slot in the embedded mode)."""
    return "-" if value is None else form.format(value)


def classroom_rows(r: dict) -> list[list[str]]:
    """The cells of a classroom record (bench/classroom_bench.py's fields), one figure per row."""
    load = r["machine"].get("load_average_before")
    again = r["trainings_interrupted_and_pressed_again"] + r["trainings_dropped_by_restart_and_pressed_again"]
    ms = [measured(r[key], "{:,.0f}") for key in ("p50_ms", "p95_ms", "p99_ms")]
    return [
        ["mode", f"{r['mode']}: {r['web_processes']} web process(es), {r['train_workers']} train worker(s)"],
        ["students; class length", f"{r['students']}; {r['seconds']:g} s"],
        ["requests", f"{r['requests']:,}"],
        ["errors; wrong results", f"{r['errors']}; {r['wrong_results']}"],
        ["foreign events; rows lost", f"{r['foreign_events']}; {r['rows_lost']}"],
        ["trainings pressed; completed; pressed again after a fault",
         f"{r['trainings_pressed']}; {r['trainings_completed']}; {again}"],
        ["latency p50 / p95 / p99", f"{' / '.join(ms)} ms"],
        ["press Train -> first step: fresh process; warm slot",
         f"{measured(r.get('press_to_first_step_cold_s'), '{:.2f} s')}; "
         f"{measured(r.get('press_to_first_step_warm_s'), '{:.2f} s')}"],
        *([["load average at the start", f"{load[0]:.1f}"]] if load else []),
    ]  # fmt: skip


def classroom_table(name: str) -> str:
    """A classroom benchmark record (bench/classroom_bench.py: embedded mode in classroom.json, distributed
    in classroom_redis.json): the class, what went wrong, the latencies, with its machine."""
    return "\n".join([*rows(["the class", "figure"], classroom_rows(record(name))), "", source_line(name)])


TABLES = {
    "time": time_table,
    "speed": speed_table,
    "accuracy": accuracy_table,
    "gpu": gpu_table,
    "concurrent": concurrent_table,
    "predict": predict_table,
    "backprop": backprop_table,
    "press-to-first-step": press_table,
    "quickstart": quickstart_table,
    "summary": summary_table,
    "install": install_table,
    "research-log": research_log,
    "classroom": classroom_table,
}
