import json
import os
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.flows.helpers import invoke


def test_help_does_not_import_heavy_libraries():
    code = (
        "import sys; from flows.cli import app\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'mlflow', 'prefect', 'great_expectations', 'evidently') if m in sys.modules]\n"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    help_out = subprocess.run(
        [sys.executable, "-m", "flows", "--help"], capture_output=True, text=True
    )
    assert help_out.returncode == 0 and "retrain" in help_out.stdout


def test_config_schema_is_json():
    code, schema, _ = invoke("config", "schema")
    assert code == 0 and "window" in schema["properties"]


def test_config_check_reports_unknown_key(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(
        "name: x\ndata: {path: a.csv, timestamp: t, target: y}\nwindow: {lookback: 4, horizon: 2}\nepochs: 3\n"
    )
    code, out, err = invoke("config", "check", str(p), "--json")
    assert code == 2 and "unknown key 'epochs'" in out["error"]
    assert "unknown key 'epochs'" in err


@pytest.mark.slow
def test_ui_serves_the_embedded_store(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "flows",
            "ui",
            "--port",
            str(port),
            "--state-dir",
            str(tmp_path / ".seqops"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search?max_results=5",
                    timeout=2,
                ) as r:
                    assert r.status == 200 and "experiments" in json.loads(r.read())
                    break
            except OSError:
                time.sleep(1)
        else:
            pytest.fail("seqops ui did not answer")
        assert (tmp_path / ".seqops" / "mlflow.db").exists()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
