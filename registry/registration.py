"""One MLflow run per retrain, and the registered version that carries its outcomes as tags."""

from __future__ import annotations

import logging
import subprocess
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

PYFUNC_CODE = Path(__file__).with_name("forecaster_pyfunc.py")


def git_commit(cwd: Path | None = None) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    sha = out.stdout.strip()
    return sha if out.returncode == 0 and len(sha) == 40 else None


def flatten(d: Mapping[str, object], prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


@dataclass
class RunPayload:
    """Everything a retrain hands to MLflow."""

    run_name: str
    params: dict[str, object]
    metrics: dict[str, float]
    step_metrics: dict[str, list[float]]  # name -> values by step (epoch, horizon step, fold)
    run_tags: dict[str, str]
    frame: pd.DataFrame
    data_source: str
    target: str
    artifact_dirs: dict[str, Path]  # artifact path -> local dir
    reference: pd.DataFrame
    keras_path: Path
    example_x: np.ndarray
    example_y: np.ndarray
    extra_files: dict[str, Path] = field(default_factory=dict)  # artifact path -> file


def _pip_requirements() -> list[str]:
    from importlib.metadata import PackageNotFoundError, version

    reqs = []
    for dist in ("mlflow", "keras", "numpy"):
        reqs.append(f"{dist}=={version(dist)}")
    for dist in ("tensorflow", "tensorflow-cpu"):
        try:
            reqs.append(f"{dist}=={version(dist)}")
            break
        except PackageNotFoundError:
            continue
    return reqs


def log_run(p: RunPayload) -> tuple[str, str]:
    """Create the MLflow run with everything in it; returns (run_id, model_uri)."""
    import mlflow
    from mlflow.models import infer_signature

    import components.layers as layers_mod
    from registry.tracking import owner_tags

    with warnings.catch_warnings(), mlflow.start_run(run_name=p.run_name, tags=owner_tags()) as run:
        # MLflow warns about input examples/type hints we deliberately omit (3-D input examples
        # break log_model, see STACK.md; the explicit signature validates inputs instead).
        warnings.simplefilter("ignore", UserWarning)
        mlflow.log_params({k: str(v)[:500] for k, v in p.params.items()})
        from registry.promotion import crash_point

        crash_point("during_log_run")  # the crash tests kill the process here
        mlflow.log_metrics(
            {k: float(v) for k, v in p.metrics.items() if v is not None and np.isfinite(v)}
        )
        for name, values in p.step_metrics.items():
            for step, v in enumerate(values, start=1):
                if v is not None and np.isfinite(v):
                    mlflow.log_metric(name, float(v), step=step)
        ds = mlflow.data.from_pandas(  # type: ignore[attr-defined]
            p.frame, source=p.data_source, name=Path(p.data_source).name, targets=p.target
        )
        mlflow.log_input(ds, context="training")
        for apath, d in p.artifact_dirs.items():
            if d.exists():
                mlflow.log_artifacts(str(d), artifact_path=apath)
        for apath, f in p.extra_files.items():
            mlflow.log_artifact(str(f), artifact_path=apath)
        ref_dir = p.keras_path.parent / "reference"
        ref_dir.mkdir(exist_ok=True)
        p.reference.to_parquet(ref_dir / "drift_reference.parquet", index=False)
        mlflow.log_artifacts(str(ref_dir), artifact_path="reference")
        signature = infer_signature(p.example_x.astype(np.float32), p.example_y.astype(np.float32))
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(PYFUNC_CODE),
            artifacts={"keras_model": str(p.keras_path)},
            code_paths=[layers_mod.__file__],
            signature=signature,
            pip_requirements=_pip_requirements(),
        )
        mlflow.set_tags(p.run_tags)
        log.info("mlflow run %s logged (model %s)", run.info.run_id, info.model_uri)
        return run.info.run_id, info.model_uri


def register_version(
    client, *, name: str, model_uri: str, run_id: str, tags: dict[str, str], description: str
) -> str:
    """Create the registered version with all its tags at once; idempotent per run id."""
    import mlflow
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException:
        try:
            client.create_registered_model(
                name, description="LSTM forecaster trained and gated by seqops."
            )
        except MlflowException:
            client.get_registered_model(name)  # created concurrently
    existing = client.search_model_versions(f"name='{name}' and run_id='{run_id}'")
    if existing:
        mv = existing[0]
        log.info("version %s already registered for run %s", mv.version, run_id)
    else:
        mv = mlflow.register_model(model_uri=model_uri, name=name, tags=tags)
    client.update_model_version(name, mv.version, description=description)
    return str(mv.version)


def version_tags(
    *,
    validation: dict[str, object],
    metrics: dict[str, dict[str, object]],
    gate: dict[str, object],
    drift: dict[str, object] | None,
    config_hash: str,
    data_digest: str,
    commit: str | None,
    lookback: int,
    horizon: int,
    features: list[str],
    run_id: str,
    device: str,
) -> dict[str, str]:
    t: dict[str, str] = {
        "seqops.validation": "passed",
        "seqops.validation.expectations": str(validation.get("evaluated")),
        "seqops.gate": "passed" if gate["passed"] else "rejected",
        "seqops.gate.metric": str(gate["metric"]),
        "seqops.gate.reasons": "; ".join(gate["reasons"])[:4500] or "none",  # type: ignore[arg-type]
        "seqops.config_hash": config_hash,
        "seqops.data_digest": data_digest,
        "seqops.git_commit": commit or "unknown",
        "seqops.window.lookback": str(lookback),
        "seqops.window.horizon": str(horizon),
        "seqops.features": ",".join(features),
        "seqops.run_id": run_id,
        "seqops.train.device": device,
        "seqops.champion.compared": str(gate.get("champion_version") or "none"),
    }
    for who, table in metrics.items():
        for m in ("mase", "mae", "rmse", "smape"):
            if m in table:
                t[f"seqops.eval.{who}.{m}"] = f"{float(table[m]):.6g}"  # type: ignore[arg-type]
    if drift is not None:
        t["seqops.drift"] = "detected" if drift["drift_detected"] else "none"
        t["seqops.drift.share"] = f"{float(drift['drift_share']):.3f}"  # type: ignore[arg-type]
        t["seqops.drift.columns"] = ",".join(drift["drifted_columns"]) or "none"  # type: ignore[arg-type]
        t["seqops.drift.reference"] = str(drift["reference_label"])
    else:
        t["seqops.drift"] = "skipped"
    return t
