"""Build and run a gateway for one model (``seqops serve``)."""

from __future__ import annotations

import logging
from pathlib import Path

from components.config import ServingConfig
from components.errors import BadInputError
from serving.gateway import Gateway
from serving.predlog import PredictionLog, resolve_predlog_url

log = logging.getLogger("seqops.serve")


def build_gateway(
    model: str,
    *,
    cfg: ServingConfig | None = None,
    state_dir: str | Path = ".seqops",
    ledger_url: str | None = None,
    predlog_url: str | None = None,
) -> Gateway:
    """Open the registry, ledger and prediction log; refuse a model with no champion (exit 2)."""
    from registry.promotion import ensure_model
    from registry.tracking import open_registry

    cfg = cfg or ServingConfig()
    client, ledger, uri = open_registry(state_dir, ledger_url)
    ensure_model(client, model)
    if "champion" not in ledger.aliases(model):
        raise BadInputError(
            f"model {model!r} has no champion to serve; promote one first (seqops promote)"
        )
    plog = PredictionLog(resolve_predlog_url(predlog_url, state_dir, cfg.predlog_url))
    log.info(
        "gateway for %s: MLflow %s, ledger %s, prediction log %s",
        model,
        uri,
        ledger.safe_url,
        plog.url,
    )
    return Gateway(model=model, ledger=ledger, predlog=plog, cfg=cfg)


def run(gw: Gateway, host: str, port: int) -> None:
    import uvicorn

    from serving.app import create_app

    uvicorn.run(
        create_app(gw),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=10,
    )
