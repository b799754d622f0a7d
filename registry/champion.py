"""The current champion: its version, its model, and the training reference it was built on."""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from registry.aliases import get_alias_version

log = logging.getLogger(__name__)

REFERENCE_ARTIFACT = "reference/drift_reference.parquet"


@dataclass
class Champion:
    version: str
    run_id: str
    predict: object  # callable: (n, L, F) -> (n, H)
    lookback: int
    n_features: int
    horizon: int
    reference: pd.DataFrame | None


def load_champion(client, model: str) -> Champion | None:
    """Load ``models:/<model>@champion`` (no pickle) and its drift reference, or None."""
    import mlflow

    mv = get_alias_version(client, model, "champion")
    if mv is None:
        return None
    os.environ.setdefault("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
    pyfunc = mlflow.pyfunc.load_model(f"models:/{model}@champion")
    inner = pyfunc.unwrap_python_model()
    ref = None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            p = mlflow.artifacts.download_artifacts(
                run_id=mv.run_id, artifact_path=REFERENCE_ARTIFACT, dst_path=tmp
            )
            ref = pd.read_parquet(Path(p))
    except Exception as exc:  # an older champion without a reference
        log.warning("champion v%s has no drift reference (%s)", mv.version, exc)
    horizon = int(inner.model.output_shape[-1])
    log.info(
        "champion is version %s (lookback %d, %d features)",
        mv.version,
        inner.lookback,
        inner.n_features,
    )
    return Champion(
        version=str(mv.version),
        run_id=mv.run_id,
        predict=lambda x: pyfunc.predict(np.asarray(x, np.float32)),
        lookback=int(inner.lookback),
        n_features=int(inner.n_features),
        horizon=horizon,
        reference=ref,
    )
