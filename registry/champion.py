"""Loading registered versions: the model (no pickle) and the training reference it was built on."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from registry.aliases import get_alias_version

log = logging.getLogger(__name__)

REFERENCE_ARTIFACT = "reference/drift_reference.parquet"


@dataclass
class Champion:
    """A loaded registered version (the champion, or a candidate)."""

    version: str
    run_id: str
    predict: Callable[[np.ndarray], np.ndarray]  # (n, lookback, F) raw -> (n, horizon)
    lookback: int
    n_features: int
    horizon: int
    reference: pd.DataFrame | None


def load_version(
    model: str, version: str, run_id: str, *, with_reference: bool = False
) -> Champion:
    import mlflow

    os.environ.setdefault("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
    pyfunc = mlflow.pyfunc.load_model(f"models:/{model}/{version}")
    inner = pyfunc.unwrap_python_model()
    ref = None
    if with_reference:
        try:
            with tempfile.TemporaryDirectory() as tmp:
                p = mlflow.artifacts.download_artifacts(
                    run_id=run_id, artifact_path=REFERENCE_ARTIFACT, dst_path=tmp
                )
                ref = pd.read_parquet(Path(p))
        except Exception as exc:  # an older version without a reference
            log.warning("version %s has no drift reference (%s)", version, exc)
    return Champion(
        version=str(version),
        run_id=run_id,
        predict=lambda x: pyfunc.predict(np.asarray(x, np.float32)),
        lookback=int(inner.lookback),
        n_features=int(inner.n_features),
        horizon=int(inner.model.output_shape[-1]),
        reference=ref,
    )


def load_champion(client, model: str) -> Champion | None:
    """Load ``models:/<model>@champion`` and its drift reference, or None."""
    mv = get_alias_version(client, model, "champion")
    if mv is None:
        return None
    ch = load_version(model, str(mv.version), mv.run_id, with_reference=True)
    log.info(
        "champion is version %s (lookback %d, %d features)", ch.version, ch.lookback, ch.n_features
    )
    return ch
