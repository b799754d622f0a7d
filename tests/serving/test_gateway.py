"""The gateway as a real process on loopback: validation, shadow isolation, reload, durability."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.serving.conftest import Traffic, in_dir

pytestmark = pytest.mark.slow

WINDOW = [float(i % 7) + 10.0 for i in range(14)]


def _ledger(store):
    from registry.ledger import Ledger, resolve_ledger_url

    return Ledger(resolve_ledger_url(None, store["tmp"] / ".seqops"))


def _predlog(store):
    from serving.predlog import PredictionLog, resolve_predlog_url

    return PredictionLog(resolve_predlog_url(None, store["tmp"] / ".seqops"))


BAD = [
    ("not json", b"{'series_id': 1"),
    ("not utf-8", b"\xff\xfe\x00"),
    ("a list", b"[1, 2, 3]"),
    ("missing request_id", {"series_id": "s000", "window": WINDOW}),
    ("missing window", {"series_id": "s000", "request_id": "r"}),
    ("empty series id", {"series_id": "", "request_id": "r", "window": WINDOW}),
    ("unknown field", {"series_id": "s", "request_id": "r", "window": WINDOW, "x": 1}),
    ("short window", {"series_id": "s", "request_id": "r", "window": WINDOW[:5]}),
    ("long window", {"series_id": "s", "request_id": "r", "window": WINDOW + [1.0]}),
    ("empty window", {"series_id": "s", "request_id": "r", "window": []}),
    ("strings", {"series_id": "s", "request_id": "r", "window": ["a"] * 14}),
    ("ragged rows", {"series_id": "s", "request_id": "r", "window": [[1.0]] * 13 + [[1.0, 2.0]]}),
    ("two features", {"series_id": "s", "request_id": "r", "window": [[1.0, 2.0]] * 14}),
    ("nested too deep", {"series_id": "s", "request_id": "r", "window": [[[1.0]]] * 14}),
    ("NaN", b'{"series_id":"s","request_id":"r","window":[' + b"1," * 13 + b"NaN]}"),
    ("inf", b'{"series_id":"s","request_id":"r","window":[' + b"1," * 13 + b"Infinity]}"),
    (
        "bad window_end",
        {"series_id": "s", "request_id": "r", "window": WINDOW, "window_end": "soon"},
    ),
]


def test_malformed_requests_are_422_never_500(gateway):
    gw = gateway()
    with httpx.Client(base_url=gw.url, timeout=10) as c:
        for name, body in BAD:
            r = (
                c.post("/predict", content=body)
                if isinstance(body, bytes)
                else c.post("/predict", json=body)
            )
            assert r.status_code == 422, (name, r.status_code, r.text)
            assert r.json()["detail"], name
        r = c.post("/predict", json={"series_id": "s", "request_id": "r", "window": WINDOW[:5]})
        assert (
            "window has 5 values" in r.json()["detail"]
            and "expects 14 values" in r.json()["detail"]
        )
        for body in (
            {"actuals": []},
            {"actuals": [{"series_id": "s", "timestamp": "yesterday", "value": 1.0}]},
            {"actuals": [{"series_id": "s", "timestamp": "2020-01-01"}]},
        ):
            assert c.post("/actuals", json=body).status_code == 422, body
        nan = b'{"actuals":[{"series_id":"s","timestamp":"2020-01-01","value":NaN}]}'
        assert c.post("/actuals", content=nan).status_code == 422
        ok = c.post(
            "/predict", json={"series_id": "s000", "request_id": "good-1", "window": WINDOW}
        )
        assert ok.status_code == 200 and len(ok.json()["forecast"]) == 4
        assert ok.json()["role"] == "champion"
        metrics = c.get("/metrics").text
        n_bad = len(BAD) + 1  # and the short window asked again for its message
        assert f'seqops_invalid_requests_total{{endpoint="predict"}} {n_bad}.0' in metrics
        assert 'seqops_invalid_requests_total{endpoint="actuals"} 4.0' in metrics
        assert 'seqops_requests_total{role="champion",status="ok"' in metrics
        assert c.get("/healthz").status_code == 200


def test_shadow_that_raises_never_touches_clients(served_store, gateway):
    """v3 has another lookback: as a shadow it raises on every mirrored call. Clients get the
    champion's answers, unchanged, with no error; every failed shadow call is logged."""
    from registry.traffic import remove_alias

    store = served_store
    gw = gateway()
    with httpx.Client(base_url=gw.url, timeout=10) as c:
        before = [
            c.post("/predict", json={"series_id": f"s{i:03d}", "request_id": f"pre-{i}", "window": WINDOW}).json()
            for i in range(5)
        ]  # fmt: skip
        code, out, err = in_dir(store["tmp"], "promote", "tiny", "--version", "3", "--to", "shadow",
                                "--force", "--reason", "test: broken shadow", "--json")  # fmt: skip
        assert code == 0, err[-2000:]
        gw.wait_roles({"champion": "1", "shadow": "3"})
        with Traffic(store, gw.url, rps=40, duration=60, label_delay=None) as t:
            time.sleep(4)
        res = t.result
        assert res is not None and res["errors"] == 0 and res["ok"] > 50
        after = [
            c.post("/predict", json={"series_id": f"s{i:03d}", "request_id": f"post-{i}", "window": WINDOW}).json()
            for i in range(5)
        ]  # fmt: skip
    assert [a["forecast"] for a in after] == [b["forecast"] for b in before]
    assert {a["version"] for a in after} == {"1"}
    time.sleep(1.0)  # the shadow's rows are written after the answers
    df = _predlog(store).frame("tiny")
    shadow = df[df["role"] == "shadow"]
    assert len(shadow) >= res["ok"] * 0.9 and set(shadow["status"]) == {"error"}
    assert shadow["error"].str.contains("expected windows of shape").all()
    assert set(df[df["role"] == "champion"]["status"]) == {"ok"}
    assert remove_alias(_client(store), _ledger(store), "tiny", alias="shadow",
                        version="3", reasons=["test cleanup"])  # fmt: skip
    gw.wait_roles({"champion": "1"})


def _client(store):
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=store["uri"], registry_uri=store["uri"])


def test_acknowledged_predictions_survive_a_kill_9(served_store, gateway):
    """kill -9 the gateway under load and restart it on the same port: every acknowledged request
    is in the prediction log exactly once; requests during the outage fail at the client."""
    store = served_store
    gw = gateway()
    port = gw.port
    with Traffic(store, gw.url, rps=60, duration=60, label_delay=None) as t:
        time.sleep(3)
        gw.kill()
        time.sleep(1)
        gw2 = gateway(port=port)
        time.sleep(3)
    acked = {rid for rid, _, _ in t.record}
    assert len(acked) > 150
    assert t.result is not None and t.result["errors"] > 0  # the outage was real
    df = _predlog(store).frame("tiny")
    answered = df[(df["status"] == "ok") & df["role"].isin(["champion", "canary"])
                  & df["request_id"].isin(acked)]  # fmt: skip
    counts = answered.groupby("request_id").size()
    assert set(counts.index) == acked  # none lost
    assert (counts == 1).all()  # none duplicated
    assert gw2.roles() == {"champion": "1"}


def test_served_function_matches_the_pyfunc_and_refuses_bad_windows(served_store, monkeypatch):
    """What the gateway calls (XLA for one window, the graph function for batches) answers as
    the registered pyfunc does, and refuses what the pyfunc refuses."""
    import mlflow
    import numpy as np

    from serving.models import load_served

    monkeypatch.setenv("MLFLOW_TRACKING_URI", served_store["uri"])
    served, graph = load_served("tiny", "2"), load_served("tiny", "2", xla=False)
    assert served.xla and not graph.xla
    inner = mlflow.pyfunc.load_model("models:/tiny/2").unwrap_python_model()
    x = np.random.default_rng(0).normal(12.0, 3.0, (5, 14, 1)).astype(np.float32)
    want = inner.predict(None, x)
    tol = 1e-4 * float(np.abs(want).max())
    for i in range(5):  # one window: the XLA function
        np.testing.assert_allclose(served.predict(x[i : i + 1]), want[i : i + 1], atol=tol)
    np.testing.assert_allclose(served.predict(x), want, atol=tol)  # a batch: the graph function
    np.testing.assert_allclose(graph.predict(x[:1]), want[:1], atol=tol)
    with pytest.raises(ValueError, match=r"shape \(n, 14, 1\)"):
        served.predict(x[:1, :13])
    bad = x[:1].copy()
    bad[0, 3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        served.predict(bad)
