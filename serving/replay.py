"""``seqops replay``: send held-out windows of a config's data to a gateway at a steady rate and
post the actuals after a delay (the truth arriving late), printing live counts."""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from components.config import JobConfig


@dataclass(frozen=True)
class ReplayItem:
    series_id: str
    window: list[list[float]] | list[float]
    window_end: str
    actuals: list[tuple[str, float]]  # (timestamp, value) of the next horizon steps


def held_out_items(job: JobConfig, base_dir: Path | None = None) -> list[ReplayItem]:
    """Every window whose forecast steps fall in the test split, series interleaved."""
    import pandas as pd

    from components.data import load_frame, to_panel
    from components.windows import segment_bounds

    panel = to_panel(load_frame(job.data, base_dir), job.data, job.missing)
    L, H = job.window.lookback, job.window.horizon
    per_series: list[list[ReplayItem]] = []
    for sid, ts, vals in zip(panel.ids, panel.timestamps, panel.values, strict=True):
        start, n = segment_bounds(len(vals), job.split)["test"][0], len(vals)
        items = []
        for t in range(max(start - 1, L - 1), n - H):
            w = vals[t - L + 1 : t + 1]
            window = w[:, 0].tolist() if w.shape[1] == 1 else w.tolist()
            stamps = [pd.Timestamp(x).isoformat() for x in ts[t + 1 : t + 1 + H]]
            acts = list(zip(stamps, vals[t + 1 : t + 1 + H, 0].astype(float).tolist(), strict=True))
            items.append(ReplayItem(sid, window, pd.Timestamp(ts[t]).isoformat(), acts))
        per_series.append(items)
    out = [x for group in itertools.zip_longest(*per_series) for x in group if x is not None]
    if not out:
        raise ValueError("the config's test split holds no complete window")
    return out


async def replay(
    url: str,
    items: list[ReplayItem],
    *,
    rps: float,
    duration_s: float,
    label_delay_s: float | None,
    concurrency: int = 64,
    progress: bool = True,
    timeout_s: float = 10.0,
    record: list[tuple[str, str, str]] | None = None,
    stop: Any = None,
) -> dict[str, Any]:
    """Returns counts and client-side latency; ``record`` (if given) collects (request_id,
    version, role) of every acknowledged (200) request; ``stop`` (a threading.Event) ends early.

    The heap is frozen first: a full garbage collection of a large heap (a test or benchmark
    process that has TensorFlow and MLflow loaded) stalls this loop for ~300 ms, and every
    request in flight would count that stall as gateway latency."""
    import gc

    import httpx

    gc.collect()
    gc.freeze()

    url = url.rstrip("/")
    counts: Counter[str] = Counter()
    latencies: list[float] = []
    versions: Counter[str] = Counter()
    pending: list[tuple[float, ReplayItem]] = []
    sem = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(timeout=timeout_s, limits=limits) as client:

        async def one(item: ReplayItem) -> None:
            body = {
                "series_id": item.series_id,
                "request_id": uuid.uuid4().hex,
                "window": item.window,
                "window_end": item.window_end,
            }
            async with sem:
                t0 = time.perf_counter()
                try:
                    r = await client.post(f"{url}/predict", json=body)
                except httpx.HTTPError as exc:
                    counts[f"transport:{type(exc).__name__}"] += 1
                    counts["errors"] += 1
                    return
                latencies.append((time.perf_counter() - t0) * 1000)
            if r.status_code == 200:
                counts["ok"] += 1
                data = r.json()
                versions[f"v{data['version']} {data['role']}"] += 1
                if record is not None:
                    record.append((str(body["request_id"]), data["version"], data["role"]))
                if label_delay_s is not None:
                    pending.append((time.monotonic() + label_delay_s, item))
            else:
                counts[f"http_{r.status_code}"] += 1
                counts["errors"] += 1

        async def post_due(force: bool = False) -> None:
            now = time.monotonic()
            due = [it for t, it in pending if force or t <= now]
            if not due:
                return
            pending[:] = [(t, it) for t, it in pending if not (force or t <= now)]
            rows = [
                {"series_id": it.series_id, "timestamp": ts, "value": v}
                for it in due
                for ts, v in it.actuals
            ]
            try:
                r = await client.post(f"{url}/actuals", json={"actuals": rows})
                counts["actuals_posted" if r.status_code == 200 else "actuals_failed"] += len(rows)
            except httpx.HTTPError:
                counts["actuals_failed"] += len(rows)

        tasks: set[asyncio.Task[None]] = set()
        start = time.monotonic()
        last_print = start
        n_sent = 0
        source = itertools.cycle(items)
        while (elapsed := time.monotonic() - start) < duration_s and not (stop and stop.is_set()):
            target = int(elapsed * rps) + 1
            while n_sent < target:
                t = asyncio.create_task(one(next(source)))
                tasks.add(t)
                t.add_done_callback(tasks.discard)
                n_sent += 1
            await post_due()
            if progress and time.monotonic() - last_print >= 1.0:
                last_print = time.monotonic()
                print(
                    f"[{elapsed:6.1f}s] sent {n_sent} ok {counts['ok']} errors {counts['errors']} "
                    f"actuals {counts['actuals_posted']} | "
                    + ", ".join(f"{k}: {v}" for k, v in sorted(versions.items())),
                    file=sys.stderr,
                    flush=True,
                )
            await asyncio.sleep(min(0.005, 1.0 / max(rps, 1.0)))
        if tasks:
            await asyncio.gather(*tasks)
        if label_delay_s is not None:
            while pending:
                wait = min(t for t, _ in pending) - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                await post_due()
    lat = np.asarray(latencies)
    wall = time.monotonic() - start
    return {
        "sent": n_sent,
        "ok": counts["ok"],
        "errors": counts["errors"],
        "error_kinds": {k: v for k, v in counts.items() if k not in ("ok", "errors")},
        "by_version_role": dict(versions),
        "actuals_posted": counts["actuals_posted"],
        "wall_s": round(wall, 2),
        "achieved_rps": round(n_sent / wall, 1) if wall > 0 else None,
        "latency_ms": {  # null when nothing was answered (JSON has no NaN)
            q: float(np.percentile(lat, int(q[1:]))) if lat.size else None
            for q in ("p50", "p95", "p99")
        },
    }
