"""Many models from one config on Prefect's DaskTaskRunner (a local cluster of 2 workers)."""

from __future__ import annotations

import os

import pytest
import yaml

from tests.flows.helpers import invoke

pytestmark = pytest.mark.slow


def test_four_models_train_independently_on_a_local_dask_cluster(tmp_path, prefect_server):
    from components.synth import synth_panel
    from registry.ledger import Ledger, resolve_ledger_url

    frame = synth_panel(n_series=6, length=160, freq="D", season_length=7, noise=0.2, seed=3)
    frame.to_csv(tmp_path / "panel.csv", index=False)
    ids = sorted(frame["series_id"].unique())
    cfg = {
        "dask": {"n_workers": 2, "threads_per_worker": 1},
        "defaults": {
            "data": {"path": "panel.csv", "timestamp": "timestamp", "target": "value",
                     "series_id": "series_id", "frequency": "D"},
            "window": {"lookback": 14, "horizon": 4},
            "model": {"units": 8},
            "training": {"epochs": 2, "batch_size": 32, "seed": 1, "device": "cpu"},
            "evaluation": {"season_length": 7, "backtest_folds": 2},
            "drift": {"enabled": False},
            "gate": {"seasonal_naive_margin": 0.0, "champion_tolerance": 10.0},
        },
        "models": [
            {"name": "grp-a", "data": {"series": ids[0:2]}},
            {"name": "grp-b", "data": {"series": ids[2:4]}},
            {"name": "grp-c", "data": {"series": ids[4:6]}},
            {"name": "grp-bad", "data": {"series": ["no-such-series"]}},
        ],
    }  # fmt: skip
    path = tmp_path / "many.yaml"
    path.write_text(yaml.safe_dump(cfg))
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        code, out, err = invoke("retrain", "--config", str(path), "--json")
    finally:
        os.chdir(cwd)
    assert out is not None, err[-3000:]
    by = {o["model"]: o for o in out["models"]}
    assert set(by) == {"grp-a", "grp-b", "grp-c", "grp-bad"}
    assert code == 2 and out["exit_code"] == 2  # the worst model's code: bad input
    assert by["grp-bad"]["status"] == "bad_data" and "no-such-series" in by["grp-bad"]["error"]
    assert [f["model"] for f in out["failed"] if f["exit_code"] == 2] == ["grp-bad"]
    ledger = Ledger(resolve_ledger_url(None, tmp_path / ".seqops"))
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / '.seqops' / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    for name in ("grp-a", "grp-b", "grp-c"):
        assert by[name]["version"] == "1", (name, by[name])
        mv = client.get_model_version(name, "1")
        assert mv.tags["seqops.gate"] in ("passed", "rejected")
        assert set(by[name]["metrics"]) >= {"model", "seasonal_naive"}
        if mv.tags["seqops.gate"] == "passed":
            assert ledger.aliases(name).get("challenger") == "1"
    assert not client.search_registered_models("name = 'grp-bad'")
