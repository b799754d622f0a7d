"""The promotion ledger: an append-only table of every gate evaluation and alias move.

It is the source of truth; MLflow aliases and ``seqops.*`` tags are projections of it. Alias
moves commit under a per-model lock together with the ``seqops_aliases`` state table (one row per
model and alias), so a compare-and-swap on the champion is a read and a write in one transaction:
``BEGIN IMMEDIATE`` on SQLite, ``pg_advisory_xact_lock`` on PostgreSQL. UPDATE and DELETE on the
ledger are refused by database triggers.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
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
    create_engine,
    event,
    insert,
    select,
    text,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError, SQLAlchemyError

from components.errors import RunFailedError

log = logging.getLogger(__name__)

metadata = MetaData()

ledger_table = Table(
    "seqops_ledger",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("txn", String(36), nullable=False),  # entries committed together share it
    Column("model", String(256), nullable=False, index=True),
    Column("kind", String(16), nullable=False),  # gate | alias_set | alias_removed | traffic
    Column("alias", String(32)),
    Column("from_version", String(32)),
    Column("to_version", String(32)),
    Column("baseline_version", String(32)),  # the champion the gate compared against
    Column(
        "outcome", String(16), nullable=False
    ),  # passed | failed | inconclusive | declined | forced | committed
    Column("trigger", String(32), nullable=False),
    Column("actor", String(256), nullable=False),
    Column("forced", Boolean, nullable=False),
    Column("approved_by", String(256)),
    Column("reasons", Text, nullable=False),
    Column("evidence", Text, nullable=False),
)

aliases_table = Table(
    "seqops_aliases",
    metadata,
    Column("model", String(256), primary_key=True),
    Column("alias", String(32), primary_key=True),
    Column("version", String(32), nullable=False),
    Column("ledger_id", Integer, nullable=False),
)

# The canary's share of series, per model: set by the rollout (ledger entries of kind "traffic").
traffic_table = Table(
    "seqops_traffic",
    metadata,
    Column("model", String(256), primary_key=True),
    Column("version", String(32), nullable=False),  # the canary version the share applies to
    Column("share", Float, nullable=False),
    Column("ledger_id", Integer, nullable=False),
)

_APPEND_ONLY = {
    "sqlite": [
        "CREATE TRIGGER IF NOT EXISTS seqops_ledger_no_update BEFORE UPDATE ON seqops_ledger "
        "BEGIN SELECT RAISE(ABORT, 'seqops_ledger is append-only'); END",
        "CREATE TRIGGER IF NOT EXISTS seqops_ledger_no_delete BEFORE DELETE ON seqops_ledger "
        "BEGIN SELECT RAISE(ABORT, 'seqops_ledger is append-only'); END",
    ],
    "postgresql": [
        "CREATE OR REPLACE FUNCTION seqops_ledger_append_only() RETURNS trigger AS $$ "
        "BEGIN RAISE EXCEPTION 'seqops_ledger is append-only'; END; $$ LANGUAGE plpgsql",
        "DROP TRIGGER IF EXISTS seqops_ledger_append_only ON seqops_ledger",
        "CREATE TRIGGER seqops_ledger_append_only BEFORE UPDATE OR DELETE ON seqops_ledger "
        "FOR EACH ROW EXECUTE FUNCTION seqops_ledger_append_only()",
    ],
}


def default_ledger_url(state_dir: str | Path = ".seqops") -> str:
    return f"sqlite:///{(Path(state_dir) / 'ledger.db').resolve()}"


def resolve_ledger_url(
    url: str | None = None, state_dir: str | Path = ".seqops", config_url: str | None = None
) -> str:
    """An explicit URL (--ledger-url), then SEQOPS_LEDGER_URL, then the config's
    ``promotion.ledger_url``, then SQLite beside the embedded MLflow store."""
    raw = url or os.environ.get("SEQOPS_LEDGER_URL") or config_url or default_ledger_url(state_dir)
    if raw.startswith("postgresql://"):  # SQLAlchemy's default PostgreSQL driver is psycopg 3 here
        raw = "postgresql+psycopg://" + raw.removeprefix("postgresql://")
    return raw


def actor() -> str:
    return os.environ.get("SEQOPS_ACTOR") or os.environ.get("GITHUB_ACTOR") or getpass.getuser()


@dataclass(frozen=True)
class Entry:
    kind: str
    outcome: str
    alias: str | None = None
    from_version: str | None = None
    to_version: str | None = None
    baseline_version: str | None = None
    reasons: tuple[str, ...] = ()
    evidence: dict[str, Any] | None = None


class Ledger:
    """Append-only promotion ledger on SQLite (default) or PostgreSQL."""

    def __init__(self, url: str):
        self.url = url
        self.dialect = url.split(":", 1)[0].split("+", 1)[0]
        if self.dialect == "sqlite":
            path = url.removeprefix("sqlite:///")
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = create_engine(url, connect_args={"timeout": 60})

            @event.listens_for(self.engine, "connect")
            def _no_pysqlite_transactions(dbapi_conn, _record):
                dbapi_conn.isolation_level = None  # we issue BEGIN IMMEDIATE ourselves

            @event.listens_for(self.engine, "begin")
            def _begin_immediate(conn):
                conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            self.engine = create_engine(url, pool_pre_ping=True)
        try:
            with self.engine.begin() as conn:
                if self.dialect == "postgresql":  # concurrent first users must not race on DDL
                    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('seqops:schema'))"))
                metadata.create_all(conn)
                for stmt in _APPEND_ONLY.get(self.dialect, []):
                    conn.exec_driver_sql(stmt)
        except OperationalError as exc:
            raise RunFailedError(
                f"ledger database unreachable ({self.safe_url}): {exc.orig}"
            ) from None

    @property
    def safe_url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    @contextmanager
    def locked(self, model: str) -> Iterator[Connection]:
        """A transaction holding the model's write lock (commit on success, rollback on error)."""
        try:
            with self.engine.begin() as conn:
                if self.dialect == "postgresql":
                    conn.execute(
                        text("SELECT pg_advisory_xact_lock(hashtext(:m))"), {"m": f"seqops:{model}"}
                    )
                yield conn
        except OperationalError as exc:
            raise RunFailedError(
                f"ledger database unreachable ({self.safe_url}): {exc.orig}"
            ) from None

    def aliases(self, model: str, conn: Connection | None = None) -> dict[str, str]:
        """Current alias -> version for a model, as the ledger has it."""
        stmt = select(aliases_table.c.alias, aliases_table.c.version).where(
            aliases_table.c.model == model
        )
        try:
            if conn is not None:
                return dict(conn.execute(stmt).tuples().all())
            with self.engine.connect() as c:
                return dict(c.execute(stmt).tuples().all())
        except OperationalError as exc:
            raise RunFailedError(
                f"ledger database unreachable ({self.safe_url}): {exc.orig}"
            ) from None

    def append(
        self,
        conn: Connection,
        model: str,
        entries: list[Entry],
        *,
        trigger: str,
        forced: bool = False,
        approved_by: str | None = None,
        who: str | None = None,
    ) -> list[int]:
        """Append entries as one transaction group and apply alias entries to the state table."""
        txn = str(uuid.uuid4())
        now = datetime.now(UTC)
        ids = []
        for e in entries:
            row = {
                "ts": now,
                "txn": txn,
                "model": model,
                "kind": e.kind,
                "alias": e.alias,
                "from_version": e.from_version,
                "to_version": e.to_version,
                "baseline_version": e.baseline_version,
                "outcome": e.outcome,
                "trigger": trigger,
                "actor": who or actor(),
                "forced": forced,
                "approved_by": approved_by,
                "reasons": json.dumps(list(e.reasons)),
                "evidence": json.dumps(e.evidence or {}, default=str),
            }
            pk = conn.execute(insert(ledger_table).values(**row)).inserted_primary_key
            assert pk is not None  # an autoincrement insert always returns its key
            new_id = int(pk[0])
            ids.append(new_id)
            if e.kind == "alias_set":
                key = (aliases_table.c.model == model) & (aliases_table.c.alias == e.alias)
                conn.execute(aliases_table.delete().where(key))
                conn.execute(
                    insert(aliases_table).values(
                        model=model, alias=e.alias, version=e.to_version, ledger_id=new_id
                    )
                )
            elif e.kind == "alias_removed":
                key = (aliases_table.c.model == model) & (aliases_table.c.alias == e.alias)
                conn.execute(aliases_table.delete().where(key))
            if e.kind == "traffic" or (
                e.kind in ("alias_set", "alias_removed") and e.alias == "canary"
            ):
                conn.execute(traffic_table.delete().where(traffic_table.c.model == model))
                if e.kind == "traffic":
                    conn.execute(
                        insert(traffic_table).values(
                            model=model,
                            version=e.to_version,
                            share=float((e.evidence or {})["share"]),
                            ledger_id=new_id,
                        )
                    )
        return ids

    def serving_state(self, model: str) -> tuple[dict[str, str], tuple[str, float] | None, int]:
        """What a gateway needs in one read: aliases, the canary share (version, share) if set,
        and the last ledger id (changes when anything is committed)."""
        from sqlalchemy import func

        try:
            with self.engine.connect() as c:
                # the last id first: a move committed between these reads then shows up as a
                # newer id at the next poll (read the other way round, a gateway could pair old
                # aliases with the new id and never look again)
                last = c.execute(
                    select(func.max(ledger_table.c.id)).where(ledger_table.c.model == model)
                ).scalar()
                al = dict(
                    c.execute(
                        select(aliases_table.c.alias, aliases_table.c.version).where(
                            aliases_table.c.model == model
                        )
                    )
                    .tuples()
                    .all()
                )
                tr = c.execute(
                    select(traffic_table.c.version, traffic_table.c.share).where(
                        traffic_table.c.model == model
                    )
                ).first()
        except SQLAlchemyError as exc:
            raise RunFailedError(f"ledger database unreachable ({self.safe_url}): {exc}") from None
        return al, (str(tr[0]), float(tr[1])) if tr else None, int(last or 0)

    def history(self, model: str) -> list[dict[str, Any]]:
        stmt = select(ledger_table).where(ledger_table.c.model == model).order_by(ledger_table.c.id)
        try:
            with self.engine.connect() as c:
                rows = [dict(r._mapping) for r in c.execute(stmt)]
        except SQLAlchemyError as exc:
            raise RunFailedError(f"ledger database unreachable ({self.safe_url}): {exc}") from None
        for r in rows:
            r["reasons"] = json.loads(r["reasons"])
            r["evidence"] = json.loads(r["evidence"])
            r["ts"] = r["ts"].isoformat() if hasattr(r["ts"], "isoformat") else str(r["ts"])
        return rows

    def dispose(self) -> None:
        self.engine.dispose()
