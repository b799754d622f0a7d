"""Shared fixtures: tiny synthetic data, config writers, one Prefect test server per session.

Set SEQOPS_REQUIRE_SERVICES=1 (``.ci/run`` does) to turn "PostgreSQL not reachable" skips into
failures, so CI can never pass by skipping the production-backend tests.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

# Prefect runs logging.config.dictConfig (at import and when its test server starts), which
# closes every existing handler. absl's handler (imported with TensorFlow) closes its stream on
# close unless it is the *current* sys.stderr -- under pytest it holds pytest's capture file, and
# closing that kills the session. Point it at the process stderr, which absl never closes.
import absl.logging  # noqa: E402
import prefect  # noqa: E402,F401

absl.logging.get_absl_handler().python_handler.stream = sys.__stderr__

REPO = Path(__file__).resolve().parents[1]


def service_up(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int) -> None:
    if service_up(host, port):
        return
    msg = f"{name} not reachable at {host}:{port}"
    if os.environ.get("SEQOPS_REQUIRE_SERVICES") == "1":
        pytest.fail(msg + " and SEQOPS_REQUIRE_SERVICES=1")
    pytest.skip(msg)


@pytest.fixture(scope="session")
def prefect_server():
    """One temporary Prefect server (SQLite) for the whole session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(autouse=True)
def _no_ambient_tracking():
    """No tracking URI from the environment, and MLflow's process-global tracking and registry
    URIs (set by every retrain) restored afterwards, so no test reads another test's store."""
    # (monkeypatch.delenv records nothing for an absent variable, so a value MLflow exports during
    # the test would survive it: save and restore by hand)
    saved = {k: os.environ.pop(k, None) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    yield
    for key, value in saved.items():
        os.environ.pop(key, None)
        if value is not None:
            os.environ[key] = value
    if "mlflow" in sys.modules:
        import mlflow.tracking._model_registry.utils as registry_utils
        import mlflow.tracking._tracking_service.utils as tracking_utils

        tracking_utils._tracking_uri = None
        registry_utils._registry_uri = None


def tiny_config(tmp_path: Path, data_path: Path, **overrides) -> dict:
    """The smallest sensible job: short windows, a few epochs, a tiny LSTM, CPU."""
    cfg = {
        "name": "tiny",
        "data": {
            "path": str(data_path),
            "timestamp": "timestamp",
            "target": "value",
            "series_id": "series_id",
            "covariates": ["temperature"],
            "frequency": "D",
        },
        "window": {"lookback": 14, "horizon": 4},
        "model": {"units": 8},
        "training": {
            "epochs": 3,
            "batch_size": 32,
            "seed": 1,
            "device": "cpu",
            "early_stopping": {"patience": 2},
        },
        "evaluation": {"season_length": 7, "backtest_folds": 2},
        "drift": {"sample_size": 1000},
        "state_dir": str(tmp_path / ".seqops"),
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    return cfg


def write_yaml(path: Path, cfg: dict) -> Path:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def tiny_panel_frame():
    from components.synth import synth_panel

    return synth_panel(n_series=3, length=160, freq="D", season_length=7, noise=0.2, seed=3)


@pytest.fixture
def tiny_data(tmp_path, tiny_panel_frame) -> Path:
    p = tmp_path / "panel.csv"
    tiny_panel_frame.to_csv(p, index=False)
    return p
