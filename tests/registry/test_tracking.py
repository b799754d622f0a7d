import os

from components.config import parse_config
from registry.tracking import configure, resolve_tracking_uri


def _job(tmp_path, name, **tracking):
    return parse_config(
        {
            "name": name,
            "data": {"path": "x", "timestamp": "t", "target": "y"},
            "window": {"lookback": 4, "horizon": 2},
            "state_dir": str(tmp_path / name),
            "tracking": tracking,
        }
    )


def test_precedence_env_then_config_then_embedded(tmp_path, monkeypatch):
    job = _job(tmp_path, "a")
    assert resolve_tracking_uri(job) == f"sqlite:///{(tmp_path / 'a' / 'mlflow.db').resolve()}"
    assert (
        resolve_tracking_uri(_job(tmp_path, "b", uri="http://127.0.0.1:5999"))
        == "http://127.0.0.1:5999"
    )
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5888")
    assert (
        resolve_tracking_uri(_job(tmp_path, "b", uri="http://127.0.0.1:5999"))
        == "http://127.0.0.1:5888"
    )


def test_configure_leaves_the_environment_alone(tmp_path):
    import mlflow

    before = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    first = configure(_job(tmp_path, "a"))
    assert {k: os.environ.get(k) for k in before} == before == dict.fromkeys(before)
    assert mlflow.get_tracking_uri() == first == mlflow.get_registry_uri()
    second = configure(_job(tmp_path, "b"))  # a second job in the same process gets its own store
    assert second != first and second.endswith("/b/mlflow.db")
    assert (tmp_path / "a" / "artifacts").is_dir() and mlflow.get_experiment_by_name(
        "seqops/b"
    ) is not None
