"""The prediction log and the actuals that later join it (SQLite by default, PostgreSQL by URL).

A request is acknowledged only after its row is committed, so a gateway killed at any moment
loses no acknowledged prediction, and a retried request id is inserted once (``ON CONFLICT DO
NOTHING`` on model, request id and role). Rows go through one held connection, two ways:
``write_now`` commits on the caller's thread when nothing else is writing (no thread hand-off:
the sequential latency path), otherwise ``submit`` queues them for the writer thread, which
commits whatever has queued up in one transaction (group commit: the throughput path).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import (
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    event,
    select,
)
from sqlalchemy.engine import Connection, Engine

from components.errors import RunFailedError

log = logging.getLogger(__name__)

metadata = MetaData()

predictions = Table(
    "seqops_predictions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("model", String(256), nullable=False),
    Column("request_id", String(128), nullable=False),
    Column("series_id", String(256), nullable=False),
    Column("window_end", String(64)),  # ISO timestamp of the window's last value
    Column("version", String(32), nullable=False),
    Column("role", String(16), nullable=False),  # champion | canary | shadow
    Column("status", String(16), nullable=False),  # ok | error
    Column("latency_ms", Float, nullable=False),
    Column("forecasts", Text),  # JSON list (horizon values), null on error
    Column("error", Text),
    UniqueConstraint("model", "request_id", "role", name="uq_prediction_request_role"),
    # the analyses read one model's recent rows; without it SQLite walks every row of the model
    # through the unique index (0.2 s per 150k rows, per read)
    Index("ix_seqops_predictions_model_ts", "model", "ts"),
)

actuals = Table(
    "seqops_actuals",
    metadata,
    Column("series_id", String(256), primary_key=True),
    Column("ts", String(64), primary_key=True),  # ISO timestamp
    Column("value", Float, nullable=False),
    Column("received", DateTime(timezone=True), nullable=False),
)


def default_predlog_url(state_dir: str | Path = ".seqops") -> str:
    return f"sqlite:///{(Path(state_dir) / 'predictions.db').resolve()}"


def resolve_predlog_url(
    url: str | None, state_dir: str | Path = ".seqops", config_url: str | None = None
) -> str:
    """An explicit URL (--predlog-url), then SEQOPS_PREDLOG_URL, then ``serving.predlog_url``,
    then SQLite in the state directory."""
    import os

    raw = (
        url or os.environ.get("SEQOPS_PREDLOG_URL") or config_url or default_predlog_url(state_dir)
    )
    if raw.startswith("postgresql://"):
        raw = "postgresql+psycopg://" + raw.removeprefix("postgresql://")
    return raw


@dataclass
class PredictionRow:
    model: str
    request_id: str
    series_id: str
    window_end: str | None
    version: str
    role: str
    status: str
    latency_ms: float
    forecasts: list[float] | None = None
    error: str | None = None
    ts: datetime = field(default_factory=lambda: datetime.now(UTC))

    def to_row(self) -> dict[str, Any]:
        return {
            "ts": self.ts,
            "model": self.model,
            "request_id": self.request_id,
            "series_id": self.series_id,
            "window_end": self.window_end,
            "version": self.version,
            "role": self.role,
            "status": self.status,
            "latency_ms": self.latency_ms,
            "forecasts": json.dumps(self.forecasts) if self.forecasts is not None else None,
            "error": self.error,
        }


def _engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _wal(dbapi_conn, _record):
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")  # durable across process kills
            # no checkpoint inside a commit: a request's commit runs on the gateway's event loop,
            # and a checkpoint of a WAL grown behind a long reader (a rollout's analysis) takes
            # seconds. The writer thread checkpoints instead (PredictionLog._checkpoint).
            cur.execute("PRAGMA wal_autocheckpoint=0")
            cur.execute("PRAGMA journal_size_limit=67108864")  # a WAL reset truncates to 64 MiB
            cur.close()

        return engine
    return create_engine(url, pool_pre_ping=True)


def _insert_ignore(engine: Engine):
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(predictions).on_conflict_do_nothing(
            constraint="uq_prediction_request_role"
        )
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(predictions).on_conflict_do_nothing()


def _upsert_actuals(engine: Engine) -> Any:
    stmt: Any
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        stmt = pg_insert(actuals)
    else:
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        stmt = sqlite_insert(actuals)
    return stmt.on_conflict_do_update(
        index_elements=["series_id", "ts"],
        set_={"value": stmt.excluded.value, "received": stmt.excluded.received},
    )


class _RawInsert:
    """The same INSERT ... ON CONFLICT DO NOTHING, run on the DBAPI connection under the held
    SQLAlchemy connection: statement compiled once, values through the columns' own bind
    processors (so rows read back exactly as SQLAlchemy's would). For SQLite, where
    SQLAlchemy's per-execute work measured as more than the insert and commit themselves
    (0.18 vs 0.07 ms a row, bench/results/gateway.md)."""

    def __init__(self, stmt: Any, engine: Engine):
        keys = [c.key for c in predictions.columns if c.key != "id"]
        compiled = stmt.compile(dialect=engine.dialect, column_keys=keys)
        self.sql = str(compiled)
        self.keys = list(compiled.positiontup or [])
        if sorted(self.keys) != sorted(keys):
            raise RuntimeError(f"unexpected insert parameters {self.keys}")
        procs = {k: predictions.c[k].type.bind_processor(engine.dialect) for k in keys}
        self.procs = [(k, procs[k]) for k in self.keys]

    def __call__(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        params = [[p(r[k]) if p else r[k] for k, p in self.procs] for r in rows]
        dbapi = conn.connection.driver_connection
        assert dbapi is not None
        try:
            dbapi.executemany(self.sql, params)
            dbapi.commit()
        except Exception:
            dbapi.rollback()
            raise


class PredictionLog:
    """Group-committing writer plus the reads the rollout analysis needs."""

    def __init__(self, url: str, *, max_batch: int = 512):
        self.engine = _engine(url)
        self.url = self.engine.url.render_as_string(hide_password=True)
        self._create_schema()
        self._insert = _insert_ignore(self.engine)
        self._raw = (
            _RawInsert(self._insert, self.engine) if self.engine.dialect.name == "sqlite" else None
        )
        self._max_batch = max_batch
        self._q: queue.Queue[tuple[list[dict[str, Any]], Future[None]] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # guards the held connection (one writer at a time)
        self._last_checkpoint = 0.0
        self._conn: Connection | None = None

    def _create_schema(self) -> None:
        """Create the tables once, even when several processes open a fresh database at once."""
        from sqlalchemy import text
        from sqlalchemy.exc import OperationalError, ProgrammingError

        for attempt in range(5):
            try:
                with self.engine.begin() as conn:
                    if self.engine.dialect.name == "postgresql":
                        conn.execute(
                            text("SELECT pg_advisory_xact_lock(hashtext('seqops:predlog'))")
                        )
                    metadata.create_all(conn)
                    for idx in predictions.indexes:  # logs created before the index existed
                        idx.create(conn, checkfirst=True)
                return
            except (OperationalError, ProgrammingError) as exc:
                if "already exists" in str(exc) and attempt < 4:
                    continue  # another process created it between our check and our CREATE
                raise RunFailedError(
                    f"prediction log database unreachable ({self.url}): {exc}"
                ) from None

    # -- writing -------------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            import time

            self._last_checkpoint = time.monotonic()  # the first one a second from now
            self._thread = threading.Thread(target=self._run, name="predlog-writer", daemon=True)
            self._thread.start()

    def submit(self, rows: list[PredictionRow]) -> Future[None]:
        """Queue rows; the future resolves once they are committed (or fails with the error)."""
        fut: Future[None] = Future()
        self._q.put(([r.to_row() for r in rows], fut))
        return fut

    def write_now(self, rows: list[PredictionRow]) -> bool:
        """Commit rows on this thread if nothing else is writing or queued; False means busy
        (nothing written: ``submit`` them instead). Raises when the commit fails."""
        if not self._q.empty() or not self._lock.acquire(blocking=False):
            return False
        try:
            self._commit([r.to_row() for r in rows])
        finally:
            self._lock.release()
        return True

    def write(self, rows: list[PredictionRow]) -> None:
        """Synchronous write (tests, tools)."""
        with self._lock:
            self._commit([r.to_row() for r in rows])

    def _commit(self, rows: list[dict[str, Any]]) -> None:
        """Insert and commit on the held connection (lock held). A connection the database
        dropped is replaced and the batch retried once (a retry cannot duplicate a row)."""
        from sqlalchemy.exc import DBAPIError

        for attempt in (1, 2):
            if self._conn is None or self._conn.closed or self._conn.invalidated:
                self._conn = self.engine.connect()
            if self._raw is not None:  # SQLite: no connection to lose, a third of the cost
                self._raw(self._conn, rows)
                return
            try:
                self._conn.execute(self._insert, rows)
                self._conn.commit()
                return
            except DBAPIError as exc:
                self._drop_transaction()
                if attempt == 1 and exc.connection_invalidated:
                    log.warning("prediction log connection lost; reconnecting")
                    continue
                raise
            except Exception:
                self._drop_transaction()
                raise

    def _drop_transaction(self) -> None:
        """Roll back after a failed insert; a connection that cannot even do that is dropped."""
        assert self._conn is not None
        try:
            self._conn.rollback()
        except Exception:
            self._conn.close()
            self._conn = None
        else:
            if self._conn.invalidated:
                self._conn.close()
                self._conn = None

    def _checkpoint(self) -> None:
        """Copy the WAL back into the database file (SQLite), at most once a second, on the
        writer thread. It holds the connection lock meanwhile, so no write of this process
        lands during it and it can complete (the WAL is then reused instead of growing); a
        request arriving meanwhile does not wait on the event loop: ``write_now`` finds the lock
        taken and the row goes to the queue, committed right after."""
        import time

        now = time.monotonic()
        if self.engine.dialect.name != "sqlite" or now - self._last_checkpoint < 1.0:
            return
        self._last_checkpoint = now
        with self._lock:
            try:
                if self._conn is None or self._conn.closed or self._conn.invalidated:
                    self._conn = self.engine.connect()
                self._conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
                self._conn.commit()
            except Exception as exc:  # a busy database: the next one will do
                log.debug("prediction log checkpoint skipped: %s", exc)

    def _run(self) -> None:
        while True:
            self._checkpoint()
            try:
                item = self._q.get(timeout=1.0)
            except queue.Empty:
                continue
            if item is None:
                return
            batch = [item]
            stop = False
            while len(batch) < self._max_batch:
                try:
                    nxt = self._q.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            rows = [r for rs, _ in batch for r in rs]
            try:
                with self._lock:
                    self._commit(rows)
            except Exception as exc:  # the requests fail; nothing is acknowledged
                log.error("prediction log write failed (%d rows): %s", len(rows), exc)
                for _, fut in batch:
                    fut.set_exception(exc)
            else:
                for _, fut in batch:
                    fut.set_result(None)
            if stop:
                return

    def close(self) -> None:
        """Flush what is queued and stop the writer."""
        if self._thread is not None:
            self._q.put(None)
            self._thread.join(timeout=30)
            self._thread = None
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
        self.engine.dispose()

    def add_actuals(self, items: list[tuple[str, str, float]]) -> int:
        now = datetime.now(UTC)
        rows = [{"series_id": s, "ts": t, "value": v, "received": now} for s, t, v in items]
        if rows:
            with self.engine.begin() as conn:
                conn.execute(_upsert_actuals(self.engine), rows)
        return len(rows)

    # -- reading -------------------------------------------------------------------------------
    def frame(self, model: str, since: datetime | None = None) -> pd.DataFrame:
        stmt = select(predictions).where(predictions.c.model == model)
        if since is not None:
            stmt = stmt.where(predictions.c.ts >= since)
        with self.engine.connect() as c:
            res = c.execute(stmt.order_by(predictions.c.id))
            return pd.DataFrame(res.tuples().all(), columns=list(res.keys()))

    def actuals_frame(self, series: list[str] | None = None) -> pd.DataFrame:
        stmt = select(actuals.c.series_id, actuals.c.ts, actuals.c.value)
        if series is not None:
            stmt = stmt.where(actuals.c.series_id.in_(series))
        with self.engine.connect() as c:
            return pd.DataFrame(
                c.execute(stmt).tuples().all(), columns=["series_id", "ts", "value"]
            )

    def count(self, model: str | None = None) -> int:
        from sqlalchemy import func

        stmt = select(func.count()).select_from(predictions)
        if model is not None:
            stmt = stmt.where(predictions.c.model == model)
        with self.engine.connect() as c:
            return int(c.execute(stmt).scalar_one())
