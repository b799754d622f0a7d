"""End-to-end retrains on tiny data: real MLflow store, real Prefect flow runs, real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from tests.conftest import REPO, tiny_config, write_yaml
from tests.flows.helpers import invoke, registered_models

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]

PASSING_GATE = {
    "seasonal_naive_margin": 0.0,
    "champion_tolerance": 0.5,
    "promote_first_to_champion": True,
}
TRAIN = {
    "epochs": 30,
    "learning_rate": 0.02,
    "early_stopping": {"patience": 8},
}  # beats seasonal naive


def _client(state_dir):
    from mlflow import MlflowClient

    uri = f"sqlite:///{(state_dir / 'mlflow.db').resolve()}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, tiny_panel_frame):
    """One real ``seqops retrain --json`` process: its own interpreter and ephemeral Prefect server."""
    tmp = tmp_path_factory.mktemp("e2e")
    data = tmp / "panel.parquet"
    tiny_panel_frame.to_parquet(data, index=False)
    cfg = write_yaml(
        tmp / "job.yaml",
        tiny_config(tmp, data, gate=PASSING_GATE, training=TRAIN, model={"units": 16}),
    )
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API", "MLFLOW_TRACKING"))
    }
    env["PREFECT_HOME"] = str(tmp / "prefect-home")
    proc = subprocess.run(
        [sys.executable, "-m", "flows", "retrain", "--config", str(cfg), "--json"],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return tmp, cfg, proc


def test_json_stdout_is_exactly_one_object(first_run):
    _, _, proc = first_run
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stdout[-2000:] + proc.stderr[-3000:]
    out = json.loads(lines[0])
    assert proc.returncode == out["exit_code"] in (0, 1), (
        f"{out.get('status')}: {out.get('error')}\n{proc.stderr[-6000:]}"
    )
    assert {"run_id", "model", "version", "metrics", "gate", "reports", "drift", "timings"} <= set(
        out
    )
    assert set(out["metrics"]) >= {"model", "naive", "seasonal_naive"}
    assert "epoch 1/30" in proc.stderr  # progress goes to the terminal (stderr)


def test_registered_version_carries_evidence(first_run):
    tmp, _, proc = first_run
    out = json.loads(proc.stdout)
    client = _client(tmp / ".seqops")
    mv = client.get_model_version("tiny", out["version"])
    tags = mv.tags
    assert tags["seqops.validation"] == "passed"
    assert tags["seqops.gate"] == ("passed" if out["exit_code"] == 0 else "rejected")
    assert float(tags["seqops.eval.model.mase"]) == pytest.approx(
        out["metrics"]["model"]["mase"], rel=1e-4
    )
    assert (
        tags["seqops.data_digest"] == out["data_digest"]
        and tags["seqops.config_hash"] == out["config_hash"]
    )
    assert tags["seqops.drift"] in ("detected", "none")
    assert "Gate:" in mv.description and "v?" not in mv.description
    run = client.get_run(out["run_id"])
    assert run.data.metrics["test_naive_mase"] == pytest.approx(out["metrics"]["naive"]["mase"])
    assert run.inputs.dataset_inputs and run.inputs.dataset_inputs[0].dataset.digest
    arts = {a.path for a in client.list_artifacts(out["run_id"])}
    assert {"plots", "reports", "config", "reference"} <= arts
    plots = {a.path for a in client.list_artifacts(out["run_id"], "plots")}
    assert plots == {"plots/forecast_vs_actual.png", "plots/error_by_horizon.png"}
    if out["exit_code"] == 0:
        assert (
            str(client.get_model_version_by_alias("tiny", "challenger").version) == out["version"]
        )
        assert (
            str(client.get_model_version_by_alias("tiny", "champion").version) == out["version"]
        )  # first version
    else:
        assert out["gate"]["reasons"]


def test_logged_model_takes_raw_windows_in_original_units(first_run, tiny_panel_frame):
    import mlflow

    tmp, cfg, proc = first_run
    out = json.loads(proc.stdout)
    from components.config import load_config
    from flows.steps import prepare

    job = load_config(cfg)
    prep = prepare(job, tiny_panel_frame)
    x, y = prep.test.materialize()
    store = f"sqlite:///{(tmp / '.seqops' / 'mlflow.db').resolve()}"
    mlflow.set_tracking_uri(store)
    mlflow.set_registry_uri(store)
    model = mlflow.pyfunc.load_model(f"models:/tiny/{out['version']}")
    pred = model.predict(x)
    assert pred.shape == y.shape
    # the same number the run reported: the logged model *is* the evaluated model, in original units
    assert np.abs(pred - y).mean() == pytest.approx(out["metrics"]["model"]["mae"], rel=1e-3)
    with pytest.raises(Exception, match="shape|Shape|dimension"):
        model.predict(x[:, :5, :])


def test_second_run_is_compared_with_the_champion(first_run):
    tmp, cfg, proc = first_run
    first = json.loads(proc.stdout)
    assert first["exit_code"] == 0, first["gate"]  # a trained LSTM beats seasonal naive here
    code, out, err = invoke("retrain", "--config", str(cfg), "--json")
    assert code == out["exit_code"] in (0, 1), err[-3000:]
    assert out["version"] == "2"
    vs = [c for c in out["gate"]["checks"] if c["check"] == "vs_champion"]
    assert vs and vs[0]["champion_version"] == first["version"]
    assert out["metrics"]["champion"]["mase"] == pytest.approx(vs[0]["champion"])
    assert out["drift"]["reference_label"] == f"champion v{first['version']} training data"
    client = _client(tmp / ".seqops")
    assert (
        str(client.get_model_version_by_alias("tiny", "champion").version) == first["version"]
    )  # never moved here


def test_gate_rejection_exits_1_and_records_reasons(tmp_path, tiny_data):
    cfg = write_yaml(
        tmp_path / "job.yaml",
        tiny_config(tmp_path, tiny_data, gate={"seasonal_naive_margin": 0.99}),
    )
    code, out, _ = invoke("retrain", "--config", str(cfg), "--json")
    assert code == 1 and out["status"] == "rejected" and out["version"] == "1"
    assert "does not beat seasonal naive" in out["gate"]["reasons"][0]
    client = _client(tmp_path / ".seqops")
    mv = client.get_model_version("tiny", "1")
    assert (
        mv.tags["seqops.gate"] == "rejected" and "seasonal naive" in mv.tags["seqops.gate.reasons"]
    )
    assert client.get_registered_model("tiny").aliases == {}


def test_divergence_exits_3_and_registers_nothing(tmp_path, tiny_data):
    cfg = write_yaml(
        tmp_path / "job.yaml", tiny_config(tmp_path, tiny_data, training={"learning_rate": 1e30})
    )
    code, out, err = invoke("retrain", "--config", str(cfg), "--json")
    assert code == 3 and out["status"] == "training_diverged", err[-2000:]
    assert "diverged" in out["error"]
    assert registered_models(tmp_path / ".seqops") == []


def test_shipped_configs_check_ok():
    for path in sorted((REPO / "configs").glob("*.yaml")):
        code, out, _ = invoke("config", "check", str(path), "--json")
        assert code == 0 and out["status"] == "ok", path


def test_synth_command_writes_a_panel(tmp_path):
    out_path = tmp_path / "p.parquet"
    code, out, _ = invoke(
        "data",
        "synth",
        "--out",
        str(out_path),
        "--series",
        "3",
        "--length",
        "50",
        "--drift-start",
        "25",
        "--json",
    )
    assert code == 0 and out["rows"] == 150
    frame = pd.read_parquet(out_path)
    assert list(frame.columns) == ["series_id", "timestamp", "value", "temperature"]
