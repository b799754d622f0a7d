"""The retrain-time offline gate: beat seasonal naive by a margin, and stay within tolerance of
the current champion evaluated on the same windows."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from components.config import GateConfig


@dataclass
class GateDecision:
    passed: bool
    metric: str
    reasons: list[str] = field(default_factory=list)
    checks: list[dict[str, object]] = field(default_factory=list)
    champion_version: str | None = None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def offline_gate(
    cfg: GateConfig,
    *,
    candidate: dict[str, float],
    seasonal_naive: dict[str, float],
    champion: dict[str, float] | None = None,
    champion_version: str | None = None,
    champion_problem: str | None = None,
) -> GateDecision:
    """``candidate``/``seasonal_naive``/``champion`` are metric tables on identical windows."""
    m = cfg.metric
    cand = float(candidate[m])
    checks: list[dict[str, object]] = []
    reasons: list[str] = []

    limit = (1.0 - cfg.seasonal_naive_margin) * float(seasonal_naive[m])
    ok = cand == cand and cand <= limit
    checks.append(
        {
            "check": "beats_seasonal_naive",
            "passed": ok,
            "candidate": cand,
            "baseline": float(seasonal_naive[m]),
            "limit": limit,
            "margin": cfg.seasonal_naive_margin,
        }
    )
    if not ok:
        reasons.append(
            f"{m.upper()} {cand:.4f} does not beat seasonal naive {float(seasonal_naive[m]):.4f} "
            f"by the required margin {cfg.seasonal_naive_margin:.0%} (limit {limit:.4f})"
        )
    if champion_problem:
        checks.append({"check": "vs_champion", "passed": False, "problem": champion_problem})
        reasons.append(f"cannot compare with champion v{champion_version}: {champion_problem}")
    elif champion is not None:
        ch = float(champion[m])
        climit = ch * (1.0 + cfg.champion_tolerance)
        ok = cand <= climit
        checks.append(
            {
                "check": "vs_champion",
                "passed": ok,
                "candidate": cand,
                "champion": ch,
                "limit": climit,
                "tolerance": cfg.champion_tolerance,
                "champion_version": champion_version,
            }
        )
        if not ok:
            reasons.append(
                f"{m.upper()} {cand:.4f} is worse than champion v{champion_version} {ch:.4f} beyond the "
                f"tolerance {cfg.champion_tolerance:.0%} (limit {climit:.4f})"
            )
    return GateDecision(
        passed=not reasons,
        metric=m,
        reasons=reasons,
        checks=checks,
        champion_version=champion_version,
    )
