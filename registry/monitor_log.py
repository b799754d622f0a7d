"""The drift monitor's decisions: every check, trigger and suppression with its reason, in an
append-only table beside the promotion ledger, and the policy that makes them (hysteresis over
consecutive checks, a cooldown since the last retrain), so a drifting source cannot cause a
retrain-promote loop."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    insert,
    select,
)
from sqlalchemy.engine import Engine

from components.config import MonitorConfig

metadata = MetaData()

monitor_table = Table(
    "seqops_monitor",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("model", String(256), nullable=False, index=True),
    # check (no action) | waiting (drift, not yet persistent) | trigger | suppressed | trigger_failed | skipped
    Column("action", String(16), nullable=False),
    Column("drift_detected", Boolean),
    Column("drift_share", Float),
    Column("consecutive", Integer, nullable=False),
    Column("champion_version", String(32)),
    Column("reason", Text, nullable=False),
    Column("details", Text, nullable=False),
)


@dataclass(frozen=True)
class Decision:
    action: str
    consecutive: int
    reason: str


def _aware(ts: datetime) -> datetime:
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def decide(
    history: list[dict[str, Any]],
    *,
    drift: bool,
    now: datetime,
    last_retrain: datetime | None,
    cfg: MonitorConfig,
) -> Decision:
    """Hysteresis: drift must be seen on ``cfg.consecutive`` checks in a row (counting since the
    last clean check or trigger); cooldown: no trigger within ``cfg.cooldown_minutes`` of the last
    retrain or trigger."""
    if not drift:
        return Decision("check", 0, "no drift")
    streak = 0
    for e in reversed(history):
        if e["action"] in ("check", "trigger", "skipped"):
            break
        if e["drift_detected"]:
            streak += 1
    streak += 1
    if streak < cfg.consecutive:
        return Decision(
            "waiting", streak, f"drift on {streak} of {cfg.consecutive} consecutive checks"
        )
    last_trigger = next(
        (_aware(e["ts"]) for e in reversed(history) if e["action"] == "trigger"), None
    )
    since = max([t for t in (last_retrain, last_trigger) if t is not None], default=None)
    if since is not None and now - since < timedelta(minutes=cfg.cooldown_minutes):
        mins = (now - since).total_seconds() / 60
        return Decision(
            "suppressed",
            streak,
            f"drift persists ({streak} checks) but the last retrain or trigger was {mins:.1f} min ago, "
            f"within the cooldown of {cfg.cooldown_minutes:g} min",
        )
    return Decision("trigger", streak, f"drift on {streak} consecutive checks; cooldown passed")


class MonitorLog:
    def __init__(self, engine: Engine):
        self.engine = engine
        metadata.create_all(engine)

    def history(self, model: str, limit: int = 200) -> list[dict[str, Any]]:
        stmt = (
            select(monitor_table)
            .where(monitor_table.c.model == model)
            .order_by(monitor_table.c.id.desc())
            .limit(limit)
        )
        with self.engine.connect() as c:
            rows = [dict(r._mapping) for r in c.execute(stmt)]
        for r in rows:
            r["details"] = json.loads(r["details"])
            r["ts"] = _aware(r["ts"])
        return list(reversed(rows))

    def record(
        self,
        model: str,
        decision: Decision,
        *,
        drift: bool | None,
        share: float | None,
        champion: str | None,
        details: dict[str, Any],
    ) -> int:
        row = {
            "ts": datetime.now(UTC),
            "model": model,
            "action": decision.action,
            "drift_detected": drift,
            "drift_share": share,
            "consecutive": decision.consecutive,
            "champion_version": champion,
            "reason": decision.reason,
            "details": json.dumps(details, default=str),
        }
        with self.engine.begin() as c:
            pk = c.execute(insert(monitor_table).values(**row)).inserted_primary_key
        return int(pk[0]) if pk else 0
