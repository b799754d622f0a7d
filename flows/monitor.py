"""The ``monitor`` Prefect flow: is the recent data still like the champion's training data?

Drift is measured by the same component as the retrain (Evidently, against the reference logged
with the champion). Drift must persist over ``monitor.consecutive`` checks and the cooldown must
have passed before the flow triggers the retrain deployment (``run_deployment``); every check,
trigger and suppression is recorded with its reason (``seqops monitor --history``)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from components.config import JobConfig, load_config

if TYPE_CHECKING:
    from components.drift import DriftSummary

log = logging.getLogger("seqops.monitor")


def recent_frame(job: JobConfig, base_dir: Path | None):
    """Drift features of the last ``monitor.recent_rows`` rows of every series in the drop file."""
    from components.data import load_frame, to_panel
    from flows.steps import drift_frame

    data = job.data
    if job.monitor.data_path:
        data = data.model_copy(update={"path": job.monitor.data_path})
    panel = to_panel(load_frame(data, base_dir), data, job.missing)
    n = job.monitor.recent_rows
    return drift_frame(job, panel, [(max(len(v) - n, 0), len(v)) for v in panel.values])


def last_retrain(client, model: str) -> datetime | None:
    """When the newest version was registered (a retrain whose contract failed registers none, so
    it does not count for the cooldown)."""
    vs = client.search_model_versions(
        f"name = '{model}'", max_results=1, order_by=["creation_timestamp DESC"]
    )
    return datetime.fromtimestamp(vs[0].creation_timestamp / 1000, UTC) if vs else None


@task(name="drift-check", cache_policy=NO_CACHE, persist_result=False)
def drift_check_task(
    job: JobConfig, base_dir: Path | None, champion, out_dir: Path
) -> DriftSummary:
    from components.drift import run_drift

    return run_drift(
        champion.reference,
        recent_frame(job, base_dir),
        out_dir=out_dir,
        reference_label=f"champion v{champion.version} training data",
        sample_size=job.drift.sample_size,
        drift_share=job.drift.drift_share,
        seed=job.training.seed,
    )


@task(
    name="trigger-retrain",
    cache_policy=NO_CACHE,
    persist_result=False,
    retries=2,
    retry_delay_seconds=5,
)
def trigger_task(deployment: str, config_path: str, key: str) -> str:
    from prefect.deployments import run_deployment

    run = run_deployment(
        name=deployment,
        parameters={"config_path": config_path, "trigger": "drift"},
        timeout=0,
        idempotency_key=key,
    )
    return str(run.id)  # type: ignore[union-attr]


@flow(name="monitor", validate_parameters=False)
def monitor_flow(config_path: str, retrain_deployment: str | None = None) -> dict[str, Any]:
    from mlflow import MlflowClient
    from prefect.artifacts import create_markdown_artifact

    from registry.champion import load_champion
    from registry.ledger import Ledger, resolve_ledger_url
    from registry.monitor_log import Decision, MonitorLog, decide
    from registry.tracking import _set_mlflow_uris, resolve_tracking_uri

    job = load_config(config_path)
    base_dir = Path(config_path).resolve().parent
    uri = resolve_tracking_uri(job)
    _set_mlflow_uris(uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    ledger = Ledger(resolve_ledger_url(None, job.state_dir, job.promotion.ledger_url))
    mlog = MonitorLog(ledger.engine)
    deployment = retrain_deployment or f"retrain/{job.name}"
    now = datetime.now(UTC)
    champion = load_champion(client, job.name)
    if champion is None or champion.reference is None:
        d = Decision("skipped", 0, "no champion with a training reference to compare against")
        mlog.record(job.name, d, drift=None, share=None, champion=None, details={})
        return {"model": job.name, "action": d.action, "reason": d.reason}
    out_dir = (
        Path(job.state_dir) / "reports" / job.name / "monitor" / now.strftime("%Y%m%dT%H%M%S%fZ")
    )
    summary = drift_check_task(job, base_dir, champion, out_dir)
    history = mlog.history(job.name)
    d = decide(history, drift=summary.drift_detected, now=now,
               last_retrain=last_retrain(client, job.name), cfg=job.monitor)  # fmt: skip
    details: dict[str, Any] = {"drifted_columns": summary.drifted_columns, "report": summary.html_path,
                               "deployment": deployment}  # fmt: skip
    if d.action == "trigger":
        key = (
            f"drift-{job.name}-{now:%Y%m%dT%H}"  # one trigger per model and hour, whatever retries
        )
        try:
            details["flow_run_id"] = trigger_task(deployment, str(Path(config_path).resolve()), key)
        except Exception as exc:  # recorded, and the streak is kept for the next check
            d = Decision(
                "trigger_failed", d.consecutive, f"{d.reason}; could not run {deployment}: {exc}"
            )
    mlog.record(job.name, d, drift=summary.drift_detected, share=summary.drift_share,
                champion=champion.version, details=details)  # fmt: skip
    log.info("%s: %s (%s)", job.name, d.action, d.reason)
    create_markdown_artifact(
        markdown=f"## seqops monitor: {job.name}\n\n**{d.action}**: {d.reason}\n\n"
        f"Drift share {summary.drift_share:.2f} vs champion v{champion.version}; "
        f"drifted: {', '.join(summary.drifted_columns) or 'none'}.",
        description=f"drift check of {job.name}",
    )
    ledger.dispose()
    return {"model": job.name, "action": d.action, "reason": d.reason, "consecutive": d.consecutive,
            "drift_detected": summary.drift_detected, "drift_share": summary.drift_share,
            "champion": champion.version, **details}  # fmt: skip
