"""The gateway's core, independent of HTTP: which versions serve which role (reloaded from the
ledger), routing, optional micro-batching, shadow mirroring, and the prediction log.

Invariants:
- a request is answered by the champion or, for the canary's share of series, the canary; a canary
  that raises is logged as a canary error and the champion answers instead;
- the shadow gets a mirrored copy through a bounded queue and its own thread: it can be slow, raise
  or hang without changing a client's response, latency or error rate;
- an alias move is served only once the new model is loaded and warmed up; until then the old one
  answers (no failed request during the swap);
- a prediction is acknowledged only after its log row is committed.

Latency path (the default, no micro-batching): the champion's or canary's compiled model is
called on the event loop and the log row committed there when the log is idle, so a request
costs no thread hand-off. The micro-batching path trades that for throughput: one executor
thread runs the batches and the writer thread group-commits the rows.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from components.config import ServingConfig
from registry.ledger import Ledger
from serving.metrics import Metrics
from serving.models import ServedModel, load_served
from serving.predlog import PredictionLog, PredictionRow
from serving.routing import goes_to_canary

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    """One consistent view of who serves what (swapped atomically on reload)."""

    champion: ServedModel
    canary: ServedModel | None = None
    canary_share: float = 0.0
    shadow: ServedModel | None = None
    ledger_id: int = 0

    def roles(self) -> dict[str, str]:
        out = {"champion": self.champion.version}
        if self.canary:
            out["canary"] = self.canary.version
        if self.shadow:
            out["shadow"] = self.shadow.version
        return out


@dataclass
class Answer:
    version: str
    role: str
    forecast: list[float]
    latency_ms: float


class NotReady(Exception):
    pass


class _Batcher:
    """Collects concurrent requests for one model into one call (max size or max wait)."""

    def __init__(self, model: ServedModel, pool: ThreadPoolExecutor, size: int, wait_s: float):
        self.model, self.pool, self.size, self.wait_s = model, pool, size, wait_s
        self.q: asyncio.Queue[tuple[np.ndarray, asyncio.Future[np.ndarray]]] = asyncio.Queue()
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def __call__(self, x: np.ndarray) -> np.ndarray:
        fut: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        await self.q.put((x, fut))
        return await fut

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            items = [await self.q.get()]
            deadline = loop.time() + self.wait_s
            while len(items) < self.size:
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                try:
                    items.append(await asyncio.wait_for(self.q.get(), timeout))
                except TimeoutError:
                    break
            xs = np.concatenate([x for x, _ in items])
            try:
                ys = await loop.run_in_executor(self.pool, self.model.predict, xs)
            except Exception as exc:
                for _, f in items:
                    if not f.done():
                        f.set_exception(exc)
                continue
            for i, (_, f) in enumerate(items):
                if not f.done():
                    f.set_result(ys[i : i + 1])


@dataclass
class Gateway:
    model: str
    ledger: Ledger
    predlog: PredictionLog
    cfg: ServingConfig = field(default_factory=ServingConfig)
    metrics: Metrics = field(default_factory=Metrics)
    snapshot: Snapshot | None = None
    _cache: dict[str, ServedModel] = field(default_factory=dict)
    _batchers: dict[str, _Batcher] = field(default_factory=dict)
    _shadow_q: asyncio.Queue[tuple[np.ndarray, dict[str, Any]]] | None = None
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    last_reload: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="serve")
        self.shadow_pool = ThreadPoolExecutor(1, thread_name_prefix="shadow")
        self.load_pool = ThreadPoolExecutor(1, thread_name_prefix="load")

    # -- model state ---------------------------------------------------------------------------
    def _get(self, version: str) -> ServedModel:
        if version not in self._cache:
            self._cache[version] = load_served(self.model, version, xla=self.cfg.xla)
        return self._cache[version]

    def refresh(self) -> bool:
        """Read the ledger; load what changed; swap. Returns True when the snapshot changed.
        Blocking (runs in the load thread); a failed load keeps the current snapshot."""
        aliases, traffic, last_id = self.ledger.serving_state(self.model)
        if self.snapshot is not None and last_id == self.snapshot.ledger_id:
            return False
        champ_v = aliases.get("champion")
        if champ_v is None:
            if self.snapshot is None:
                raise NotReady(f"model {self.model!r} has no champion in the ledger")
            log.error(
                "ledger shows no champion for %s; keeping v%s",
                self.model,
                self.snapshot.champion.version,
            )
            return False
        canary_v, shadow_v = aliases.get("canary"), aliases.get("shadow")
        share = self.cfg.default_canary_share
        if traffic is not None and traffic[0] == canary_v:
            share = traffic[1]
        t0 = time.perf_counter()
        try:
            new = Snapshot(
                champion=self._get(champ_v),
                canary=self._get(canary_v) if canary_v and canary_v != champ_v else None,
                canary_share=share if canary_v else 0.0,
                shadow=self._get(shadow_v) if shadow_v and shadow_v != champ_v else None,
                ledger_id=last_id,
            )
        except Exception as exc:
            self.metrics.reloads.labels("failed").inc()
            if self.snapshot is None:
                raise
            log.error("reload failed, keeping the current models: %s", exc)
            return False
        old = self.snapshot
        self.snapshot = new
        keep = {m.version for m in (new.champion, new.canary, new.shadow) if m}
        for v in list(self._cache):
            if v not in keep:
                del self._cache[v]
        for alias in ("champion", "canary", "shadow"):
            m = getattr(new, alias)
            self.metrics.alias_version.labels(alias).set(float(m.version) if m else 0.0)
        self.metrics.canary_share.set(new.canary_share)
        if old is None or old.roles() != new.roles() or old.canary_share != new.canary_share:
            self.metrics.reloads.labels("ok").inc()
            self.last_reload = {
                "at": time.time(),
                "roles": new.roles(),
                "canary_share": new.canary_share,
                "load_s": time.perf_counter() - t0,
            }
            log.info("serving %s: %s, canary share %.2f", self.model, new.roles(), new.canary_share)
        return True

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.predlog.start()
        await loop.run_in_executor(self.load_pool, self.refresh)
        self._shadow_q = asyncio.Queue(maxsize=self.cfg.shadow_queue)
        self._tasks = [
            loop.create_task(self._poll()),
            loop.create_task(self._shadow_worker()),
        ]

    async def stop(self) -> None:
        for t in self._tasks + [b.task for b in self._batchers.values()]:
            t.cancel()
        self.predlog.close()
        for pool in (self.pool, self.shadow_pool, self.load_pool):
            pool.shutdown(wait=False, cancel_futures=True)

    async def _poll(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.cfg.reload_interval_s)
            try:
                await loop.run_in_executor(self.load_pool, self.refresh)
            except Exception as exc:  # the ledger is down: keep serving what we have
                log.error("ledger poll failed: %s", exc)
            self._prune_batchers()

    def _prune_batchers(self) -> None:
        """Drop the batchers of versions no longer served, once they have nothing queued."""
        for v, b in list(self._batchers.items()):
            if v not in self._cache and b.q.empty():
                b.task.cancel()
                del self._batchers[v]

    # -- predictions ---------------------------------------------------------------------------
    async def _call(self, m: ServedModel, x: np.ndarray) -> np.ndarray:
        if self.cfg.micro_batch:
            b = self._batchers.get(m.version)
            if b is None or b.model is not m:
                b = self._batchers[m.version] = _Batcher(
                    m, self.pool, self.cfg.max_batch_size, self.cfg.batch_wait_ms / 1000.0
                )
            return await b(x)
        # one window: call the compiled model right here, on the event loop. A hand-off to a
        # thread costs two wake-ups per request, which measured as most of the gateway's added
        # latency on 2 cores (bench/results/gateway.md); the call itself is under a millisecond
        return m.predict(x)

    async def _log(self, rows: list[PredictionRow]) -> None:
        """Commit the request's rows before it is acknowledged: on this thread when the log is
        idle (latency), through the writer's group commit when busy or micro-batching
        (throughput)."""
        if not self.cfg.micro_batch and self.predlog.write_now(rows):
            return
        await asyncio.wrap_future(self.predlog.submit(rows))

    async def predict(
        self, series_id: str, request_id: str, x: np.ndarray, window_end: str | None
    ) -> Answer:
        snap = self.snapshot
        if snap is None:
            raise NotReady("no model loaded yet")
        t0 = time.perf_counter()
        rows: list[PredictionRow] = []
        base: dict[str, Any] = {
            "model": self.model,
            "request_id": request_id,
            "series_id": series_id,
            "window_end": window_end,
        }
        use_canary = snap.canary is not None and goes_to_canary(
            series_id, snap.canary.version, snap.canary_share
        )
        y = None
        role, m = "champion", snap.champion
        if use_canary:
            assert snap.canary is not None
            try:
                y = await self._call(snap.canary, x)
                role, m = "canary", snap.canary
            except Exception as exc:  # the canary's error; the champion answers
                ms = (time.perf_counter() - t0) * 1000
                rows.append(PredictionRow(**base, version=snap.canary.version, role="canary",
                                          status="error", latency_ms=ms, error=str(exc)[:500]))  # fmt: skip
                self.metrics.requests.labels(snap.canary.version, "canary", "error").inc()
        if y is None:
            try:
                y = await self._call(m, x)
            except Exception as exc:
                ms = (time.perf_counter() - t0) * 1000
                rows.append(PredictionRow(**base, version=m.version, role=role, status="error",
                                          latency_ms=ms, error=str(exc)[:500]))  # fmt: skip
                self.metrics.requests.labels(m.version, role, "error").inc()
                await self._log(rows)
                raise
        forecast = [float(v) for v in np.asarray(y).reshape(-1)]
        ms = (time.perf_counter() - t0) * 1000
        rows.append(PredictionRow(**base, version=m.version, role=role, status="ok",
                                  latency_ms=ms, forecasts=forecast))  # fmt: skip
        await self._log(rows)
        total = time.perf_counter() - t0
        self.metrics.requests.labels(m.version, role, "ok").inc()
        self.metrics.latency.labels(m.version, role).observe(total)
        if snap.shadow is not None and self._shadow_q is not None:
            try:
                self._shadow_q.put_nowait(
                    (x, {**base, "version": snap.shadow.version, "_m": snap.shadow})
                )
            except asyncio.QueueFull:
                self.metrics.shadow_dropped.inc()
        return Answer(m.version, role, forecast, total * 1000)

    async def _shadow_worker(self) -> None:
        assert self._shadow_q is not None
        loop = asyncio.get_running_loop()
        while True:
            x, info = await self._shadow_q.get()
            m: ServedModel = info.pop("_m")
            t0 = time.perf_counter()
            status, forecast, err = "ok", None, None
            try:
                y = await asyncio.wait_for(
                    loop.run_in_executor(self.shadow_pool, m.predict, x), self.cfg.shadow_timeout_s
                )
                forecast = [float(v) for v in np.asarray(y).reshape(-1)]
            except Exception as exc:
                status, err = "error", f"{type(exc).__name__}: {exc}"[:500]
            ms = (time.perf_counter() - t0) * 1000
            self.metrics.requests.labels(m.version, "shadow", status).inc()
            if status == "ok":
                self.metrics.latency.labels(m.version, "shadow").observe(ms / 1000)
            self.predlog.submit([PredictionRow(**info, role="shadow", status=status, latency_ms=ms,
                                               forecasts=forecast, error=err)])  # fmt: skip
