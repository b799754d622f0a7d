"""Many models from one config: each model's ``retrain`` flow runs as a task on Prefect's
DaskTaskRunner (a local Dask cluster by default, a scheduler address for a real one).

Models are independent: each is registered, gated and recorded on its own, and one model failing
(bad data, divergence, a crashed worker) neither fails nor rolls back the others; the summary says
which failed and why.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from components.config import DaskConfig, JobConfig, load_many

log = logging.getLogger("seqops.many")

_SEVERITY = {0: 0, 1: 1, 2: 2, 3: 3}


def model_configs(config_path: str) -> tuple[list[tuple[JobConfig, Path]], DaskConfig]:
    """Resolve every model to a standalone config file (absolute data path and state dir), so a
    Dask worker with another working directory reads the same data and writes the same store."""
    from flows.steps import write_absolute_config

    jobs, dask = load_many(config_path)
    base = Path(config_path).resolve().parent
    out = []
    for job in jobs:
        dest = Path(job.state_dir).resolve() / "many" / f"{job.name}.yaml"
        out.append((job, write_absolute_config(job, base, dest)))
    return out, dask


@task(name="retrain-model", cache_policy=NO_CACHE, persist_result=False)
def retrain_model_task(config_path: str, model: str, trigger: str) -> dict[str, Any]:
    from components.errors import SeqopsError
    from flows.retrain import error_outcome, retrain_flow

    try:
        return retrain_flow(config_path, trigger=trigger)
    except SeqopsError as exc:
        return error_outcome(exc, model)
    except Exception as exc:  # noqa: BLE001  one model's failure is reported, never fatal
        log.exception("retrain of %s failed", model)
        return {"status": "run_failed", "exit_code": 3, "model": model, "version": None,
                "error": f"{type(exc).__name__}: {exc}"}  # fmt: skip


def summary(outcomes: list[dict[str, Any]]) -> dict[str, Any]:
    """Exit 0 when every model registered and passed; else the most severe of the models' codes
    (3 failed > 2 bad input > 1 gate rejected)."""
    code = max((o["exit_code"] for o in outcomes), key=lambda c: _SEVERITY.get(c, 3), default=0)
    failed = [
        {"model": o["model"], "status": o["status"], "exit_code": o["exit_code"],
         "reason": o.get("error") or "; ".join((o.get("gate") or {}).get("reasons", []))}
        for o in outcomes if o["exit_code"] != 0
    ]  # fmt: skip
    return {
        "status": "ok" if code == 0 else "some_failed",
        "exit_code": code,
        "models": outcomes,
        "failed": failed,
        "registered": [
            {"model": o["model"], "version": o.get("version")} for o in outcomes if o.get("version")
        ],
    }


@flow(name="retrain-many", validate_parameters=False)
def _retrain_many(configs: list[tuple[str, str]], trigger: str) -> dict[str, Any]:
    futures = [retrain_model_task.submit(path, name, trigger) for name, path in configs]
    outcomes = [f.result() for f in futures]
    for o in outcomes:
        log.info("%s: %s (exit %s) v%s", o["model"], o["status"], o["exit_code"], o.get("version"))
    return summary(outcomes)


def retrain_many(config_path: str, trigger: str = "manual") -> dict[str, Any]:
    from prefect_dask import DaskTaskRunner

    from registry.tracking import configure

    models, dask = model_configs(config_path)
    for job, _ in models:  # create the store and experiments once: concurrent first use races
        configure(job)
    if dask.address:
        runner = DaskTaskRunner(address=dask.address)
    else:
        runner = DaskTaskRunner(
            cluster_kwargs={
                "n_workers": dask.n_workers,
                "threads_per_worker": dask.threads_per_worker,
                "processes": True,
                "dashboard_address": None,
            }
        )
    log.info(
        "training %d models on %s",
        len(models),
        dask.address or f"a local Dask cluster ({dask.n_workers} workers)",
    )
    flow_ = _retrain_many.with_options(task_runner=runner)  # type: ignore[arg-type]
    return flow_([(job.name, str(path)) for job, path in models], trigger)
