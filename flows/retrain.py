"""The ``retrain`` Prefect flow: validate -> prepare -> train -> evaluate -> champion comparison ->
drift -> MLflow run + registered version -> offline gate -> ``challenger`` alias or rejection."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import yaml
from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from components.config import JobConfig, load_config
from components.errors import SeqopsError
from flows import steps

if TYPE_CHECKING:
    from components.drift import DriftSummary
    from components.evaluation import EvalResult
    from components.training import TrainResult
    from registry.champion import Champion
    from registry.registration import RunPayload
    from validation.contract import ContractResult

log = logging.getLogger("seqops.retrain")


@task(name="load-and-validate", cache_policy=NO_CACHE, persist_result=False)
def load_and_validate_task(
    job: JobConfig, base_dir: Path | None, report_dir: Path
) -> tuple[pd.DataFrame, str, ContractResult]:
    return steps.load_and_validate(job, base_dir, report_dir)


@task(name="prepare-windows", cache_policy=NO_CACHE, persist_result=False)
def prepare_task(job: JobConfig, frame: pd.DataFrame) -> steps.Prepared:
    return steps.prepare(job, frame)


# no retries: divergence is not transient
@task(name="train-lstm", cache_policy=NO_CACHE, persist_result=False)
def train_task(job: JobConfig, prep: steps.Prepared) -> TrainResult:
    from components.training import configure_device, train

    device = configure_device(job)
    return train(job, prep.train, prep.val, prep.mean, prep.std, device)


@task(name="evaluate", cache_policy=NO_CACHE, persist_result=False)
def evaluate_task(
    job: JobConfig, prep: steps.Prepared, model: Any, plots_dir: Path
) -> tuple[EvalResult, dict[str, float]]:
    return steps.evaluate_all(job, prep, steps.keras_predictor(model), plots_dir)


@task(
    name="load-champion",
    retries=2,
    retry_delay_seconds=2,
    cache_policy=NO_CACHE,
    persist_result=False,
)
def champion_task(job: JobConfig) -> Champion | None:
    from mlflow import MlflowClient

    from registry.champion import load_champion

    return load_champion(MlflowClient(), job.name)


@task(name="drift-report", cache_policy=NO_CACHE, persist_result=False)
def drift_task(
    job: JobConfig, prep: steps.Prepared, champion: Champion | None, out_dir: Path
) -> tuple[DriftSummary, pd.DataFrame]:
    return steps.drift_step(job, prep, champion, out_dir)


@task(
    name="log-mlflow-run",
    retries=2,
    retry_delay_seconds=2,
    cache_policy=NO_CACHE,
    persist_result=False,
)
def log_run_task(payload: RunPayload) -> tuple[str, str]:
    from registry.registration import log_run

    return log_run(payload)


@task(
    name="register-version",
    retries=2,
    retry_delay_seconds=2,
    cache_policy=NO_CACHE,
    persist_result=False,
)
def register_task(
    job: JobConfig,
    *,
    model_uri: str,
    run_id: str,
    tags: dict[str, str],
    description: str,
    gate_passed: bool,
) -> tuple[str, list[str]]:
    from mlflow import MlflowClient

    from registry.aliases import get_alias_version
    from registry.ledger import Ledger, resolve_ledger_url
    from registry.promotion import record_alias
    from registry.registration import register_version

    client = MlflowClient()
    ledger = Ledger(resolve_ledger_url(None, job.state_dir, job.promotion.ledger_url))
    had_champion = get_alias_version(client, job.name, "champion") is not None
    version = register_version(
        client,
        name=job.name,
        model_uri=model_uri,
        run_id=run_id,
        tags=tags,
        description=description,
    )
    aliases: list[str] = []
    if gate_passed:
        record_alias(
            client,
            ledger,
            job.name,
            "challenger",
            version,
            trigger="retrain",
            reasons=["offline gate passed"],
        )
        aliases.append("challenger")
        first = len(client.search_model_versions(f"name='{job.name}'")) == 1
        if job.gate.promote_first_to_champion and first and not had_champion:
            record_alias(
                client,
                ledger,
                job.name,
                "champion",
                version,
                trigger="retrain",
                reasons=["first version; gate.promote_first_to_champion"],
            )
            aliases.append("champion")
    return version, aliases


def _report_dir(job: JobConfig) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return Path(job.state_dir) / "reports" / job.name / stamp


def _timed(timings: dict[str, float], key: str, t0: float) -> float:
    now = time.perf_counter()
    timings[key] = round(now - t0, 3)
    return now


@flow(name="retrain", validate_parameters=False)
def retrain_flow(config_path: str, trigger: str = "manual") -> dict[str, Any]:
    """Retrain one model from a config file; returns the outcome (see ``seqops retrain --json``)."""
    import mlflow
    from prefect.artifacts import create_markdown_artifact

    from registry import tracking
    from registry.gate import offline_gate
    from registry.registration import RunPayload, flatten, git_commit, version_tags

    timings: dict[str, float] = {}
    t = time.perf_counter()
    job = load_config(config_path)
    base_dir = Path(config_path).resolve().parent
    report_dir = _report_dir(job)
    plots_dir = report_dir / "plots"
    timings["imports"] = round(steps.warm_imports(), 3)
    t = time.perf_counter()

    try:
        frame, digest, contract = load_and_validate_task(job, base_dir, report_dir / "validation")
    except SeqopsError as exc:  # an alert for whoever watches the deployment; nothing registered
        _alert(job, trigger, exc)
        raise
    t = _timed(timings, "validation", t)
    prep = prepare_task(job, frame)
    t = _timed(timings, "prepare", t)
    trained = train_task(job, prep)
    t = _timed(timings, "training", t)
    keras_dir = report_dir / "model"
    keras_dir.mkdir(parents=True, exist_ok=True)
    keras_path = keras_dir / "model.keras"
    trained.forecaster.serve_model.save(keras_path)
    res, backtest_summary = evaluate_task(job, prep, trained.forecaster.serve_model, plots_dir)
    t = _timed(timings, "evaluation", t)

    uri = tracking.configure(job)
    champion = champion_task(job)
    champ_table = cand_same = problem = None
    if champion is not None:
        champ_table, cand_same, problem = steps.compare_champion(job, prep, res, champion)
    t = _timed(timings, "champion", t)

    drift_summary, new_reference = (None, None)
    if job.drift.enabled:
        drift_summary, new_reference = drift_task(job, prep, champion, report_dir / "drift")
    else:
        new_reference = steps.drift_frame(
            job, prep.panel, [b["train"] for b in prep.segments.bounds]
        )
    t = _timed(timings, "drift", t)

    metrics = {
        k: {m: v[m] for m in ("mae", "rmse", "smape", "mase")} for k, v in res.metrics.items()
    }
    gate = offline_gate(
        job.gate,
        candidate=cand_same if cand_same is not None else res.metrics["model"],  # type: ignore[arg-type]
        seasonal_naive=res.metrics["seasonal_naive"],  # type: ignore[arg-type]
        champion=champ_table,
        champion_version=champion.version if champion else None,
        champion_problem=problem,
    )
    if champ_table is not None:
        metrics["champion"] = {m: champ_table[m] for m in ("mae", "rmse", "smape", "mase")}

    resolved = report_dir / "config.resolved.yaml"
    resolved.write_text(yaml.safe_dump(job.model_dump(mode="json"), sort_keys=False))
    (report_dir / "evaluation.json").write_text(
        json.dumps(
            {
                "test": res.metrics,
                "backtest": res.backtest,
                "backtest_summary": backtest_summary,
                "champion": champ_table,
                "gate": gate.to_dict(),
            },
            indent=2,
            default=float,
        )
    )
    step_metrics: dict[str, list[float]] = {f"train_{k}": v for k, v in trained.history.items()}
    for who, table in res.metrics.items():
        per_h: dict[str, list[float]] = table["per_horizon"]  # type: ignore[assignment]
        step_metrics[f"test_{who}_{job.gate.metric}_by_horizon"] = per_h[job.gate.metric]
    for who in ("model", "naive", "seasonal_naive"):
        step_metrics[f"backtest_{who}_mase_by_fold"] = [
            f[who]["mase"]  # type: ignore[index]
            for f in res.backtest
        ]
    flat_metrics = {
        f"test_{who}_{m}": float(v)  # type: ignore[arg-type]
        for who, tab in metrics.items()
        for m, v in tab.items()
    }
    flat_metrics.update({f"backtest_{k}": v for k, v in backtest_summary.items()})
    if drift_summary is not None:
        flat_metrics["drift_share"] = drift_summary.drift_share
    flat_metrics.update(
        {
            "train_seconds": trained.seconds,
            "train_samples_per_second": trained.samples_per_second,
            "epochs_run": trained.epochs_run,
            "best_epoch": trained.best_epoch,
        }
    )
    params = flatten(job.model_dump(mode="json"))
    params.update(
        {
            "n_series": len(prep.panel.ids),
            "n_rows": int(len(frame)),
            "train_windows": len(prep.train),
            "val_windows": len(prep.val),
            "test_windows": len(prep.test),
            "device": trained.device.name,
            "cudnn": trained.device.cudnn,
            "mixed_precision": trained.device.mixed_precision,
            "season_length": job.season_length(),
            "n_params": trained.params.get("n_params"),
        }
    )
    commit = git_commit()
    x_ex, y_ex = prep.test.materialize(prep.test.starts[:2])
    payload = RunPayload(
        run_name=f"retrain-{job.name}-{report_dir.name}",
        params=params,
        metrics=flat_metrics,
        step_metrics=step_metrics,
        run_tags={
            "seqops.trigger": trigger,
            "seqops.config_hash": job.config_hash(),
            "seqops.data_digest": digest,
            "seqops.git_commit": commit or "unknown",
            "seqops.gate": "passed" if gate.passed else "rejected",
        },
        frame=frame,
        data_source=str(Path(job.data.path)),
        target=job.data.target,
        artifact_dirs={
            "reports/validation": report_dir / "validation",
            "reports/drift": report_dir / "drift",
            "plots": plots_dir,
        },
        extra_files={"config": resolved, "reports": report_dir / "evaluation.json"},
        reference=new_reference,
        keras_path=keras_path,
        example_x=x_ex,
        example_y=y_ex,
    )
    run_id, model_uri = log_run_task(payload)
    tags = version_tags(
        validation={"evaluated": contract.evaluated},
        metrics=metrics,
        gate=gate.to_dict(),
        drift=drift_summary.to_dict() if drift_summary else None,
        config_hash=job.config_hash(),
        data_digest=digest,
        commit=commit,
        lookback=job.window.lookback,
        horizon=job.window.horizon,
        features=prep.panel.feature_names,
        run_id=run_id,
        device=trained.device.name,
    )
    outcome: dict[str, Any] = {
        "status": "registered" if gate.passed else "rejected",
        "exit_code": 0 if gate.passed else 1,
        "model": job.name,
        "run_id": run_id,
        "version": None,
        "aliases": [],
        "tracking_uri": uri,
        "trigger": trigger,
        "metrics": metrics,
        "backtest": {"folds": res.backtest, **backtest_summary},
        "gate": gate.to_dict(),
        "drift": (
            {
                k: drift_summary.to_dict()[k]
                for k in (
                    "drift_detected",
                    "drift_share",
                    "drift_share_threshold",
                    "drifted_columns",
                    "reference_label",
                    "sampled",
                    "tests",
                )
            }
            if drift_summary
            else None
        ),
        "validation": {
            "passed": True,
            "expectations": contract.evaluated,
            "rows": contract.n_rows,
            "series": contract.n_series,
        },
        "training": {
            "epochs_run": trained.epochs_run,
            "best_epoch": trained.best_epoch,
            "seconds": round(trained.seconds, 3),
            "samples_per_second": round(trained.samples_per_second, 1),
            "device": trained.device.name,
            "cudnn": trained.device.cudnn,
            "mixed_precision": trained.device.mixed_precision,
        },
        "reports": {
            "dir": str(report_dir),
            "validation_html": contract.html_path,
            "validation_json": contract.json_path,
            "drift_html": drift_summary.html_path if drift_summary else None,
            "drift_json": drift_summary.json_path if drift_summary else None,
            "forecast_plot": str(plots_dir / "forecast_vs_actual.png"),
            "horizon_plot": str(plots_dir / "error_by_horizon.png"),
            "evaluation_json": str(report_dir / "evaluation.json"),
        },
        "data_digest": digest,
        "config_hash": job.config_hash(),
    }
    description = version_description(outcome)
    version, aliases = register_task(
        job,
        model_uri=model_uri,
        run_id=run_id,
        tags=tags,
        description=description,
        gate_passed=gate.passed,
    )
    outcome["version"], outcome["aliases"] = version, aliases
    t = _timed(timings, "registry", t)
    outcome["timings"] = timings
    try:
        create_markdown_artifact(
            key=f"retrain-{_slug(job.name)}",
            markdown=version_description(outcome),
            description=f"seqops retrain of {job.name}",
        )
    except (
        Exception
    ) as exc:  # an artifact is a convenience, never a reason to fail a registered run
        log.warning("could not create the Prefect markdown artifact: %s", exc)
    mlflow.set_tracking_uri(uri)
    return outcome


def _alert(job: JobConfig, trigger: str, exc: SeqopsError) -> None:
    from prefect.artifacts import create_markdown_artifact

    lines = [f"## ALERT: retrain of {job.name} refused its data ({exc.kind})", "",
             f"Trigger: {trigger}. Nothing was registered; this run does not count as a retrain for "
             "the drift monitor's cooldown.", "", f"{exc}"]  # fmt: skip
    lines += [f"- {f}" for f in getattr(exc, "failures", []) or []]
    lines += [f"- {k}: {v}" for k, v in (getattr(exc, "report_paths", {}) or {}).items()]
    try:
        create_markdown_artifact(
            key=f"alert-{_slug(job.name)}",
            markdown="\n".join(lines),
            description="data contract failed",
        )
    except Exception as e:  # noqa: BLE001  the alert is best effort; the error itself propagates
        log.warning("could not create the alert artifact: %s", e)


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-") or "model"


def version_description(o: dict[str, Any]) -> str:
    """Markdown summary of the evidence, used for the version description and the Prefect artifact."""
    version = f" v{o['version']}" if o.get("version") else ""  # unknown until registered
    lines = [f"## seqops retrain: {o['model']}{version}", ""]
    gate = o["gate"]
    lines.append(
        f"**Gate: {'PASSED' if gate['passed'] else 'REJECTED'}** on {gate['metric'].upper()}"
        + (f"; aliases: {', '.join(o['aliases'])}" if o.get("aliases") else "")
    )
    for r in gate["reasons"]:
        lines.append(f"- {r}")
    lines += ["", "| model | MASE | MAE | RMSE | sMAPE |", "|---|---|---|---|---|"]
    for who, tab in o["metrics"].items():
        lines.append(
            f"| {who} | {tab['mase']:.4f} | {tab['mae']:.4f} | {tab['rmse']:.4f} | {tab['smape']:.3f} |"
        )
    bt = o.get("backtest") or {}
    if bt.get("folds"):
        lines.append("")
        lines.append(
            f"Rolling-origin backtest ({len(bt['folds'])} folds): model MASE "
            f"{bt.get('model_mase_mean', float('nan')):.4f} ± {bt.get('model_mase_std', float('nan')):.4f}, "
            f"seasonal naive {bt.get('seasonal_naive_mase_mean', float('nan')):.4f}"
        )
    d = o.get("drift")
    if d:
        lines.append("")
        lines.append(
            f"Drift vs {d['reference_label']}: share {d['drift_share']:.2f} "
            f"({'DRIFT' if d['drift_detected'] else 'no drift'}; drifted: {', '.join(d['drifted_columns']) or 'none'})"
        )
    tr = o.get("training") or {}
    lines.append("")
    lines.append(
        f"Training: {tr.get('epochs_run')} epochs (best {tr.get('best_epoch')}) on {tr.get('device')}, "
        f"{tr.get('samples_per_second')} windows/s. Run `{o['run_id']}`, data digest `{o['data_digest']}`."
    )
    return "\n".join(lines)


def error_outcome(exc: SeqopsError, model: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "status": exc.kind,
        "exit_code": exc.exit_code,
        "model": model,
        "run_id": None,
        "version": None,
        "error": str(exc),
    }
    if hasattr(exc, "failures"):
        out["failures"] = exc.failures  # type: ignore[attr-defined]
        out["reports"] = exc.report_paths  # type: ignore[attr-defined]
    return out
