"""The drift monitor's policy (hysteresis, cooldown) and its append-only record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from components.config import MonitorConfig
from registry.monitor_log import Decision, MonitorLog, decide

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
CFG = MonitorConfig(consecutive=3, cooldown_minutes=60)


def _h(*actions):
    return [
        {"action": a, "drift_detected": a in ("waiting", "suppressed", "trigger", "trigger_failed"),
         "ts": NOW - timedelta(minutes=10 * (len(actions) - i))}
        for i, a in enumerate(actions)
    ]  # fmt: skip


def test_drift_must_persist_over_consecutive_checks():
    assert decide([], drift=True, now=NOW, last_retrain=None, cfg=CFG).action == "waiting"
    d = decide(_h("waiting"), drift=True, now=NOW, last_retrain=None, cfg=CFG)
    assert (d.action, d.consecutive) == ("waiting", 2)
    d = decide(_h("waiting", "waiting"), drift=True, now=NOW, last_retrain=None, cfg=CFG)
    assert (d.action, d.consecutive) == ("trigger", 3)
    # a clean check in between resets the streak
    d = decide(_h("waiting", "check", "waiting"), drift=True, now=NOW, last_retrain=None, cfg=CFG)
    assert (d.action, d.consecutive) == ("waiting", 2)
    assert decide(
        _h("waiting", "waiting"), drift=False, now=NOW, last_retrain=None, cfg=CFG
    ) == Decision("check", 0, "no drift")


def test_cooldown_since_the_last_retrain_or_trigger_suppresses():
    recent = NOW - timedelta(minutes=30)
    d = decide(_h("waiting", "waiting"), drift=True, now=NOW, last_retrain=recent, cfg=CFG)
    assert d.action == "suppressed" and "30.0 min ago" in d.reason and "60 min" in d.reason
    old = NOW - timedelta(minutes=90)
    assert (
        decide(_h("waiting", "waiting"), drift=True, now=NOW, last_retrain=old, cfg=CFG).action
        == "trigger"
    )
    # after a trigger the streak starts again, and the trigger itself starts a cooldown
    hist = _h("waiting", "waiting", "trigger", "waiting", "waiting")
    hist[2]["ts"] = NOW - timedelta(minutes=20)
    d = decide(hist, drift=True, now=NOW, last_retrain=old, cfg=CFG)
    assert d.action == "suppressed" and d.consecutive == 3
    # a failed trigger keeps the streak, so the next check tries again
    d = decide(
        _h("waiting", "waiting", "trigger_failed"), drift=True, now=NOW, last_retrain=old, cfg=CFG
    )
    assert (d.action, d.consecutive) == ("trigger", 4)


def test_record_and_history(tmp_path):
    from registry.ledger import Ledger

    log = MonitorLog(Ledger(f"sqlite:///{tmp_path / 'l.db'}").engine)
    log.record("m", Decision("waiting", 1, "drift on 1 of 3"), drift=True, share=0.7, champion="2",
               details={"report": "x.html"})  # fmt: skip
    log.record(
        "m", Decision("check", 0, "no drift"), drift=False, share=0.1, champion="2", details={}
    )
    log.record(
        "other",
        Decision("skipped", 0, "no champion"),
        drift=None,
        share=None,
        champion=None,
        details={},
    )
    h = log.history("m")
    assert [r["action"] for r in h] == ["waiting", "check"] and h[0]["details"] == {
        "report": "x.html"
    }
    assert h[0]["ts"].tzinfo is not None
