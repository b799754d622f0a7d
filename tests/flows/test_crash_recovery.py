"""Failure handling of unattended retrains: a worker killed mid-run, a data contract that fails."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO, tiny_config, write_yaml
from tests.flows.helpers import invoke

pytestmark = pytest.mark.slow


def test_a_retrain_killed_mid_run_leaves_nothing_registered_and_is_reaped(tmp_path, tiny_data):
    from mlflow import MlflowClient

    cfg = write_yaml(tmp_path / "job.yaml", tiny_config(tmp_path, tiny_data))
    env = {**os.environ, "PYTHONPATH": str(REPO), "SEQOPS_CRASH_AT": "during_log_run"}
    env.pop("MLFLOW_TRACKING_URI", None)
    log = tmp_path / "killed.log"
    # its own process group: the temporary Prefect server it started outlives a SIGKILL, and is
    # cleaned up here (with pipes, the orphan would also hold them open)
    proc = subprocess.Popen([sys.executable, "-m", "flows", "retrain", "--config", str(cfg), "--json"],
                            env=env, cwd=tmp_path, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            start_new_session=True)  # fmt: skip
    try:
        code = proc.wait(timeout=600)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert code == -9, log.read_text()[-3000:]  # SIGKILL, as a killed worker
    uri = f"sqlite:///{tmp_path / '.seqops' / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    exp = client.get_experiment_by_name("seqops/tiny")
    (dead,) = client.search_runs([exp.experiment_id])
    assert dead.info.status == "RUNNING"  # what the kill left behind
    assert client.search_registered_models() == []  # and no half-registered version
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        code, out, err = invoke("retrain", "--config", str(cfg), "--json")
    finally:
        os.chdir(cwd)
    assert code in (0, 1), err[-3000:]
    reaped = client.get_run(dead.info.run_id)
    assert reaped.info.status == "FAILED" and "is gone" in reaped.data.tags["seqops.reaped"]
    assert client.get_run(out["run_id"]).info.status == "FINISHED"
    assert [str(v.version) for v in client.search_model_versions("name = 'tiny'")] == ["1"]


def test_a_failed_data_contract_raises_an_alert_artifact(
    tmp_path, tiny_panel_frame, prefect_server
):
    import httpx
    from prefect.settings import PREFECT_API_URL

    f = tiny_panel_frame.copy()
    f.loc[50, "value"] = np.nan
    data = tmp_path / "bad.csv"
    f.to_csv(data, index=False)
    cfg = write_yaml(tmp_path / "job.yaml", tiny_config(tmp_path, data, name="alerting"))
    code, out, _ = invoke("retrain", "--config", str(cfg), "--json")
    assert code == 2 and out["version"] is None
    r = httpx.post(f"{PREFECT_API_URL.value()}/artifacts/filter", timeout=30,
                   json={"artifacts": {"key": {"any_": ["alert-alerting"]}}, "limit": 5})  # fmt: skip
    r.raise_for_status()
    arts = [a["data"] for a in r.json()]
    assert arts and "ALERT: retrain of alerting refused its data" in arts[-1]
    assert "does not count as a retrain" in arts[-1]
