"""The add-in server over HTTP (FastAPI's TestClient, the real app): configuration, manifest, function
metadata, every cell function called as Excel calls it (equal to ml/ and to the classic UDFs, same
messages), the task pane's page and files, and the same-origin guard."""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from server_app import ROOT, call_body
from starlette.websockets import WebSocketDisconnect

from excel_addin import cells, status_line
from excel_addin.classic import udfs
from excel_addin.server import functions, messages, scripts
from excel_addin.server.asgi import MANIFEST_ID
from excel_addin.server.auth import LOCAL_ID
from excel_addin.server.options import options
from ml import backprop
from ml.data import load_mnist
from ml.predict import load_classifier, shipped_model_path
from ml.user_pictures import user_style_png

NS = {
    "o": "http://schemas.microsoft.com/office/appforoffice/1.1",
    "bt": "http://schemas.microsoft.com/office/officeappbasictypes/1.0",
}
CELL_NAMES = [fn.__name__ for fn in cells.CELL_FUNCTIONS]


def call(client, func_name: str, *args) -> list[list]:
    """The result of a custom function as Excel gets it (each argument given as Excel sends it)."""
    response = client.post(
        "/xlwings/custom-functions-call", json=call_body(func_name, [excel(a) for a in args])
    )
    assert response.status_code == 200, response.text
    return response.json()["result"]


def excel(value) -> list[list]:
    """An argument as Office.js sends it: a 2-D array (a scalar is [[x]]); an empty cell is ""."""
    if isinstance(value, list):
        rows = value if value and isinstance(value[0], list) else [value]
    else:
        rows = [[value]]
    return [["" if v is None else v for v in row] for row in rows]


@pytest.mark.slow
def test_configured_in_code_in_a_clean_process(tmp_path):
    """Only the licence key from outside; a hostile current folder and environment change nothing, and
    importing the package alone starts nothing."""
    (tmp_path / ".env").write_text('XLWINGS_FUNCTIONS_NAMESPACE="WRONG"\n')
    (tmp_path / "pyproject.toml").write_text('[tool.xlwings_server]\nfunctions_namespace = "WRONG"\n')
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "taskpane.html").write_text("not ours")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "XLWINGS_LICENSE_KEY": "noncommercial",
    }
    env.update(
        XLWINGS_FUNCTIONS_NAMESPACE="WRONG_TOO", XLWINGS_ENVIRONMENT="dev", XLWINGS_ENABLE_EXAMPLES="true"
    )
    code = (
        "import sys, excel_addin.server as s\n"
        "assert 'xlwings_server' not in sys.modules\n"
        "app, st = s.app, s.settings\n"
        "print(type(app).__name__, st.functions_namespace, st.environment, st.enable_socketio,"
        " st.enable_examples, st.cdn_officejs, st.manifest_id_prod, st.project_dir.name)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [
        "ForwardedHeaders",  # the perimeter's outermost layer
        "GRADSHEET",
        "prod",
        "True",
        "False",
        "False",
        MANIFEST_ID,
        "project",
    ]


@pytest.mark.slow
def test_manifest(client):
    # asked over https (X-Forwarded-Proto from a client that is not a configured proxy would be dropped)
    response = client.get("https://testserver/manifest.xml")
    assert response.status_code == 200
    root = ET.fromstring(response.content)  # well-formed
    assert root.find("o:Id", NS).text == MANIFEST_ID
    defined = {element.get("id") for element in root.iter() if element.tag.startswith(f"{{{NS['bt']}}}")}
    used = {element.get("resid") for element in root.iter() if element.get("resid")}
    assert used and used <= defined, used - defined  # every resource id resolves
    strings = {s.get("id"): s.get("DefaultValue") for s in root.iter(f"{{{NS['bt']}}}String")}
    assert strings["Functions.Namespace"] == "GRADSHEET"
    urls = re.findall(r'DefaultValue="(https?://[^"]+)"', response.text)
    assert urls and {re.match(r"https://[^/]+", u)[0] for u in urls} == {"https://testserver"}
    for url in urls:  # each one is served here
        assert client.get(url.removeprefix("https://testserver")).status_code == 200, url
    download = client.get("/manifest/download")
    assert "gradsheet-prod.xml" in download.headers["content-disposition"]


def test_functions_metadata(client):
    meta = {f["id"]: f for f in client.get("/xlwings/custom-functions-meta.json").json()["functions"]}
    assert set(meta) == {*CELL_NAMES, "TRAIN_PROGRESS"}
    for fn in cells.CELL_FUNCTIONS:
        entry = meta[fn.__name__]
        assert entry["name"] == fn.__name__  # Excel prepends the namespace: =GRADSHEET.BACKPROP_LOSS
        assert entry["description"] == fn.__doc__ and "\n" not in fn.__doc__
        assert entry["options"] == {"requiresAddress": True, "requiresParameterAddresses": True}
        parameters = [(p["name"], p["description"], p.get("optional", False)) for p in entry["parameters"]]
        expected = [
            (p.name, fn.cell_arguments[p.name].doc, p.default is not inspect.Parameter.empty)
            for p in cells.excel_parameters(fn)
        ]
        assert parameters == expected
    progress = meta["TRAIN_PROGRESS"]
    assert progress["options"] == {"stream": True}
    parameters = [(p["name"], p.get("optional")) for p in progress["parameters"]]
    assert parameters == [("workbook", True), ("part", True)]
    assert "GRADSHEET_ID" in progress["parameters"][0]["description"]
    js = client.get("/xlwings/custom-functions-code.js").text
    for name in meta:
        assert f'CustomFunctions.associate("{name}", {name});' in js
    assert 'funcName: "TRAIN_PROGRESS",\n        isStreaming: true' in js


def test_every_cell_function_is_listed_once():
    """CELL_FUNCTIONS, which both faces adapt, holds every function written with @cell_function."""
    decorated = {name for name, fn in vars(cells).items() if hasattr(fn, "cell_arguments")}
    assert sorted(decorated) == sorted(cells.function_names())
    assert len(set(cells.function_names())) == len(cells.CELL_FUNCTIONS)


def test_both_faces_adapt_the_same_functions(client):
    """Classic UDF and custom function: the shared function's name, help and arguments (the classic one
    adds xlwings' caller where paths are read, the custom function the signed-in user, which xlwings
    Server passes and Excel never sees)."""
    served = client.get("/xlwings/custom-functions-meta.json").json()["functions"]
    meta = {f["name"]: f for f in served}
    for fn in cells.CELL_FUNCTIONS:
        classic, office = getattr(udfs, fn.__name__), getattr(functions, fn.__name__)
        names = [p.name for p in cells.excel_parameters(fn)]
        assert [p for p in inspect.signature(office).parameters] == names + ["user"]
        assert [p["name"] for p in meta[fn.__name__]["parameters"]] == names
        caller = ["caller"] if cells.reads_files(fn) else []
        assert [p for p in inspect.signature(classic).parameters] == names + caller
        assert classic.__doc__ == office.__doc__ == fn.__doc__
        assert office.__xlfunc__["ret"]["doc"] == fn.__doc__
        assert {a["name"]: a["doc"] for a in office.__xlfunc__["args"]} == {
            name: arg.doc for name, arg in fn.cell_arguments.items()
        }


def test_a_cell_function_must_document_every_argument():
    with pytest.raises(TypeError, match="documented"):
        cells.cell_function(x="the x")(lambda x, y: x)


def test_backprop_functions_equal_the_engine_and_the_classic_udfs(client):
    inputs, targets = [[0.05], [0.1]], [0.01, 0.99]
    weights, biases = [[0.15, 0.2, 0.25, 0.3], [0.4, 0.45, 0.5, 0.55]], [0.35, 0.6]
    network = cells.network_from_cells(inputs, targets, weights, biases, "sigmoid")
    result = call(client, "BACKPROP_LOSS", 0.5, 10, inputs, targets, weights, biases, "sigmoid")
    assert result == [[backprop.loss_at(0.5, 10, network)]]
    assert result == [[udfs.BACKPROP_LOSS(0.5, 10, inputs, targets, weights, biases, "sigmoid")]]
    assert call(client, "BACKPROP_LOSS", 0.5, 0, inputs, targets, weights, biases) == [
        [pytest.approx(0.298371109)]
    ]
    assert call(client, "BACKPROP_LOSS", 2.0, 100) == [
        [backprop.loss_curve(2.0, 100)[100]]
    ]  # optional ones omitted
    curve = call(client, "BACKPROP_CURVE", 0.8, 20, None, None, None, None, "softmax")
    assert curve == udfs.BACKPROP_CURVE(0.8, 20, output="softmax")
    assert [row[0] for row in curve] == list(backprop.loss_curve(0.8, 20, backprop.Network(output="softmax")))
    table = call(client, "BACKPROP_TABLE", 0.5, 5)
    assert table == udfs.BACKPROP_TABLE(0.5, 5) and table[0] == list(backprop.COLUMNS) and len(table) == 7


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """Five MNIST test digits: as 28 x 28 grids, and as user-style picture files."""
    data = load_mnist()
    folder = tmp_path_factory.mktemp("digits")
    picked = [int(i) for i in np.random.default_rng(7).choice(len(data.test_x), 5, replace=False)]
    grids = [data.test_x[i].numpy().astype(int) for i in picked]
    files = [user_style_png(g.astype(np.uint8), folder / f"{k}.png", style=k) for k, g in enumerate(grids)]
    return [(g, f, int(data.test_y[i])) for g, f, i in zip(grids, files, picked, strict=True)]


@pytest.mark.slow
def test_classify_functions_equal_ml_predict_and_the_classic_udfs(client, digits):
    # the same model on both sides, whatever runs/ holds where the tests run
    model = str(shipped_model_path())
    classifier = load_classifier(model)
    for grid, path, _ in digits:
        pixels = [[None if v == 0 else int(v) for v in row] for row in grid]  # paper left empty
        expected = classifier.predict_array(cells.pixel_grid(pixels), source="pixels", bright_ink=True)
        assert (
            call(client, "CLASSIFY_PIXELS", pixels, False, model)
            == [[expected.digit]]
            == [[udfs.CLASSIFY_PIXELS(pixels, False, model)]]
        )
        probs = call(client, "CLASSIFY_PIXELS", pixels, True, model)
        assert probs == udfs.CLASSIFY_PIXELS(pixels, True, model) and probs[0] == pytest.approx(
            expected.probs, abs=1e-7
        )
        from_file = classifier.predict(path)
        assert (
            call(client, "CLASSIFY_IMAGE", str(path), model)
            == [[from_file.digit]]
            == [[udfs.CLASSIFY_IMAGE(str(path), model)]]
        )
        assert (
            call(client, "CLASSIFY_PROBS", str(path), model)
            == udfs.CLASSIFY_PROBS(str(path), model)
            == [from_file.probs]
        )
    right = sum(call(client, "CLASSIFY_PIXELS", grid.tolist()) == [[label]] for grid, _, label in digits)
    assert right >= 4


BAD_CALLS = [
    ("BACKPROP_LOSS", (-1, 3)),
    ("BACKPROP_LOSS", ("abc", 3)),
    ("BACKPROP_LOSS", (None, 3)),
    ("BACKPROP_LOSS", (True, 3)),
    ("BACKPROP_LOSS", (0.5, 2.5)),
    ("BACKPROP_LOSS", (0.5, 3, None, None, [1, 2, 3])),
    ("BACKPROP_LOSS", (0.5, 3, None, None, [1, 2, 3, 4, 5, 6, 7, None])),
    ("BACKPROP_LOSS", (0.5, 3, None, None, None, None, "tanh")),
    ("BACKPROP_CURVE", (0.5, -1)),
    ("BACKPROP_TABLE", (0, 10)),
    ("CLASSIFY_IMAGE", ("/no/such/digit.png",)),
    ("CLASSIFY_IMAGE", (None,)),
    ("CLASSIFY_PROBS", ("/no/such/digit.png",)),
    ("CLASSIFY_IMAGE", (str(ROOT / "README.md"),)),
    ("CLASSIFY_PIXELS", ([[0] * 28] * 27,)),
    ("CLASSIFY_PIXELS", ([[None] * 28] * 28,)),
    ("CLASSIFY_PIXELS", ([[0] * 27 + ["ink"]] * 28,)),
    ("CLASSIFY_PIXELS", (7,)),
]


@pytest.mark.parametrize(("name", "args"), BAD_CALLS)
def test_bad_input_gives_the_classic_udfs_message(client, name, args):
    classic = getattr(udfs, name)(*args)
    expected = classic if isinstance(classic, list) else [[classic]]
    assert expected[0][0].startswith(cells.ERROR_PREFIX)
    # the same message, but no path of the server's machine (relative paths start in the user's folder)
    assert call(client, name, *args) == messages.table_for_user(expected, options().runs / LOCAL_ID)


def test_unknown_function_and_crash_are_plain_500s(client):
    response = client.post("/xlwings/custom-functions-call", json=call_body("NOPE", []))
    assert (response.status_code, response.text) == (500, "An error occurred.")


def test_scripts_module_exposes_only_scripts(client):
    public = {name: value for name, value in vars(scripts).items() if not name.startswith("_")}
    public.pop("annotations")  # from __future__
    classify = {"random_test_digit", "clear_grid", "what_the_network_sees"}
    assert set(public) == {"train", "stop", "refresh_backprop", "setup_gradsheet", *classify}
    assert all(hasattr(value, "__xlscript__") for value in public.values())
    meta = {m["function_name"]: m for m in client.get("/xlwings/custom-scripts-meta.json").json()}
    assert {name: m["name"] for name, m in meta.items()} == {
        "train": "Train",
        "stop": "Stop",
        "refresh_backprop": "Refresh backprop",
        "setup_gradsheet": "Set up gradsheet",
        "random_test_digit": "Random test digit",
        "clear_grid": "Clear",
        "what_the_network_sees": "What the network sees",
    }
    assert meta["train"]["include"] == meta["stop"]["include"] == "Train"
    assert meta["refresh_backprop"]["include"] == "Backprop,Graphs"
    assert meta["random_test_digit"]["include"] == meta["clear_grid"]["include"] == "Classify"
    assert meta["what_the_network_sees"]["include"] == "Classify,Train"


def test_task_pane_is_gradsheets_own_and_local(client):
    response = client.get("/taskpane.html")
    assert response.status_code == 200
    html = response.text
    meta = {m["function_name"]: m["name"] for m in client.get("/xlwings/custom-scripts-meta.json").json()}
    buttons = dict(re.findall(r'xw-click="(\w+)"[^>]*>\s*([^<]+?)\s*</button>', html))
    assert buttons == meta  # a button per script, labelled with the script's name
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert "/static/js/gradsheet.js" in urls and "/static/css/gradsheet.css" in urls
    assert all(url.startswith("/") for url in urls), urls  # nothing from another site
    for url in urls:
        assert client.get(url).status_code == 200, url
    config = json.loads(
        re.search(r'<script id="gradsheet-config" type="application/json">(.*?)</script>', html)[1]
    )
    assert config["status_url"] == "/gradsheet/status" and config["id_name"] == "GRADSHEET_ID"
    assert "=GRADSHEET.TRAIN_PROGRESS(<wbr>GRADSHEET_ID)" in html


def test_status_route(client):
    state = client.get("/gradsheet/status").json()
    assert set(state) == {"status", "progress", "queue", "epochs", "user", "teacher", "server"}
    assert set(state["server"]) == {"running", "queued", "slots"}
    assert (state["user"], state["teacher"], state["status"]) == (
        "Local user",
        False,
        "",
    )  # no sign-in: one user
    assert client.get("/gradsheet/status", params={"workbook": "never-trained"}).json()["status"] == (
        status_line.NO_RUN_TEXT
    )
    assert client.get("/gradsheet/status", params={"workbook": "no such/id"}).status_code == 400


def test_security_headers(client):
    headers = client.get("/taskpane.html").headers
    assert headers["x-content-type-options"] == "nosniff"
    assert "x-frame-options" not in headers  # Excel on the web shows the pane in a frame


def test_cross_site_requests_are_refused(client):
    form = {"bookData": json.dumps({"client": "Office.js", "version": "0", "book": {}, "sheets": []})}
    url = "/xlwings/custom-scripts-call/stop"
    for origin in ("https://evil.example", "null", "http://testserver.evil.example"):
        response = client.post(url, data=form, headers={"Origin": origin})
        assert (response.status_code, response.json()) == (403, {"detail": "Cross-origin request refused"})
    assert client.get("/gradsheet/status", headers={"Origin": "https://evil.example"}).status_code == 403
    # The task pane itself (same origin) and non-browser clients (no Origin) pass
    assert client.get("/gradsheet/status", headers={"Origin": "http://testserver"}).status_code == 200
    assert client.get("/gradsheet/status").status_code == 200
    # a client-sent X-Forwarded-Host proves nothing (a proxy's name is configured: test_server_perimeter.py)
    headers = {"Origin": "https://school.example", "X-Forwarded-Host": "school.example"}
    assert client.get("/gradsheet/status", headers=headers).status_code == 403


def test_cross_site_websocket_is_refused(client):
    path = "/socket.io/?EIO=4&transport=websocket"
    with pytest.raises(WebSocketDisconnect):
        with client.websocket_connect(
            path, headers={"upgrade": "websocket", "origin": "https://evil.example"}
        ) as ws:
            ws.receive_text()
    with client.websocket_connect(
        path, headers={"upgrade": "websocket", "origin": "http://testserver"}
    ) as ws:
        assert ws.receive_text().startswith("0{")  # engine.io's open packet: accepted
