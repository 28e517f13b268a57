"""Measure what the server's perimeter defaults rest on (excel_addin.server.options.PERIMETER_SETTINGS).

    python bench/perimeter_bench.py [--out FILE]

1. Request sizes: what each task-pane button sends for a workbook shaped like the template (the sheets its
   ``include`` names, the remote-engine payload of ``excel_addin.testing.remote_book``), and a
   CLASSIFY_PIXELS call with a 28 x 28 range, against the default body limits.
2. A full recalculation: a blank workbook is Set up on a real server (``python -m excel_addin.server`` on
   loopback, default settings) and its cells calling GRADSHEET functions are counted; then that many cell
   calls are sent at once over 6 connections (a browser's HTTP/1.1 limit per server), as one client: how
   many the default rate limits refuse, and how long the server took.
3. Converting a cell function's range argument in xlwings (on the event loop), with xlwings' per-cell
   Pyodide import probe (the baseline) and with the perimeter's ``never_jsnull`` instead, in the same
   process: the median of 3 conversions in milliseconds, and the ratio.

Prints a table and writes the figures to runs/bench/perimeter.json (git ignores runs/) unless ``--out``
names another file: the committed record is ``--out bench/results/perimeter.json``.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx

os.environ.setdefault("XLWINGS_LICENSE_KEY", "noncommercial")

from bench_record import add_out_option, write_record  # noqa: E402

from excel_addin.server.options import PERIMETER_SETTINGS, PerimeterOptions  # noqa: E402
from excel_addin.sheets import layout  # noqa: E402
from excel_addin.testing.live_server import LiveServer  # noqa: E402
from excel_addin.testing.remote_book import apply_actions, book_payload, only_sheets  # noqa: E402
from ml.cli import Parser  # noqa: E402

PROG = "python bench/perimeter_bench.py"

REPEATS = 3  # conversions timed per range size and variant (the median is reported)
BROWSER_CONNECTIONS = 6  # concurrent HTTP/1.1 connections a browser opens to one server
BUTTON_SHEETS = {
    "Set up gradsheet (whole workbook)": None,
    "Train, Stop": [layout.TRAIN_SHEET],
    "What the network sees": [layout.CLASSIFY_SHEET, layout.TRAIN_SHEET],
    "Refresh backprop": [layout.BACKPROP_SHEET, layout.GRAPHS_SHEET],
    "Random test digit, Clear": [layout.CLASSIFY_SHEET],
}
WORKED_EXAMPLE = [[[0.5]], [[0]], [[0.05], [0.1]], [[0.01, 0.99]], [[""]], [[0.35, 0.6]]]  # BACKPROP_LOSS


def call_body(func_name: str, args: list) -> dict:
    """What xlwings' custom-functions-code.js posts for one cell."""
    return {"client": "Office.js", "func_name": func_name, "args": args, "session_id": "bench",
            "caller_address": "[Book1.xlsx]Sheet1!A1", "culture_info_name": "en-US",
            "date_format": "M/d/yyyy", "version": "0.37.8", "runtime": "1.4"}  # fmt: skip


def size_of(payload) -> int:
    return len(json.dumps(payload).encode())


def request_sizes() -> list[dict]:
    """Bytes each button and a 28 x 28 CLASSIFY_PIXELS call send, beside the limit that applies."""
    limits = PerimeterOptions.from_env({})
    whole = book_payload(client="Office.js")
    rows = [
        {"request": f"button: {name}", "bytes": size_of(only_sheets(whole, ",".join(sheets or []))),
         "limit": limits.max_button_body}
        for name, sheets in BUTTON_SHEETS.items()
    ]  # fmt: skip
    grids = {
        "0-255 integers": [[255 * ((r * c) % 2) for c in range(28)] for r in range(28)],
        "full-precision floats": [[(r * 28 + c) / 787.0 for c in range(28)] for r in range(28)],
    }
    for name, grid in grids.items():
        body = call_body("CLASSIFY_PIXELS", [grid, [[True]], [[""]], [[""]]])
        rows.append({"request": f"cell: CLASSIFY_PIXELS 28x28, {name}", "bytes": size_of(body),
                     "limit": limits.max_call_body})  # fmt: skip
    return rows


def recalculation_calls(url: str) -> Counter:
    """The GRADSHEET function calls in a workbook Set up by the server (one HTTP call per call in a cell;
    TRAIN_PROGRESS streams over socket.io instead)."""
    blank = {"client": "Office.js", "version": "0.37.8", "names": [],
             "book": {"name": "Book 1.xlsx", "active_sheet_index": 0, "selection": "A1"},
             "sheets": [{"name": "Sheet1", "values": [[""]], "pictures": [], "tables": [], "charts": [],
                         "shapes": [], "notes": [], "visibility": "Visible", "print_area": None}],
             "args": ["https://school.example/bench/Book 1.xlsx"]}  # fmt: skip
    response = httpx.post(f"{url}/xlwings/custom-scripts-call/setup_gradsheet", json=blank, timeout=120)
    response.raise_for_status()
    book = apply_actions(blank, response.json()["actions"])
    calls = Counter()
    for sheet in book["sheets"]:
        for row in sheet["values"]:
            for value in row:
                if isinstance(value, str):
                    calls.update(re.findall(r"GRADSHEET\.(\w+)\(", value))
    return calls


def example_args(func_name: str) -> list:
    """Arguments for one call of ``func_name`` (what matters here is the number of calls, not the sheet)."""
    examples = {"BACKPROP_LOSS": WORKED_EXAMPLE, "CLASSIFY_PIXELS": [[[0] * 28] * 28],
                "CLASSIFY_IMAGE": [[["no-such.png"]]], "CLASSIFY_PROBS": [[["no-such.png"]]],
                "MODEL_SUMMARY": [[["small"]]]}  # fmt: skip
    return examples.get(func_name, [[[""]]])


async def recalculate(url: str, calls: Counter) -> dict:
    """Send every cell call of one recalculation over BROWSER_CONNECTIONS connections; statuses and time."""
    bodies = [call_body(name, example_args(name)) for name, n in calls.items() if name != "TRAIN_PROGRESS"
              for _ in range(n)]  # fmt: skip
    limits = httpx.Limits(max_connections=BROWSER_CONNECTIONS)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=300) as client:
        start = time.perf_counter()
        responses = await asyncio.gather(
            *(client.post("/xlwings/custom-functions-call", json=body) for body in bodies)
        )
        seconds = time.perf_counter() - start
    statuses = Counter(response.status_code for response in responses)
    return {"calls": len(bodies), "seconds": seconds, "statuses": dict(statuses)}


def conversion_ms(sides: tuple[int, ...]) -> list[dict]:
    """xlwings' conversion of an N x N range argument, with its Pyodide probe and without, in ms."""
    importlib.import_module("excel_addin.server.asgi")  # configures xlwings Server before it is imported
    functions = sys.modules["custom_functions"]  # gradsheet's, under the name xlwings Server imports
    user = importlib.import_module("xlwings_server.models").User(id="bench", name="bench")
    import xlwings.server
    import xlwings.utils

    from excel_addin.server.perimeter.conversion import never_jsnull

    def convert(side: int) -> float:
        """The median of REPEATS conversions, in ms."""
        data = call_body("CLASSIFY_PIXELS", [[[0] * side] * side])
        seconds = []
        for _ in range(REPEATS):
            start = time.perf_counter()
            asyncio.run(xlwings.server.custom_functions_call(data, functions, user, typehint_to_value={}))
            seconds.append(time.perf_counter() - start)
        return 1e3 * statistics.median(seconds)

    convert(28)  # warm up (imports, first calls)
    rows = []
    for side in sides:
        xlwings.utils.is_jsnull = probe
        with_probe = convert(side)
        xlwings.utils.is_jsnull = never_jsnull
        without = convert(side)
        rows.append({"cells": side * side, "with_probe_ms": with_probe, "without_probe_ms": without,
                     "speedup": with_probe / without})  # fmt: skip
    return rows


def probe(value) -> bool:
    """xlwings 0.37.8's ``is_jsnull`` as written (the baseline): an import attempt per call."""
    try:
        from pyodide.ffi import JsNull
    except ImportError:
        return False
    return isinstance(value, JsNull)


def report(sizes: list[dict], recalc: dict, conversion: list[dict]) -> None:
    print(f"{'request':<58}{'bytes':>10}{'limit':>10}{'x margin':>10}")
    for row in sizes:
        print(f"{row['request']:<58}{row['bytes']:>10}{row['limit']:>10}{row['limit'] / row['bytes']:>10.1f}")
    rates = PERIMETER_SETTINGS["call_rates"].default
    print(f"\nfull recalculation: {recalc['calls']} cell calls ({recalc['per_function']}), "
          f"statuses {recalc['statuses']} under '{rates}', {recalc['seconds']:.1f} s over "
          f"{BROWSER_CONNECTIONS} connections")  # fmt: skip
    print(f"\n{'range cells':>12}{'with probe ms':>16}{'without ms':>12}{'x faster':>10}")
    for row in conversion:
        print(f"{row['cells']:>12}{row['with_probe_ms']:>16.1f}{row['without_probe_ms']:>12.1f}"
              f"{row['speedup']:>10.1f}")  # fmt: skip


def cpu_model() -> str:
    """The processor's name (/proc/cpuinfo's "model name" where there is one, else platform's)."""
    cpuinfo = Path("/proc/cpuinfo")
    names = re.findall(r"model name\s*:\s*(.+)", cpuinfo.read_text()) if cpuinfo.exists() else []
    return names[0].strip() if names else platform.processor()


def build_parser() -> Parser:
    parser = Parser(prog=PROG, description=__doc__.splitlines()[0], renamed={"--json": "--out FILE"})
    add_out_option(parser, "perimeter.json")
    parser.add_argument("--sides", type=int, nargs="+", default=[28, 100, 200], help="range sizes (N x N)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    sizes = request_sizes()
    with tempfile.TemporaryDirectory(prefix="gradsheet-perimeter-bench-") as folder:
        server = LiveServer(Path(folder), "--http").wait_ready()
        try:
            calls = recalculation_calls(server.url)
            recalc = {**asyncio.run(recalculate(server.url, calls)), "per_function": dict(calls)}
        finally:
            server.stop()
    conversion = conversion_ms(tuple(args.sides))
    report(sizes, recalc, conversion)
    figures = {"benchmark": "server perimeter defaults", "python": platform.python_version(),
               "machine": platform.machine(), "processor": cpu_model(), "cpus": os.cpu_count(),
               "load_average": os.getloadavg(),
               "request_sizes": sizes, "recalculation": recalc, "conversion": conversion}  # fmt: skip
    write_record(args.out, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
