"""The LSTM forecaster.

Two Keras models share their weights:
- ``train_model``: raw window (B, lookback, F) -> scaled forecast (B, horizon); trained on
  targets scaled with the train-split statistics.
- ``serve_model``: the same plus a ``Rescaling`` back to original units. It is what gets saved,
  logged and served: raw windows in, forecasts in original units out, scaling inside.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from components.config import ModelConfig


def cudnn_blockers(cfg: ModelConfig) -> list[str]:
    """Reasons this config falls off the cuDNN LSTM kernel (empty when it stays on it)."""
    reasons = []
    if cfg.activation != "tanh":
        reasons.append(f"model.activation={cfg.activation!r} (cuDNN needs 'tanh')")
    if cfg.recurrent_dropout > 0:
        reasons.append(f"model.recurrent_dropout={cfg.recurrent_dropout} (cuDNN needs 0)")
    if cfg.unroll:
        reasons.append("model.unroll=true (cuDNN needs false)")
    return reasons


@dataclass
class Forecaster:
    train_model: Any
    serve_model: Any


def build_forecaster(
    cfg: ModelConfig,
    *,
    lookback: int,
    horizon: int,
    mean: np.ndarray,
    std: np.ndarray,
    use_cudnn: str | bool = "auto",
) -> Forecaster:
    import keras

    from components.layers import AddAnchor, AnchorLast

    n_features = int(mean.shape[0])
    inputs = keras.Input(shape=(lookback, n_features), name="window", dtype="float32")
    z = keras.layers.Normalization(
        axis=-1,
        mean=mean.tolist(),
        variance=(std.astype(np.float64) ** 2).tolist(),
        name="scale_in",
        dtype="float32",
    )(inputs)
    rel, anchor = AnchorLast(target_index=0, name="anchor", dtype="float32")(z)
    h = rel
    for i in range(cfg.layers):
        h = keras.layers.LSTM(
            cfg.units,
            activation=cfg.activation,
            recurrent_activation="sigmoid",
            dropout=cfg.dropout,
            recurrent_dropout=cfg.recurrent_dropout,
            unroll=cfg.unroll,
            use_bias=True,
            return_sequences=i < cfg.layers - 1,
            use_cudnn=use_cudnn,
            name=f"lstm_{i}",
        )(h)
    delta = keras.layers.Dense(horizon, name="delta", dtype="float32")(h)
    scaled = AddAnchor(name="forecast_scaled", dtype="float32")([delta, anchor])
    train_model = keras.Model(inputs, scaled, name="seqops_lstm_train")
    out = keras.layers.Rescaling(
        scale=float(std[0]), offset=float(mean[0]), name="scale_out", dtype="float32"
    )(scaled)
    serve_model = keras.Model(inputs, out, name="seqops_lstm")
    return Forecaster(train_model=train_model, serve_model=serve_model)


def load_keras(path: str):
    """Load a saved seqops model with Keras safe mode on (no arbitrary code execution)."""
    import keras

    import components.layers  # noqa: F401  (registers the custom layers)

    return keras.models.load_model(path, safe_mode=True, compile=False)
