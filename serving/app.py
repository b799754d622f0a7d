"""HTTP layer of the gateway (Starlette on uvicorn): /predict, /actuals, /metrics, /healthz, /readyz.

Bad input of any kind is a 422 with a precise message (logged), never a 500.
"""

from __future__ import annotations

import json
import logging
import math
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import numpy as np
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from serving.gateway import Gateway, NotReady

log = logging.getLogger("seqops.serve")


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    series_id: str = Field(min_length=1, max_length=256)
    request_id: str = Field(min_length=1, max_length=128)
    window: list[float] | list[list[float]] = Field(
        description="Lookback window in original units: values (one feature) or rows of features."
    )
    window_end: str | None = Field(None, description="ISO timestamp of the window's last value.")

    @field_validator("window_end")
    @classmethod
    def _iso(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                datetime.fromisoformat(v)
            except ValueError:
                raise ValueError(f"window_end {v!r} is not an ISO timestamp") from None
        return v


class Actual(BaseModel):
    model_config = ConfigDict(extra="forbid")

    series_id: str = Field(min_length=1, max_length=256)
    timestamp: str
    value: float

    @field_validator("timestamp")
    @classmethod
    def _iso(cls, v: str) -> str:
        try:
            return datetime.fromisoformat(v).isoformat()
        except ValueError:
            raise ValueError(f"timestamp {v!r} is not an ISO timestamp") from None

    @field_validator("value")
    @classmethod
    def _finite(cls, v: float) -> float:
        if not math.isfinite(v):
            raise ValueError("value must be finite (no NaN or inf)")
        return v


class ActualsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    actuals: list[Actual] = Field(min_length=1, max_length=100_000)


def _problem(gw: Gateway, endpoint: str, detail: list[dict[str, Any]] | str) -> JSONResponse:
    gw.metrics.invalid.labels(endpoint).inc()
    log.warning("422 on %s: %s", endpoint, detail)
    return JSONResponse({"detail": detail}, status_code=422)


async def _body(request: Request) -> Any:
    raw = await request.body()
    return json.loads(raw)  # Python's parser accepts NaN/Infinity; they are refused below


def _errors(exc: ValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
        for e in exc.errors(include_url=False)
    ]


def create_app(gw: Gateway) -> Starlette:
    async def predict(request: Request) -> Response:
        try:
            req = PredictRequest.model_validate(await _body(request))
        except ValidationError as exc:
            return _problem(gw, "predict", _errors(exc))
        except ValueError as exc:  # not JSON, or not UTF-8
            return _problem(gw, "predict", f"body is not valid JSON: {exc}")
        snap = gw.snapshot
        if snap is None:
            return JSONResponse({"detail": "no model loaded yet"}, status_code=503)
        m = snap.champion
        try:
            x = np.asarray(req.window, dtype=np.float64)
        except ValueError:
            return _problem(gw, "predict", "window rows have different lengths")
        if x.ndim == 1:
            x = x[:, None]
        if x.shape != (m.lookback, m.n_features):
            want = (
                f"{m.lookback} values"
                if m.n_features == 1
                else f"{m.lookback} rows of {m.n_features} features"
            )
            got = (
                f"{x.shape[0]} values"
                if x.shape[1] == 1
                else f"{x.shape[0]} rows of {x.shape[1]} features"
            )
            return _problem(
                gw, "predict", f"window has {got}; model {gw.model} v{m.version} expects {want}"
            )
        bad = ~np.isfinite(x)
        if bad.any():
            where = np.argwhere(bad)[:5].tolist()
            return _problem(gw, "predict", f"window contains NaN or inf at positions {where}")
        try:
            ans = await gw.predict(
                req.series_id, req.request_id, x[None].astype(np.float32), req.window_end
            )
        except NotReady as exc:
            return JSONResponse({"detail": str(exc)}, status_code=503)
        except Exception as exc:  # the champion itself failed: the run failed, not the client
            log.exception("prediction failed")
            return JSONResponse({"detail": f"prediction failed: {exc}"}, status_code=503)
        return JSONResponse(
            {
                "request_id": req.request_id,
                "series_id": req.series_id,
                "model": gw.model,
                "version": ans.version,
                "role": ans.role,
                "forecast": ans.forecast,
                "latency_ms": round(ans.latency_ms, 3),
            }
        )

    async def post_actuals(request: Request) -> Response:
        try:
            req = ActualsRequest.model_validate(await _body(request))
        except ValidationError as exc:
            return _problem(gw, "actuals", _errors(exc))
        except ValueError as exc:
            return _problem(gw, "actuals", f"body is not valid JSON: {exc}")
        import asyncio

        items = [(a.series_id, a.timestamp, a.value) for a in req.actuals]
        n = await asyncio.get_running_loop().run_in_executor(None, gw.predlog.add_actuals, items)
        gw.metrics.actuals.inc(n)
        return JSONResponse({"stored": n})

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(gw.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        snap = gw.snapshot
        if snap is None:
            return JSONResponse({"status": "loading"}, status_code=503)
        return JSONResponse(
            {
                "status": "ready",
                "model": gw.model,
                "roles": snap.roles(),
                "canary_share": snap.canary_share,
                "last_reload": gw.last_reload,
            }
        )

    @asynccontextmanager
    async def lifespan(app):
        await gw.start()
        import gc

        # the models, TensorFlow and MLflow are loaded: move them out of the collector's way,
        # or full collections of that heap stall requests for ~300 ms under load
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await gw.stop()

    return Starlette(
        routes=[
            Route("/predict", predict, methods=["POST"]),
            Route("/actuals", post_actuals, methods=["POST"]),
            Route("/metrics", metrics),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
        ],
        lifespan=lifespan,
    )
