"""Custom Keras layers shipped inside every seqops model.

Registered under the ``seqops`` package so ``keras.models.load_model(..., safe_mode=True)``
rebuilds them without executing arbitrary code. This module imports only keras; the MLflow
pyfunc wrapper ships it with each logged model.
"""

from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="seqops")
class AnchorLast(keras.layers.Layer):
    """Subtract the window's last (scaled) target value from the target channel.

    Returns ``(relative_window, anchor)``; the network learns changes relative to the last
    observation, so it extrapolates trending levels it never saw in training.
    """

    def __init__(self, target_index: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.target_index = target_index

    def call(self, z):
        anchor = z[:, -1, self.target_index : self.target_index + 1]  # (B, 1)
        n_features = ops.shape(z)[-1]
        mask = ops.one_hot(self.target_index, n_features, dtype=z.dtype)  # (F,)
        rel = z - anchor[:, None, :] * mask
        return rel, anchor

    def compute_output_shape(self, input_shape):
        return input_shape, (input_shape[0], 1)

    def get_config(self):
        return {**super().get_config(), "target_index": self.target_index}


@keras.saving.register_keras_serializable(package="seqops")
class AddAnchor(keras.layers.Layer):
    """``delta + anchor`` with the (B, 1) anchor broadcast over the horizon."""

    def call(self, inputs):
        delta, anchor = inputs
        return delta + ops.cast(anchor, delta.dtype)

    def compute_output_shape(self, input_shapes):
        return input_shapes[0]
