"""Training: device choice, seeding, early stopping, divergence detection, terminal progress."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from components.config import JobConfig
from components.errors import ConfigError, RunFailedError, TrainingDivergedError
from components.model import Forecaster, build_forecaster, cudnn_blockers
from components.windows import WindowSet, make_dataset

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeviceInfo:
    kind: str  # "gpu" or "cpu"
    name: str
    cudnn: bool
    mixed_precision: bool


def decide_device(job: JobConfig, gpu_names: list[str]) -> DeviceInfo:
    """The device decision, given the GPUs visible after honouring ``training.device``.

    On a GPU, a model config that falls off the cuDNN kernel is refused (exit 2) unless
    ``training.allow_slow_gpu_kernel`` is set, in which case it is warned about loudly.
    """
    t = job.training
    if t.device == "gpu" and not gpu_names:
        raise RunFailedError("training.device is 'gpu' but TensorFlow sees no GPU")
    on_gpu = bool(gpu_names)
    blockers = cudnn_blockers(job.model)
    if on_gpu and blockers:
        msg = (
            "this model config falls off the cuDNN LSTM kernel, which makes GPU training many times "
            "slower (measured 15-20x on an H100, bench/results/gpu_lstm.md): " + "; ".join(blockers)
        )
        if not t.allow_slow_gpu_kernel:
            raise ConfigError(
                msg + ". Fix the config, or set training.allow_slow_gpu_kernel: true."
            )
        log.warning("!!! %s. Continuing because training.allow_slow_gpu_kernel is true. !!!", msg)
    if t.mixed_precision and not on_gpu:
        log.info("training.mixed_precision ignored: no GPU")
    return DeviceInfo(
        kind="gpu" if on_gpu else "cpu",
        name=gpu_names[0] if on_gpu else "CPU",
        cudnn=on_gpu and not blockers,
        mixed_precision=bool(on_gpu and t.mixed_precision),
    )


def configure_device(job: JobConfig) -> DeviceInfo:
    """Apply the device decision to TensorFlow/Keras: hide GPUs for ``device: cpu``, set the
    dtype policy (mixed_float16 only on a GPU when asked)."""
    import keras
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if job.training.device == "cpu" and gpus:
        try:
            tf.config.set_visible_devices([], "GPU")
            gpus = []
        except RuntimeError:
            log.warning(
                "TensorFlow already initialised the GPU; cannot hide it for training.device=cpu"
            )
    info = decide_device(job, [g.name for g in gpus])
    keras.mixed_precision.set_global_policy("mixed_float16" if info.mixed_precision else "float32")
    return info


def _progress_callback(total_epochs: int, n_windows: int):
    import keras

    class Progress(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self._t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            dt = time.perf_counter() - self._t0
            log.info(
                "epoch %d/%d  loss %.5f  val_loss %.5f  %.1fs  %.0f windows/s",
                epoch + 1,
                total_epochs,
                logs.get("loss", float("nan")),
                logs.get("val_loss", float("nan")),
                dt,
                n_windows / dt if dt > 0 else float("nan"),
            )

    return Progress()


@dataclass
class TrainResult:
    forecaster: Forecaster
    history: dict[str, list[float]]
    epochs_run: int
    best_epoch: int
    seconds: float
    samples_per_second: float
    device: DeviceInfo
    params: dict[str, object] = field(default_factory=dict)


def train(
    job: JobConfig,
    train_ws: WindowSet,
    val_ws: WindowSet,
    mean: np.ndarray,
    std: np.ndarray,
    device: DeviceInfo,
    *,
    epochs: int | None = None,
) -> TrainResult:
    """Fit the LSTM. Raises TrainingDivergedError when the loss stops being finite."""
    import keras
    import tensorflow as tf

    t = job.training
    keras.utils.set_random_seed(t.seed)
    if t.deterministic:
        tf.config.experimental.enable_op_determinism()
    epochs = epochs or t.epochs
    fc = build_forecaster(
        job.model, lookback=job.window.lookback, horizon=job.window.horizon, mean=mean, std=std
    )
    model = fc.train_model
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=t.learning_rate), loss="mse")
    kw: dict[str, Any] = dict(
        target_mean=float(mean[0]), target_std=float(std[0]), batch_size=t.batch_size, seed=t.seed
    )
    ds_train = make_dataset(train_ws, shuffle=True, **kw)
    ds_val = make_dataset(val_ws, shuffle=False, **kw)
    n_windows = len(train_ws)
    if t.max_steps_per_epoch:
        ds_train = ds_train.take(t.max_steps_per_epoch)
        n_windows = min(n_windows, t.max_steps_per_epoch * t.batch_size)
    callbacks = [keras.callbacks.TerminateOnNaN(), _progress_callback(epochs, n_windows)]
    es = t.early_stopping
    if es.enabled:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss",
                patience=es.patience,
                min_delta=es.min_delta,
                restore_best_weights=True,
            )
        )
    log.info(
        "training on %s: %d train / %d val windows, %d epochs max, batch %d",
        device.name,
        len(train_ws),
        len(val_ws),
        epochs,
        t.batch_size,
    )
    t0 = time.perf_counter()
    hist = model.fit(
        ds_train,
        validation_data=ds_val,
        epochs=epochs,
        verbose=0,
        callbacks=callbacks,
        shuffle=False,
    )
    seconds = time.perf_counter() - t0
    history = {k: [float(x) for x in v] for k, v in hist.history.items()}
    losses = np.asarray(history.get("loss", []), dtype=np.float64)
    weights_ok = all(np.isfinite(w).all() for w in model.get_weights())
    if losses.size == 0 or not np.isfinite(losses).all() or not weights_ok:
        raise TrainingDivergedError(
            f"training diverged: loss became non-finite (history {losses.tolist()}); "
            "lower training.learning_rate or check the data scale"
        )
    val = history.get("val_loss", [])
    best_epoch = int(np.nanargmin(val)) + 1 if val else len(losses)
    epochs_run = len(losses)
    return TrainResult(
        forecaster=fc,
        history=history,
        epochs_run=epochs_run,
        best_epoch=best_epoch,
        seconds=seconds,
        samples_per_second=n_windows * epochs_run / seconds if seconds > 0 else float("nan"),
        device=device,
        params={"n_params": int(model.count_params())},
    )
