"""The retrain-time offline gate: beat seasonal naive by a margin, and stay within tolerance of
the current champion evaluated on the same windows."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from components.config import GateConfig, PromotionConfig
from components.stats import DMResult


@dataclass
class GateDecision:
    passed: bool
    metric: str
    reasons: list[str] = field(default_factory=list)
    checks: list[dict[str, object]] = field(default_factory=list)
    champion_version: str | None = None
    outcome: str = ""

    def __post_init__(self) -> None:
        if not self.outcome:
            self.outcome = "passed" if self.passed else "failed"

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


def promotion_gate(
    cfg: GateConfig,
    pcfg: PromotionConfig,
    *,
    candidate: dict[str, float],
    seasonal_naive: dict[str, float],
    champion: dict[str, float] | None,
    champion_version: str | None,
    dm: DMResult | None,
) -> GateDecision:
    """Promotion-time gate: floors, seasonal naive, relative change vs the champion, and a paired
    Diebold-Mariano test on per-window losses with three outcomes (pass, fail, inconclusive)."""
    decision = offline_gate(
        cfg,
        candidate=candidate,
        seasonal_naive=seasonal_naive,
        champion=champion,
        champion_version=champion_version,
    )
    m = cfg.metric
    cand = float(candidate[m])
    if pcfg.max_mase is not None:
        ok = float(candidate["mase"]) <= pcfg.max_mase
        decision.checks.append(
            {
                "check": "max_mase",
                "passed": ok,
                "candidate": float(candidate["mase"]),
                "limit": pcfg.max_mase,
            }
        )
        if not ok:
            decision.reasons.append(
                f"MASE {float(candidate['mase']):.4f} is above the floor {pcfg.max_mase}"
            )
    if champion is not None and pcfg.min_improvement > 0:
        limit = float(champion[m]) * (1 - pcfg.min_improvement)
        ok = cand <= limit
        decision.checks.append(
            {"check": "min_improvement", "passed": ok, "candidate": cand, "limit": limit}
        )
        if not ok:
            decision.reasons.append(
                f"{m.upper()} {cand:.4f} does not improve on champion v{champion_version} by {pcfg.min_improvement:.0%} (limit {limit:.4f})"
            )
    decision.passed = not decision.reasons
    decision.outcome = "passed" if decision.passed else "failed"
    if dm is not None:
        significant = dm.p_value == dm.p_value and dm.p_value < pcfg.significance
        verdict = (
            "better"
            if significant and dm.mean_diff < 0
            else "worse"
            if significant
            else "inconclusive"
        )
        decision.checks.append(
            {
                "check": "diebold_mariano",
                "verdict": verdict,
                "alpha": pcfg.significance,
                **dm.to_dict(),
            }
        )
        if verdict == "worse":
            decision.reasons.append(
                f"paired test: significantly worse than champion v{champion_version} (DM {dm.statistic:.2f}, p {dm.p_value:.3g})"
            )
            decision.passed, decision.outcome = False, "failed"
        elif verdict == "inconclusive" and decision.passed:
            msg = (
                f"paired test inconclusive vs champion v{champion_version} (DM {dm.statistic:.2f}, p {dm.p_value:.3g} "
                f">= {pcfg.significance}, {dm.n} windows)"
            )
            decision.passed = False
            if pcfg.inconclusive == "fail":
                decision.reasons.append(msg + "; promotion.inconclusive is 'fail'")
                decision.outcome = "failed"
            else:
                decision.reasons.append(
                    msg + "; waiting for more data (promotion.inconclusive is 'wait')"
                )
                decision.outcome = "inconclusive"
    return decision
