"""``seqops deploy``: register the retrain, monitor and rollout deployments of a config with the
Prefect API in PREFECT_API_URL, on a process work pool (created if missing).

The same deployments are declared in ``prefect.yaml`` for ``prefect deploy``; this command fills
in what depends on the config: the cron schedule, the monitor interval, absolute paths, and the
working directory and environment the flow runs get (so they use the same store and ledger).
"""

from __future__ import annotations

import logging
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from components.config import load_config

log = logging.getLogger("seqops.deploy")

ROOT = Path(__file__).resolve().parents[1]
_ENV_PASSED = ("MLFLOW_TRACKING_URI", "SEQOPS_LEDGER_URL", "SEQOPS_PREDLOG_URL")


def ensure_pool(name: str) -> bool:
    """Create a process work pool if it does not exist; True when created."""
    from prefect import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(name)
            return False
        except ObjectNotFound:
            pass
        try:
            client.create_work_pool(WorkPoolCreate(name=name, type="process"))
        except ObjectAlreadyExists:
            return False
    return True


def deploy(
    config_path: str, *, pool: str = "seqops-process", working_dir: str | None = None
) -> dict[str, Any]:
    from prefect import flow as prefect_flow
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy
    from prefect.schedules import Cron

    from flows.steps import write_absolute_config

    job = load_config(config_path)
    wd = str(Path(working_dir or os.getcwd()).resolve())
    # flow runs start in the code directory (the deployment's pull step), not here: give them a
    # copy of the config whose data path and state directory are absolute
    cfg = str(write_absolute_config(job, Path(config_path).resolve().parent,
                                    Path(job.state_dir).resolve() / "deployed" / f"{job.name}.yaml"))  # fmt: skip
    env = {k: os.environ[k] for k in _ENV_PASSED if os.environ.get(k)}
    job_variables = {"working_dir": wd, "env": env}
    created_pool = ensure_pool(pool)
    one_at_a_time = ConcurrencyLimitConfig(
        limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW
    )
    specs: list[dict[str, Any]] = [
        {
            "flow": "retrain",
            "entrypoint": "flows/retrain.py:retrain_flow",
            "parameters": {"config_path": cfg, "trigger": "schedule"},
            "schedules": [Cron(job.schedule.cron, timezone=job.schedule.timezone)]
            if job.schedule.cron
            else [],
            # schedule and drift at once: the second retrain is cancelled, never run twice
            "concurrency_limit": one_at_a_time,
        },
        {
            "flow": "monitor",
            "entrypoint": "flows/monitor.py:monitor_flow",
            "parameters": {"config_path": cfg, "retrain_deployment": f"retrain/{job.name}"},
            "interval": timedelta(seconds=job.monitor.interval_s),
            "concurrency_limit": one_at_a_time,
        },
        {
            "flow": "rollout",
            "entrypoint": "flows/rollout.py:rollout_flow",
            "parameters": {"model": job.name, "config_path": cfg},
            "concurrency_limit": one_at_a_time,
        },
    ]
    done = []
    for spec in specs:
        remote = prefect_flow.from_source(source=str(ROOT), entrypoint=spec["entrypoint"])
        kwargs: dict[str, Any] = {}
        if spec.get("schedules"):
            kwargs["schedules"] = spec["schedules"]
        if spec.get("interval"):
            kwargs["interval"] = spec["interval"]
        # to_deployment + apply, not Flow.deploy: deploy's worker check sends a request the
        # server of the same Prefect release refuses (limit=None on workers/filter, 3.8.8)
        deployment = remote.to_deployment(  # type: ignore[union-attr]
            name=job.name,
            work_pool_name=pool,
            parameters=spec["parameters"],
            job_variables=job_variables,
            concurrency_limit=spec["concurrency_limit"],
            tags=["seqops", job.name],
            description=f"seqops {spec['flow']} of {job.name} ({cfg})",
            **kwargs,
        )
        dep_id = deployment.apply(work_pool_name=pool)  # type: ignore[union-attr]
        schedule = (
            f"cron {job.schedule.cron} ({job.schedule.timezone})"
            if spec["flow"] == "retrain" and job.schedule.cron
            else f"every {job.monitor.interval_s:g} s"
            if spec["flow"] == "monitor"
            else "on demand"
        )
        done.append(
            {"deployment": f"{spec['flow']}/{job.name}", "id": str(dep_id), "schedule": schedule}
        )
        log.info("deployed %s/%s (%s)", spec["flow"], job.name, schedule)
    return {
        "model": job.name,
        "work_pool": pool,
        "work_pool_created": created_pool,
        "working_dir": wd,
        "env": sorted(env),
        "deployments": done,
    }
