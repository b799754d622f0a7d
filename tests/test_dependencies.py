"""A resolver change must fail CI, not a user (shared/STACK.md)."""

from importlib.metadata import version

from packaging.version import Version


def test_pinned_versions_hold():
    assert Version(version("pandas")) < Version("3"), "evidently 0.7 cannot import under pandas 3"
    assert Version(version("fastapi")) < Version("0.155"), (
        "fastapi >= 0.155 breaks Prefect's server"
    )


def test_every_dependency_imports():
    import evidently  # noqa: F401
    import great_expectations  # noqa: F401
    import keras
    import mlflow  # noqa: F401
    import prefect  # noqa: F401
    import tensorflow as tf
    from evidently import Report  # noqa: F401
    from evidently.presets import DataDriftPreset  # noqa: F401

    assert keras.__version__.startswith("3.")
    assert tf.__version__


def test_prefect_local_server_runs_a_flow(prefect_server):
    from prefect import flow, task

    @task
    def add(a: int, b: int) -> int:
        return a + b

    @flow
    def tiny_flow() -> int:
        return add(2, 3)

    assert tiny_flow() == 5
