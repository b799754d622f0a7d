"""Models as the gateway serves them: loaded by version from MLflow, called through compiled
TensorFlow concrete functions (no eager per-request work, no per-call signature matching),
checked and warmed up once at load.

- batches (micro-batching) go through a graph function whose batch size is free;
- one window (the latency path) goes through an XLA-compiled function for a batch of exactly
  one, used only when its answers match the graph function's at load (else a warning, and the
  graph function serves everything).

Calling the concrete function instead of the ``tf.function`` skips its Python-side argument
binding, which on 2 cores measured as more than the LSTM itself (bench/results/gateway.md). The
concrete function's own ``__call__`` still binds and casts its arguments on every call (about a
third of a one-window call); ``_flat`` calls its atomic function with the tensor and captures
directly, and is used only when it answers like the concrete function at load.
"""

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
    xla: bool = False  # whether single windows go through the XLA-compiled function


def _concrete(keras_model, batch: int | None, lookback: int, n_features: int, xla: bool):
    import tensorflow as tf

    spec = tf.TensorSpec([batch, lookback, n_features], tf.float32)
    fn = tf.function(lambda x: keras_model(x, training=False), jit_compile=xla)
    return fn.get_concrete_function(spec)


def _flat(cf) -> Callable[[np.ndarray], np.ndarray]:
    """The concrete function called without its per-call argument binding: one float32 tensor
    plus the captured variables straight to the atomic function (TensorFlow 2.15+)."""
    import tensorflow as tf

    atomic, captures = cf.inference_fn, tuple(cf.captured_inputs)

    def call(x: np.ndarray) -> np.ndarray:
        return atomic.call_flat(tf.constant(x), *captures)[0].numpy()

    return call


def load_served(model: str, version: str, *, xla: bool = True) -> ServedModel:
    import mlflow

    os.environ.setdefault("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
    t0 = time.perf_counter()
    pyfunc = mlflow.pyfunc.load_model(f"models:/{model}/{version}")
    inner = pyfunc.unwrap_python_model()
    keras_model = inner.model
    lookback, n_features = int(inner.lookback), int(inner.n_features)
    horizon = int(keras_model.output_shape[-1])
    batched = _concrete(keras_model, None, lookback, n_features, xla=False)

    # check against the pyfunc itself, on a probe that is not all zeros (scaling layers)
    probe = np.linspace(1.0, 2.0, lookback * n_features, dtype=np.float32)
    probe = probe.reshape(1, lookback, n_features)
    want = np.asarray(inner.predict(None, probe))
    tol = 1e-4 * max(1.0, float(np.abs(want).max()))

    def same(got: np.ndarray) -> bool:
        return got.shape == want.shape and bool(np.allclose(got, want, rtol=1e-4, atol=tol))

    if not same(batched(probe).numpy()):
        raise RuntimeError(f"{model} v{version}: the serving function disagrees with the pyfunc")
    many = single = lambda x: batched(x).numpy()  # noqa: E731
    try:
        fast_many = _flat(batched)
        if same(fast_many(probe)):
            many = single = fast_many
    except Exception as exc:  # noqa: BLE001 - a TensorFlow without the flat call: the plain one
        log.info("%s v%s: plain concrete-function calls (%s)", model, version, exc)
    use_xla = False
    if xla:
        try:
            compiled = _concrete(keras_model, 1, lookback, n_features, xla=True)
            got = compiled(probe).numpy()
            if not same(got):
                raise ValueError(f"answers differ from the pyfunc's by {np.abs(got - want).max()}")
            single, use_xla = (lambda x: compiled(x).numpy()), True  # noqa: E731
            fast = _flat(compiled)
            if same(fast(probe)):
                single = fast
        except Exception as exc:  # noqa: BLE001 - any XLA failure means: serve the graph function
            log.warning(
                "%s v%s: XLA not used (%s); serving the graph function", model, version, exc
            )

    def predict(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 3 or x.shape[1:] != (lookback, n_features):
            raise ValueError(
                f"expected windows of shape (n, {lookback}, {n_features}), got {x.shape}"
            )
        if not np.isfinite(x).all():
            raise ValueError("windows contain NaN or inf")
        return (single if x.shape[0] == 1 else many)(x).astype(np.float64)

    m = ServedModel(
        str(version),
        lookback,
        n_features,
        horizon,
        predict,
        time.perf_counter() - t0,
        xla=use_xla,
    )
    log.info(
        "loaded %s v%s (lookback %d, horizon %d, %s) in %.2f s",
        model,
        version,
        lookback,
        horizon,
        "XLA for one window" if m.xla else "graph function",
        m.load_s,
    )
    return m
