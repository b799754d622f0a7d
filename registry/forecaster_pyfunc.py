"""MLflow pyfunc wrapper for a seqops LSTM, logged as *models from code* (no pickle).

``mlflow.pyfunc.load_model("models:/<name>@<alias>").predict(x)`` takes raw windows of shape
(n, lookback, n_features) in original units (feature 0 is the target) and returns forecasts of
shape (n, horizon) in original units; the scaling lives inside the Keras model. Inference runs
through a ``tf.function`` with a fixed input signature (no eager per-call overhead).
"""

import mlflow
import numpy as np
from mlflow.pyfunc import PythonModel


class SeqopsForecaster(PythonModel):
    def load_context(self, context):
        import keras
        import tensorflow as tf

        try:
            import components.layers  # noqa: F401  (seqops installed)
        except ImportError:  # pragma: no cover - loaded where only the shipped code exists
            import layers  # noqa: F401

        self.model = keras.models.load_model(
            context.artifacts["keras_model"], safe_mode=True, compile=False
        )
        _, self.lookback, self.n_features = self.model.input_shape
        spec = tf.TensorSpec([None, self.lookback, self.n_features], tf.float32)
        self._fn = tf.function(lambda x: self.model(x, training=False), input_signature=[spec])

    # np.ndarray: MLflow infers no schema from it and validates against the explicit tensor
    # signature logged with the model instead.
    def predict(self, context, model_input: np.ndarray, params=None) -> np.ndarray:
        x = np.asarray(model_input, dtype=np.float32)
        if x.ndim == 2 and self.n_features == 1:
            x = x[..., None]
        if x.ndim != 3 or x.shape[1:] != (self.lookback, self.n_features):
            raise ValueError(
                f"expected windows of shape (n, {self.lookback}, {self.n_features}), got {x.shape}"
            )
        if not np.isfinite(x).all():
            raise ValueError("windows contain NaN or inf")
        return self._fn(x).numpy()


mlflow.models.set_model(SeqopsForecaster())
