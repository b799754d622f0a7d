import numpy as np
import pytest

from components.config import ModelConfig, parse_config
from components.errors import TrainingDivergedError
from components.model import build_forecaster, cudnn_blockers, load_keras


def test_cudnn_blockers():
    assert cudnn_blockers(ModelConfig()) == []
    reasons = cudnn_blockers(ModelConfig(activation="relu", recurrent_dropout=0.1, unroll=True))
    assert len(reasons) == 3 and "recurrent_dropout" in reasons[1]


def test_scaling_lives_inside_the_served_model(tmp_path):
    mean = np.array([400.0, 10.0], np.float32)
    std = np.array([20.0, 3.0], np.float32)
    fc = build_forecaster(ModelConfig(units=4), lookback=6, horizon=3, mean=mean, std=std)
    x = np.random.default_rng(0).normal(400, 20, size=(5, 6, 2)).astype(np.float32)
    scaled = fc.train_model.predict(x, verbose=0)
    raw = fc.serve_model.predict(x, verbose=0)
    np.testing.assert_allclose(raw, scaled * 20.0 + 400.0, rtol=1e-5)
    # the anchor makes forecasts level-equivariant: shifting the target channel by c shifts the
    # forecast by exactly c (so trending levels outside the training range are handled)
    shifted = x.copy()
    shifted[:, :, 0] += 75.0
    np.testing.assert_allclose(
        fc.serve_model.predict(shifted, verbose=0), raw + 75.0, rtol=1e-4, atol=1e-2
    )

    path = tmp_path / "m.keras"
    fc.serve_model.save(path)
    loaded = load_keras(str(path))
    np.testing.assert_allclose(loaded.predict(x, verbose=0), raw, rtol=1e-5)


def test_divergence_is_detected(tiny_panel_frame):
    from components.data import to_panel
    from components.training import configure_device, train
    from components.windows import build_windows, fit_scaler, split_panel

    job = parse_config(
        {
            "name": "diverge",
            "data": {
                "path": "x",
                "timestamp": "timestamp",
                "target": "value",
                "series_id": "series_id",
            },
            "window": {"lookback": 8, "horizon": 2},
            "model": {"units": 4},
            "training": {"epochs": 3, "learning_rate": 1e30, "device": "cpu"},
        }
    )
    panel = to_panel(tiny_panel_frame, job.data, job.missing)
    segs = split_panel(panel, job.window, job.split)
    mean, std = fit_scaler(panel, segs)
    tr, va = (build_windows(panel, segs, s, job.window) for s in ("train", "val"))
    with pytest.raises(TrainingDivergedError, match="diverged"):
        train(job, tr, va, mean, std, configure_device(job))


def _job(**model_and_training):
    model = {k: v for k, v in model_and_training.items() if k in ModelConfig.model_fields}
    training = {k: v for k, v in model_and_training.items() if k not in model}
    return parse_config(
        {
            "name": "d",
            "data": {"path": "x", "timestamp": "t", "target": "y"},
            "window": {"lookback": 4, "horizon": 2},
            "model": model,
            "training": training,
        }
    )


def test_gpu_run_off_the_cudnn_path_is_refused_or_warned(caplog):
    from components.errors import ConfigError, RunFailedError
    from components.training import decide_device

    gpu = ["/physical_device:GPU:0"]
    ok = decide_device(_job(mixed_precision=True), gpu)
    assert ok.kind == "gpu" and ok.cudnn and ok.mixed_precision
    with pytest.raises(ConfigError, match="recurrent_dropout=0.2.*allow_slow_gpu_kernel"):
        decide_device(_job(recurrent_dropout=0.2), gpu)
    slow = decide_device(_job(recurrent_dropout=0.2, allow_slow_gpu_kernel=True), gpu)
    assert slow.kind == "gpu" and not slow.cudnn
    assert "falls off the cuDNN LSTM kernel" in caplog.text
    cpu = decide_device(_job(recurrent_dropout=0.2, mixed_precision=True), [])
    assert cpu.kind == "cpu" and not cpu.mixed_precision  # the kernel rule is about GPUs only
    with pytest.raises(RunFailedError, match="sees no GPU"):
        decide_device(_job(device="gpu"), [])


@pytest.mark.gpu
def test_training_uses_the_gpu_when_present(tiny_panel_frame):
    import tensorflow as tf

    if not tf.config.list_physical_devices("GPU"):
        pytest.skip("no GPU visible to TensorFlow")
    from components.training import configure_device

    info = configure_device(_job())
    assert info.kind == "gpu" and info.cudnn
