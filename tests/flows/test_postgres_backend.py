"""The same retrain against production-style backends on the local PostgreSQL:
an ``mlflow server`` (HTTP, artifacts proxied) over PostgreSQL, and a direct postgresql:// store."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
import uuid

import pytest

from tests.conftest import require_service, tiny_config, write_yaml
from tests.flows.helpers import invoke

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.usefixtures("prefect_server")]

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}


@pytest.fixture(scope="module")
def pg_database():
    require_service("PostgreSQL", PG["host"], PG["port"])
    import psycopg

    name = f"seqops_test_{uuid.uuid4().hex[:10]}"
    admin = psycopg.connect(dbname="postgres", autocommit=True, **PG)
    admin.execute(f"CREATE DATABASE {name}")
    yield f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{name}", name
    admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_server(pg_database, tmp_path_factory):
    uri, _ = pg_database
    port = _free_port()
    art = tmp_path_factory.mktemp("server-artifacts")
    log = open(art / "server.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            uri,
            "--artifacts-destination",
            art.as_uri(),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 180
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("mlflow server exited: " + (art / "server.log").read_text()[-3000:])
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(1)
    else:
        proc.terminate()
        raise RuntimeError(
            "mlflow server did not become healthy: " + (art / "server.log").read_text()[-3000:]
        )
    yield url
    proc.terminate()
    proc.wait(timeout=30)
    log.close()


def _versions_in_postgres(dbname: str) -> list[tuple[str, int]]:
    import psycopg

    with psycopg.connect(dbname=dbname, **PG) as conn:
        return conn.execute("SELECT name, version FROM model_versions ORDER BY version").fetchall()


def test_retrain_against_mlflow_server_and_direct_postgres(
    tmp_path, tiny_data, mlflow_server, pg_database, monkeypatch
):
    uri, dbname = pg_database
    cfg = write_yaml(tmp_path / "job.yaml", tiny_config(tmp_path, tiny_data, name="tiny-pg"))

    code, out, err = invoke(
        "retrain", "--config", str(cfg), "--json", env={"MLFLOW_TRACKING_URI": mlflow_server}
    )
    assert code in (0, 1), err[-3000:]
    assert out["tracking_uri"] == mlflow_server and out["version"] == "1"
    assert _versions_in_postgres(dbname) == [("tiny-pg", 1)]

    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_server, registry_uri=mlflow_server)
    assert {a.path for a in client.list_artifacts(out["run_id"], "plots")} == {
        "plots/forecast_vs_actual.png",
        "plots/error_by_horizon.png",
    }
    assert client.get_model_version("tiny-pg", "1").tags["seqops.validation"] == "passed"

    # the config's tracking.uri, pointing straight at the PostgreSQL store, works too. It needs its
    # own experiment: one created through the server stores proxied (mlflow-artifacts:) locations
    # that only a server can resolve.
    cfg2 = write_yaml(
        tmp_path / "job2.yaml",
        tiny_config(
            tmp_path,
            tiny_data,
            name="tiny-pg",
            tracking={"uri": uri, "experiment": "seqops/tiny-pg-direct"},
        ),
    )
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    code, out2, err = invoke("retrain", "--config", str(cfg2), "--json")
    assert code in (0, 1), err[-3000:]
    assert out2["tracking_uri"] == uri and out2["version"] == "2"
    assert _versions_in_postgres(dbname) == [("tiny-pg", 1), ("tiny-pg", 2)]
