"""Models as the gateway serves them: loaded by version from MLflow, called through the pyfunc's
compiled ``tf.function`` (fixed input signature, no eager per-request overhead), warmed up once."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServedModel:
    version: str
    lookback: int
    n_features: int
    horizon: int
    predict: Callable[[np.ndarray], np.ndarray]  # (n, lookback, F) float32 -> (n, horizon)
    load_s: float


def load_served(model: str, version: str) -> ServedModel:
    import mlflow

    os.environ.setdefault("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
    t0 = time.perf_counter()
    pyfunc = mlflow.pyfunc.load_model(f"models:/{model}/{version}")
    inner = pyfunc.unwrap_python_model()
    lookback, n_features = int(inner.lookback), int(inner.n_features)
    horizon = int(inner.model.output_shape[-1])

    def predict(x: np.ndarray) -> np.ndarray:
        return np.asarray(inner.predict(None, x), dtype=np.float64)

    predict(np.zeros((1, lookback, n_features), np.float32))  # trace the tf.function now
    m = ServedModel(str(version), lookback, n_features, horizon, predict, time.perf_counter() - t0)
    log.info(
        "loaded %s v%s (lookback %d, horizon %d) in %.2f s",
        model,
        version,
        lookback,
        horizon,
        m.load_s,
    )
    return m
