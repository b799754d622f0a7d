"""Prometheus metrics of one gateway (its own registry, so tests can run several in a process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "seqops_requests", "Predictions by version, role and status.",
            ["version", "role", "status"], registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            "seqops_request_latency_seconds", "Server-side latency of answered predictions.",
            ["version", "role"], buckets=_BUCKETS, registry=r,
        )  # fmt: skip
        self.invalid = Counter(
            "seqops_invalid_requests", "Requests refused with 422.", ["endpoint"], registry=r
        )
        self.shadow_dropped = Counter(
            "seqops_shadow_dropped", "Mirrored requests dropped (shadow queue full).", registry=r
        )
        self.reloads = Counter(
            "seqops_reloads", "Model reloads after an alias move.", ["result"], registry=r
        )
        self.alias_version = Gauge(
            "seqops_alias_version", "Version each role is served by (0: none).", ["alias"],
            registry=r,
        )  # fmt: skip
        self.canary_share = Gauge(
            "seqops_canary_share", "Share of series the canary answers.", registry=r
        )
        self.actuals = Counter("seqops_actuals", "Observed values ingested.", registry=r)
