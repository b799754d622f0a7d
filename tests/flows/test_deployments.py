"""Deployments for real: a `prefect server start` on loopback, `seqops deploy`, a flow run created
through the API, a process worker running it, and a drift-triggered retrain through
`run_deployment`. Once with everything on SQLite, once with everything on PostgreSQL (the Prefect
server's database, MLflow's backend store, the ledger and the prediction log)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import httpx
import pytest

from tests.conftest import REPO, require_service, tiny_config, write_yaml
from tests.serving.conftest import free_port

pytestmark = pytest.mark.slow

PG = "host=127.0.0.1 user=postgres dbname=postgres"


def _pg_db(dbs: list[str]) -> str:
    import psycopg

    name = f"seqops_dep_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG, autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name}")
    dbs.append(name)
    return name


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def stack(request, tmp_path):
    """A Prefect server process plus the environment every seqops process of the test gets."""
    dbs: list[str] = []
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
    }
    for k in ("MLFLOW_TRACKING_URI", "SEQOPS_LEDGER_URL", "SEQOPS_PREDLOG_URL", "PREFECT_API_URL"):
        env.pop(k, None)
    if request.param == "postgresql":
        require_service("PostgreSQL", "127.0.0.1", 5432)
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = (
            f"postgresql+asyncpg://postgres@127.0.0.1:5432/{_pg_db(dbs)}"
        )
        env["MLFLOW_TRACKING_URI"] = f"postgresql://postgres@127.0.0.1:5432/{_pg_db(dbs)}"
        env["SEQOPS_LEDGER_URL"] = f"postgresql://postgres@127.0.0.1:5432/{_pg_db(dbs)}"
        env["SEQOPS_PREDLOG_URL"] = f"postgresql://postgres@127.0.0.1:5432/{_pg_db(dbs)}"
    else:
        env["PREFECT_API_DATABASE_CONNECTION_URL"] = (
            f"sqlite+aiosqlite:///{tmp_path / 'prefect.db'}"
        )
    port = free_port()
    env["PREFECT_API_URL"] = f"http://127.0.0.1:{port}/api"
    log = (tmp_path / "prefect-server.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{env['PREFECT_API_URL']}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, (tmp_path / "prefect-server.log").read_text()[-3000:]
            time.sleep(0.5)
        else:
            raise AssertionError("prefect server did not start in 120 s")
        yield {"env": env, "api": env["PREFECT_API_URL"], "backend": request.param, "tmp": tmp_path}
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
        if dbs:
            import psycopg

            with psycopg.connect(PG, autocommit=True) as c:
                for db in dbs:
                    c.execute(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)")


def _seqops(stack, *args, timeout=600):
    r = subprocess.run(
        [sys.executable, "-m", "flows", *args], env=stack["env"], cwd=stack["tmp"],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    return (
        r.returncode,
        (json.loads(r.stdout) if r.stdout.strip().startswith("{") else None),
        r.stderr,
    )


def _worker_run_once(stack, timeout=600):
    r = subprocess.run(
        [sys.executable, "-m", "prefect", "worker", "start", "--pool", "seqops-process", "--run-once"],
        env=stack["env"], cwd=stack["tmp"], capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r.stdout + r.stderr


def _flow_runs(stack, deployment_id):
    r = httpx.post(
        f"{stack['api']}/flow_runs/filter",
        json={
            "deployments": {"id": {"any_": [deployment_id]}},
            "sort": "START_TIME_ASC",
            "limit": 50,
        },
        timeout=30,
    )
    r.raise_for_status()
    return r.json()


def test_deploy_run_through_a_worker_and_a_drift_triggered_retrain(stack, tiny_panel_frame):
    from components.synth import synth_panel

    tmp = stack["tmp"]
    data = tmp / "panel.csv"
    tiny_panel_frame.to_csv(data, index=False)
    # the drop file the monitor reads: the same series with a level shift in the recent part
    drifted = synth_panel(n_series=3, length=160, freq="D", season_length=7, noise=0.2, seed=3,
                          drift_start=40, drift_shift=25.0)  # fmt: skip
    drifted.to_csv(tmp / "drop.csv", index=False)
    cfg = write_yaml(
        tmp / "job.yaml",
        tiny_config(
            tmp, data,
            gate={"seasonal_naive_margin": 0.0, "champion_tolerance": 10.0, "promote_first_to_champion": True},
            training={"epochs": 30, "learning_rate": 0.02, "early_stopping": {"patience": 8}},
            model={"units": 16},
            monitor={"consecutive": 2, "cooldown_minutes": 0, "data_path": str(tmp / "drop.csv"), "recent_rows": 60},
        ),
    )  # fmt: skip

    code, out, err = _seqops(stack, "deploy", "--config", str(cfg), "--json")
    assert code == 0, err[-3000:]
    deps = {d["deployment"]: d["id"] for d in out["deployments"]}
    assert set(deps) == {"retrain/tiny", "monitor/tiny", "rollout/tiny"}
    assert out["work_pool_created"] is True

    # a flow run created through the API, run by a process worker
    r = httpx.post(
        f"{stack['api']}/deployments/{deps['retrain/tiny']}/create_flow_run", json={}, timeout=30
    )
    assert r.status_code in (200, 201), r.text
    _worker_run_once(stack)
    runs = _flow_runs(stack, deps["retrain/tiny"])
    assert [fr["state_type"] for fr in runs] == ["COMPLETED"], runs
    code, st, err = _seqops(stack, "status", "tiny", "--state-dir", str(tmp / ".seqops"), "--json")
    assert code == 0, err[-2000:]
    assert st["aliases"]["champion"] == "1", st
    code, hist, _ = _seqops(stack, "history", "tiny", "--state-dir", str(tmp / ".seqops"), "--json")
    assert {e["trigger"] for e in hist["entries"]} == {"retrain"}

    # drift: the first check waits (hysteresis), the second triggers the retrain deployment
    code, m1, err = _seqops(stack, "monitor", "--config", str(cfg), "--json")
    assert code == 0 and m1["action"] == "waiting" and m1["drift_detected"], (m1, err[-2000:])
    code, m2, err = _seqops(stack, "monitor", "--config", str(cfg), "--json")
    assert code == 0 and m2["action"] == "trigger" and m2["flow_run_id"], (m2, err[-2000:])
    # the schedule fires at the same moment: the deployment's concurrency limit (1, CANCEL_NEW)
    # lets one retrain run and cancels the other
    r = httpx.post(
        f"{stack['api']}/deployments/{deps['retrain/tiny']}/create_flow_run", json={}, timeout=30
    )
    assert r.status_code in (200, 201), r.text
    _worker_run_once(stack)
    runs = _flow_runs(stack, deps["retrain/tiny"])
    assert len(runs) == 3
    pair = {fr["id"]: fr for fr in runs[1:]}
    assert set(pair) == {m2["flow_run_id"], r.json()["id"]}
    assert sorted(fr["state_type"] for fr in pair.values()) == ["CANCELLED", "COMPLETED"], runs
    # which of the two takes the slot depends on the worker's submission order; exactly one ran
    ran = next(fr for fr in pair.values() if fr["state_type"] == "COMPLETED")
    code, h, _ = _seqops(stack, "monitor", "--config", str(cfg), "--history", "--json")
    assert [c["action"] for c in h["checks"]] == ["waiting", "trigger"]
    assert h["checks"][1]["details"]["flow_run_id"] == m2["flow_run_id"]

    from mlflow import MlflowClient

    uri = stack["env"].get("MLFLOW_TRACKING_URI") or f"sqlite:///{tmp / '.seqops' / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    v2 = client.get_model_version("tiny", "2")
    run = client.get_run(v2.run_id)
    assert run.data.tags["seqops.trigger"] == ran["parameters"]["trigger"]
    assert run.info.status == "FINISHED"

    # the gateway on the same backends: the champion answers, its prediction lands in the log
    port = free_port()
    gw = subprocess.Popen(
        [sys.executable, "-m", "flows", "serve", "tiny", "--port", str(port), "--state-dir", str(tmp / ".seqops")],
        env=stack["env"], cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        window = [[float(v), 15.0] for v in range(14)]  # target + temperature
        r = httpx.post(f"http://127.0.0.1:{port}/predict", timeout=10,
                       json={"series_id": "s000", "request_id": "dep-1", "window": window})  # fmt: skip
        # v2 (drift-triggered) is only a challenger: the champion still answers
        assert r.status_code == 200 and r.json()["version"] == "1", r.text
    finally:
        gw.terminate()
        gw.wait(30)
    from serving.predlog import PredictionLog, resolve_predlog_url

    url = stack["env"].get("SEQOPS_PREDLOG_URL") or resolve_predlog_url(None, tmp / ".seqops")
    plog = PredictionLog(resolve_predlog_url(url))
    assert plog.count("tiny") == 1 and plog.engine.dialect.name == stack["backend"]
    plog.close()
