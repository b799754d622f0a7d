"""Routing, prediction log (SQLite and PostgreSQL) and the live analysis, without a model."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from components.config import RolloutConfig
from serving.analysis import analyse_step
from serving.predlog import PredictionLog, PredictionRow
from serving.routing import bucket, goes_to_canary
from tests.conftest import require_service


def test_canary_routing_is_sticky_and_monotone_in_the_share():
    ids = [f"series-{i}" for i in range(4000)]
    at10 = {s for s in ids if goes_to_canary(s, "7", 0.1)}
    at50 = {s for s in ids if goes_to_canary(s, "7", 0.5)}
    assert at10 <= at50  # raising the share only adds series
    assert 0.08 < len(at10) / len(ids) < 0.12 and 0.46 < len(at50) / len(ids) < 0.54
    assert at10 == {s for s in ids if goes_to_canary(s, "7", 0.1)}  # same answer every time
    assert at10 != {s for s in ids if goes_to_canary(s, "8", 0.1)}  # a new canary reshuffles
    assert not any(goes_to_canary(s, "7", 0.0) for s in ids[:100])
    assert not any(goes_to_canary(s, None, 1.0) for s in ids[:100])
    assert 0.0 <= bucket("x", "1") < 1.0


def _row(rid, sid, end, version, role, forecast, status="ok", ms=2.0, ts=None):
    return PredictionRow(
        model="m", request_id=rid, series_id=sid, window_end=end, version=version, role=role,
        status=status, latency_ms=ms, forecasts=forecast if status == "ok" else None,
        error=None if status == "ok" else "boom", ts=ts or datetime.now(UTC),
    )  # fmt: skip


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def plog(request, tmp_path):
    if request.param == "sqlite":
        log = PredictionLog(f"sqlite:///{tmp_path / 'p.db'}")
        yield log
        log.close()
        return
    require_service("PostgreSQL", "127.0.0.1", 5432)
    import psycopg

    db = f"seqops_plog_{uuid.uuid4().hex[:8]}"
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as c:
        c.execute(f"CREATE DATABASE {db}")
    log = PredictionLog(f"postgresql+psycopg://postgres@127.0.0.1:5432/{db}")
    yield log
    log.close()
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as c:
        c.execute(f"DROP DATABASE {db} WITH (FORCE)")


def test_prediction_log_commits_before_ack_and_ignores_retries(plog):
    plog.start()
    futs = [plog.submit([_row(f"r{i}", "a", None, "1", "champion", [1.0, 2.0])]) for i in range(50)]
    for f in futs:
        f.result(timeout=30)  # acknowledged = committed
    assert plog.count("m") == 50
    plog.submit([_row("r3", "a", None, "1", "champion", [9.0, 9.0])]).result(timeout=30)
    plog.write([_row("r3", "a", None, "2", "shadow", [3.0, 3.0])])  # another role: its own row
    assert plog.count("m") == 51
    df = plog.frame("m")
    assert df[df["request_id"] == "r3"]["forecasts"].tolist() == ["[1.0, 2.0]", "[3.0, 3.0]"]
    assert plog.add_actuals([("a", "2020-01-02T00:00:00", 1.5)]) == 1
    assert plog.add_actuals([("a", "2020-01-02T00:00:00", 2.5)]) == 1  # a correction replaces
    assert plog.actuals_frame(["a"])["value"].tolist() == [2.5]


def test_rollout_resumes_at_the_step_the_ledger_shows():
    from components.errors import BadInputError
    from flows.rollout import _start_index

    steps = RolloutConfig().steps  # shadow, canary 10%, canary 50%, champion, bake
    kinds = [s.step for s in steps]
    assert _start_index(steps, {"champion": "1"}, "2", None) == 0
    assert _start_index(steps, {"champion": "1", "shadow": "2"}, "2", None) == 0
    assert _start_index(steps, {"champion": "1", "canary": "2"}, "2", 0.5) == 2
    bake = {"champion": "2", "previous-champion": "1", "shadow": "1"}
    assert _start_index(steps, bake, "2", None) == kinds.index("bake")
    with pytest.raises(BadInputError, match="already the champion"):  # a finished rollout
        _start_index(steps, {"champion": "2", "previous-champion": "1"}, "2", None)


def test_write_now_commits_on_the_callers_thread_only_when_the_log_is_idle(plog):
    assert plog.write_now([_row("n1", "a", None, "1", "champion", [1.0])])
    assert plog.count("m") == 1  # committed before write_now returned
    with plog._lock:  # another writer holds the connection: nothing written, caller must queue
        assert not plog.write_now([_row("n2", "a", None, "1", "champion", [2.0])])
    assert plog.count("m") == 1
    plog.start()
    plog.submit([_row("n2", "a", None, "1", "champion", [2.0])]).result(timeout=30)
    retry = [_row("n1", "a", None, "1", "champion", [9.0])]  # a retried request: ignored
    plog.write_now(retry) or plog.submit(retry).result(timeout=30)
    df = plog.frame("m")
    assert df["request_id"].tolist() == ["n1", "n2"]
    assert df["forecasts"].tolist() == ["[1.0]", "[2.0]"]


def test_sqlite_checkpoints_run_on_the_writer_thread_not_in_a_requests_commit(tmp_path):
    """A request's commit (write_now, on the gateway's event loop) never copies the WAL into
    the database file; the writer thread does, about once a second."""
    import time

    path = tmp_path / "p.db"
    log = PredictionLog(f"sqlite:///{path}")
    try:
        size0 = path.stat().st_size
        for i in range(3000):  # ~12 MB of WAL: past SQLite's default autocheckpoint (4 MB)
            assert log.write_now([_row(f"c{i}", "a", None, "1", "champion", [1.0])])
        assert path.stat().st_size == size0  # no checkpoint happened inside those commits
        log.start()
        deadline = time.monotonic() + 10
        while path.stat().st_size == size0 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert path.stat().st_size > size0  # the writer thread checkpointed
        assert log.count("m") == 3000
    finally:
        log.close()


@pytest.mark.postgres
def test_prediction_log_reconnects_when_postgres_drops_its_connection(tmp_path):
    require_service("PostgreSQL", "127.0.0.1", 5432)
    import psycopg

    db = f"seqops_plog_{uuid.uuid4().hex[:8]}"
    admin = "host=127.0.0.1 user=postgres dbname=postgres"
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute(f"CREATE DATABASE {db}")
    log = PredictionLog(f"postgresql+psycopg://postgres@127.0.0.1:5432/{db}")
    try:
        assert log.write_now([_row("k1", "a", None, "1", "champion", [1.0])])
        with psycopg.connect(admin, autocommit=True) as c:  # e.g. a server restart or failover
            killed = c.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (db,),
            ).fetchall()
        assert killed and all(ok for (ok,) in killed)
        assert log.write_now([_row("k2", "a", None, "1", "champion", [2.0])])
        assert log.frame("m")["request_id"].tolist() == ["k1", "k2"]
    finally:
        log.close()
        with psycopg.connect(admin, autocommit=True) as c:
            c.execute(f"DROP DATABASE {db} WITH (FORCE)")


def _fill(plog, *, cand_bias, n, role="shadow", errors=0, cand_ms=2.0, seed=0, champ_bias=0.0):
    """n requests over 10 series; the champion (v1) and a candidate (v2) forecast a noisy sine."""
    rng = np.random.default_rng(seed)
    t0 = datetime(2021, 1, 1)
    rows, acts = [], {}
    for i in range(n):
        sid = f"s{i % 10}"
        end = t0 + timedelta(days=i // 10)
        truth = [float(np.sin(i / 10 + k)) * 5 + 20 for k in range(1, 4)]
        for k, v in enumerate(truth, start=1):
            acts[(sid, (end + timedelta(days=k)).isoformat())] = v
        champ = [v + champ_bias + rng.normal(0, 1.0) for v in truth]
        cand = [v + cand_bias + rng.normal(0, 1.0) for v in truth]
        rid = f"q{i}"
        crole = "champion" if role == "shadow" else ("canary" if i % 2 else "champion")
        if role == "shadow" or crole == "champion":
            rows.append(_row(rid, sid, end.isoformat(), "1", "champion", champ))
        if role == "shadow":
            st = "error" if i < errors else "ok"
            rows.append(_row(rid, sid, end.isoformat(), "2", "shadow", cand, status=st, ms=cand_ms))
        elif crole == "canary":
            rows.append(_row(rid, sid, end.isoformat(), "2", "canary", cand, ms=cand_ms))
    plog.write(rows)
    plog.add_actuals([(s, t, v) for (s, t), v in acts.items()])


SINCE = datetime.now(UTC) - timedelta(hours=1)


def _judge(plog, step="shadow", min_labelled=30, **cfg):
    return analyse_step(
        plog, "m", step=step, candidate="2", baseline="1", since=SINCE, freq="D",
        cfg=RolloutConfig(**cfg), min_labelled=min_labelled,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("champ_bias", "cand_bias", "outcome", "verdict"),
    [(3.0, 0.0, "passed", "better"), (0.0, 6.0, "failed", "worse")],
)
def test_paired_shadow_verdicts(tmp_path, champ_bias, cand_bias, outcome, verdict):
    plog = PredictionLog(f"sqlite:///{tmp_path / 'p.db'}")
    _fill(plog, cand_bias=cand_bias, champ_bias=champ_bias, n=200)
    res = _judge(plog)
    assert res.outcome == outcome and res.evidence["quality"]["verdict"] == verdict
    assert res.evidence["quality"]["test"] == "diebold_mariano_paired"
    assert res.evidence["labelled"] == 200


def test_equal_models_are_inconclusive_and_too_few_labels_wait(tmp_path):
    plog = PredictionLog(f"sqlite:///{tmp_path / 'p.db'}")
    _fill(plog, cand_bias=0.0, n=60, seed=1)
    assert _judge(plog).outcome == "inconclusive"
    assert _judge(plog, min_labelled=500).outcome == "waiting"  # missing evidence never passes


def test_canary_is_judged_against_the_champion_on_other_series(tmp_path):
    plog = PredictionLog(f"sqlite:///{tmp_path / 'p.db'}")
    _fill(plog, cand_bias=5.0, n=300, role="canary")
    res = _judge(plog, step="canary")
    assert res.outcome == "failed" and res.evidence["quality"]["test"] == "welch_two_sample"


def test_operational_breaches_fail_before_quality(tmp_path):
    plog = PredictionLog(f"sqlite:///{tmp_path / 'p.db'}")
    _fill(plog, cand_bias=0.0, champ_bias=3.0, n=100, errors=5)  # better, but 5% errors
    res = _judge(plog, max_error_rate=0.01)
    assert res.outcome == "failed" and "error rate 5.0%" in res.reasons[0]
    plog2 = PredictionLog(f"sqlite:///{tmp_path / 'q.db'}")
    _fill(plog2, cand_bias=0.0, champ_bias=3.0, n=100, cand_ms=50.0)
    res = _judge(plog2, max_p95_ratio=1.5, p95_slack_ms=5.0)
    assert res.outcome == "failed" and "p95 latency" in res.reasons[0]
