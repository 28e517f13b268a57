"""``python -m excel_addin.server`` as a user starts it: over https with a certificate named as mkcert
names it (a self-signed one from openssl stands in: mkcert's needs its CA installed), and clear messages
when the certificate or the licence key is missing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import httpx
import pytest
import xlwings as xw
from server_app import ROOT, LiveServer, call_body

from excel_addin.server.cli import CERT_FILE, KEY_FILE
from excel_addin.testing.class_codes import signed_in


def run_cli(folder, *args, env_drop=()):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XLWINGS_LICENSE_KEY": "noncommercial"}
    for name in env_drop:
        env.pop(name, None)
    command = [sys.executable, "-m", "excel_addin.server", *args]
    return subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")
def test_https_with_mkcert_named_files(tmp_path):
    certs = tmp_path / "certs"
    certs.mkdir()
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(certs / KEY_FILE), "-out", str(certs / CERT_FILE)],
        check=True, capture_output=True,
    )  # fmt: skip
    server = LiveServer(tmp_path, "--certs", str(certs), scheme="https").wait_ready()
    try:
        manifest = httpx.get(server.url + "/manifest.xml", verify=False, timeout=10).text
        assert f'<bt:Url id="Taskpane.Url" DefaultValue="{server.url}/taskpane.html" />' in manifest
        body = call_body(
            "BACKPROP_LOSS", [[[0.5]], [[0]], [[0.05], [0.1]], [[0.01, 0.99]], [[""]], [[0.35, 0.6]]]
        )
        response = httpx.post(
            server.url + "/xlwings/custom-functions-call", json=body, verify=False, timeout=30
        )
        assert response.json()["result"][0][0] == pytest.approx(0.298371109, abs=1e-9)  # the worked example
        assert response.headers["strict-transport-security"].startswith("max-age=")
        assert xw.__version__ in httpx.get(server.url + "/taskpane.html", verify=False, timeout=10).text
    finally:
        server.stop()
    assert f"Manifest for Excel: https://localhost:{server.port}/manifest.xml" in server.output()


def test_missing_certificate_is_named_with_how_to_make_one(tmp_path):
    out = run_cli(tmp_path, "--certs", str(tmp_path / "nowhere"))
    assert out.returncode != 0
    assert (
        f"no certificate: {tmp_path / 'nowhere' / CERT_FILE} and {tmp_path / 'nowhere' / KEY_FILE} not found"
        in out.stderr
    )
    for how in (
        "winget install FiloSottile.mkcert",
        "brew install mkcert",
        "apt install mkcert",
        "mkcert -install",
    ):
        assert how in out.stderr


def test_missing_licence_key_says_what_to_set(tmp_path):
    out = run_cli(tmp_path, "--http", env_drop=("XLWINGS_LICENSE_KEY",))
    assert out.returncode != 0 and "set XLWINGS_LICENSE_KEY=noncommercial" in out.stderr


def test_help_lists_the_options(tmp_path):
    out = run_cli(tmp_path, "--help")
    for option in (
        "--host",
        "--port",
        "--certs",
        "--http",
        "--runs",
        "--shared",
        "--max-trainings",
        "--auth",
        "--class-file",
        "--hostname",
    ):
        assert option in out.stdout


@pytest.mark.slow
def test_a_shared_server_keeps_paths_inside_its_runs_folder(classroom):
    server, codes = classroom  # the test run's classroom server (conftest.py): users sign in (class codes)

    def classify(*args):
        body = call_body("CLASSIFY_IMAGE", [[[a]] for a in args])
        url = server.url + "/xlwings/custom-functions-call"
        return httpx.post(url, json=body, headers=signed_in(codes["alice"]), timeout=60).json()["result"]

    refused = "#VALUE! image path must be a path inside your folder on the server, got "
    # an absolute path is refused, and the message shows no path of the server
    assert classify(str(ROOT / "examples" / "digits" / "3.png")) == [[f"{refused}'<server path>'"]]
    assert classify("../../etc/hostname") == [[f"{refused}'../../etc/hostname'"]]
    inside = server.folder / "runs" / "alice" / "3.png"  # Alice's own folder
    inside.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "examples" / "digits" / "3.png", inside)
    assert classify("3.png") == [[3]]  # relative to the user's own folder
    model = classify("3.png", "/elsewhere/model.pt")[0][0]
    assert model == f"{refused.replace('image path', 'model_path')}'<server path>'"
    assert "Manifest for Excel: http://localhost:" in server.output()


def test_trainings_at_once_by_default_several_per_gpu_one_on_a_cpu():
    from excel_addin.server.runs.local import default_slots
    from excel_addin.slots import TRAININGS_PER_GPU

    assert TRAININGS_PER_GPU > 1  # several trainings share a GPU: measured 2.4x the work per second at 4
    assert [slot.gpu for slot in default_slots(None, 0)] == [None]  # a CPU machine: one at a time
    assert [slot.gpu for slot in default_slots(None, 1)] == [None] * TRAININGS_PER_GPU
    assert [slot.gpu for slot in default_slots(None, 2)] == [0, 1] * TRAININGS_PER_GPU  # spread over both
    assert [slot.gpu for slot in default_slots(3, 2)] == [0, 1, 0]  # --max-trainings wins
    assert len(default_slots(1, 1)) == 1
