"""Where MLflow lives: env var, then config, then the embedded SQLite store under ``.seqops/``."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from components.config import JobConfig

log = logging.getLogger(__name__)


def default_tracking_uri(state_dir: str | Path) -> str:
    db = (Path(state_dir) / "mlflow.db").resolve()
    return f"sqlite:///{db}"


def resolve_tracking_uri(job: JobConfig | None = None, state_dir: str | Path = ".seqops") -> str:
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    if job is not None and job.tracking.uri:
        return job.tracking.uri
    return default_tracking_uri(job.state_dir if job is not None else state_dir)


def is_local_store(uri: str) -> bool:
    """True for stores that MLflow opens in-process (we then choose the artifact root)."""
    return not uri.startswith(("http://", "https://", "databricks"))


def configure(job: JobConfig) -> str:
    """Point MLflow at the job's store and make sure the experiment exists; returns the URI."""
    import mlflow

    uri = resolve_tracking_uri(job)
    state = Path(job.state_dir)
    if uri.startswith("sqlite:///"):
        Path(uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    _set_mlflow_uris(uri)
    name = experiment_name(job)
    exp = mlflow.get_experiment_by_name(name)
    if exp is None:
        kwargs: dict[str, Any] = {}
        if is_local_store(uri):
            root = (state / "artifacts").resolve()
            root.mkdir(parents=True, exist_ok=True)
            kwargs["artifact_location"] = root.as_uri()
        try:
            mlflow.create_experiment(name, **kwargs)
        except Exception:  # created concurrently by another run
            if mlflow.get_experiment_by_name(name) is None:
                raise
    exp_id = mlflow.set_experiment(name).experiment_id
    reap_stale_runs(mlflow.MlflowClient(tracking_uri=uri), exp_id)
    log.debug("mlflow tracking uri %s experiment %s", uri, name)
    return uri


def owner_tags() -> dict[str, str]:
    """Who is writing a run: host and process, so a later process can tell a dead writer's run."""
    import socket

    return {"seqops.host": socket.gethostname(), "seqops.pid": str(os.getpid())}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, someone else's
        return True
    return True


def reap_stale_runs(client, experiment_id: str) -> list[str]:
    """Mark FAILED the RUNNING runs whose writer is gone: a worker killed mid-retrain leaves its
    run RUNNING (and registers nothing: the version is created in one step at the very end).
    Only runs written on this host with a dead pid are touched; others may still be alive."""
    import socket

    host = socket.gethostname()
    reaped = []
    for run in client.search_runs([experiment_id], filter_string="attributes.status = 'RUNNING'"):
        tags = run.data.tags
        pid = tags.get("seqops.pid")
        if tags.get("seqops.host") != host or not (pid and pid.isdigit()) or _alive(int(pid)):
            continue
        client.set_tag(run.info.run_id, "seqops.reaped", f"writer pid {pid} on {host} is gone")
        client.set_terminated(run.info.run_id, status="FAILED")
        reaped.append(run.info.run_id)
        log.warning("marked run %s FAILED: its writer (pid %s) died mid-run", run.info.run_id, pid)
    return reaped


_URI_VARS = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")


def _set_mlflow_uris(uri: str) -> None:
    """Point MLflow's fluent API at ``uri`` without touching the user's environment.

    ``mlflow.set_tracking_uri``/``set_registry_uri`` also export the URI to ``os.environ``; left
    there, a later job in the same process would mistake it for the user's MLFLOW_TRACKING_URI.
    """
    import mlflow

    saved = {k: os.environ.get(k) for k in _URI_VARS}
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def experiment_name(job: JobConfig) -> str:
    return job.tracking.experiment or f"seqops/{job.name}"


def open_registry(state_dir: str | Path, ledger_url: str | None):
    """MLflow client (env MLFLOW_TRACKING_URI, else the embedded store), the promotion ledger and
    the tracking URI, for commands that read or move aliases."""
    from mlflow import MlflowClient

    from registry.ledger import Ledger, resolve_ledger_url

    uri = os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri(state_dir)
    _set_mlflow_uris(uri)
    return (
        MlflowClient(tracking_uri=uri, registry_uri=uri),
        Ledger(resolve_ledger_url(ledger_url, Path(state_dir))),
        uri,
    )
