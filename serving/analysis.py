"""Live evidence for a rollout step, read from the prediction log.

Operational: the candidate's error rate and p95 latency against the champion's.
Quality, once actuals exist: a scaled absolute error per labelled prediction (mean |forecast -
actual| over the horizon, divided by the series' mean absolute step change, so series of different
scales are comparable). Shadow and bake compare the two models on the *same requests* (a paired
Diebold-Mariano test); a canary answers other series than the champion, so canary vs champion is a
two-sample (Welch) test on comparable scaled errors. Verdicts follow the offline gate: significantly
better passes, significantly worse fails, anything else is inconclusive; too little evidence
is "waiting", and missing metrics never pass.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np
import pandas as pd

from components.config import RolloutConfig
from components.stats import diebold_mariano
from serving.predlog import PredictionLog

Verdict = Literal["passed", "failed", "inconclusive", "waiting"]


@dataclass
class StepEvidence:
    outcome: Verdict
    reasons: list[str] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ops(rows: pd.DataFrame) -> dict[str, Any]:
    n = len(rows)
    errors = int((rows["status"] != "ok").sum()) if n else 0
    ok = rows[rows["status"] == "ok"] if n else rows
    return {
        "requests": n,
        "errors": errors,
        "error_rate": errors / n if n else None,
        "p95_ms": float(np.percentile(ok["latency_ms"], 95)) if len(ok) else None,
    }


def scaled_losses(rows: pd.DataFrame, actuals: pd.DataFrame, freq: str) -> pd.DataFrame:
    """request_id, series_id, loss for the ok rows whose whole horizon has arrived."""
    ok = rows[(rows["status"] == "ok") & rows["window_end"].notna()]
    if ok.empty or actuals.empty:
        return pd.DataFrame(columns=["request_id", "series_id", "loss"])
    offset = pd.tseries.frequencies.to_offset(freq)
    act = actuals.copy()
    act["ts"] = pd.to_datetime(act["ts"])
    truth = {(s, t): v for s, t, v in act[["series_id", "ts", "value"]].itertuples(index=False)}
    scale = {}
    for sid, g in act.sort_values("ts").groupby("series_id"):
        d = np.abs(np.diff(g["value"].to_numpy()))
        scale[sid] = float(d.mean()) if d.size and d.mean() > 0 else 1.0
    out = []
    for rid, sid, end, fc in ok[["request_id", "series_id", "window_end", "forecasts"]].itertuples(
        index=False
    ):
        f = json.loads(fc)
        t0 = pd.Timestamp(end)
        ys = [truth.get((sid, t0 + offset * (k + 1))) for k in range(len(f))]
        if any(y is None for y in ys):
            continue
        err = float(np.mean(np.abs(np.asarray(f) - np.asarray(ys, dtype=float))))
        out.append((rid, sid, err / scale.get(sid, 1.0)))
    return pd.DataFrame(out, columns=["request_id", "series_id", "loss"])


def warm_up(plog: PredictionLog, model: str, freq: str) -> None:
    """Do once what the first analysis would otherwise do cold: import the tests (SciPy), parse
    the frequency, open and read the log. Cold, the first analysis took about 1 s more on 2 cores,
    all of it added to the time a breach takes to act on (bench/gateway.py, part 4)."""
    from datetime import UTC

    from scipy import stats  # noqa: F401  (Welch here, Diebold-Mariano in components.stats)

    pd.tseries.frequencies.to_offset(freq)
    plog.frame(model, datetime.now(UTC))
    plog.actuals_frame([])


def _verdict(p: float, mean_diff: float, alpha: float) -> str:
    if math.isnan(p) or p >= alpha:
        return "inconclusive"
    return "better" if mean_diff < 0 else "worse"


def analyse_step(
    plog: PredictionLog,
    model: str,
    *,
    step: str,
    candidate: str,
    baseline: str,
    since: datetime,
    freq: str,
    cfg: RolloutConfig,
    min_labelled: int,
    baseline_ops_since: datetime | None = None,
) -> StepEvidence:
    """Judge ``candidate`` against ``baseline`` over predictions logged since ``since``.

    step: "shadow" (candidate mirrored, baseline = champion), "canary" (candidate answers a share),
    "bake" (candidate = new champion, baseline = previous champion mirrored as shadow).

    Latency is compared between like paths: in the bake, the new champion's against the previous
    champion's *while it was champion* (rows since ``baseline_ops_since``), never against a mirrored
    shadow call, which skips the client path."""
    df = plog.frame(model, since)
    if df.empty:
        return StepEvidence("waiting", ["no predictions logged yet"], {"step": step})
    cand_role = {"shadow": "shadow", "canary": "canary", "bake": "champion"}[step]
    base_role = {"shadow": "champion", "canary": "champion", "bake": "shadow"}[step]
    cand = df[(df["role"] == cand_role) & (df["version"] == candidate)]
    base = df[(df["role"] == base_role) & (df["version"] == baseline)]
    ops_base = base
    if step == "bake" and baseline_ops_since is not None:
        before = plog.frame(model, baseline_ops_since)
        ops_base = before[(before["role"] == "champion") & (before["version"] == baseline)]
    ev: dict[str, Any] = {
        "step": step,
        "candidate": {"version": candidate, "role": cand_role, **_ops(cand)},
        "baseline": {"version": baseline, "role": base_role, **_ops(base)},
        "baseline_latency": {"role": "champion" if step == "bake" else base_role, **_ops(ops_base)},
        "since": since.isoformat(),
    }
    if cand.empty or base.empty:
        return StepEvidence(
            "waiting", [f"no {cand_role if cand.empty else base_role} traffic yet"], ev
        )
    reasons: list[str] = []
    c_ops = ev["candidate"]
    if c_ops["error_rate"] > cfg.max_error_rate:
        reasons.append(
            f"error rate {c_ops['error_rate']:.1%} of v{candidate} ({c_ops['errors']}/{c_ops['requests']}) "
            f"is above {cfg.max_error_rate:.1%}"
        )
    cp, bp = c_ops["p95_ms"], ev["baseline_latency"]["p95_ms"]
    if cp is not None and bp is not None:
        limit = max(bp * cfg.max_p95_ratio, bp + cfg.p95_slack_ms)
        if cp > limit:
            reasons.append(
                f"p95 latency {cp:.1f} ms of v{candidate} is above {limit:.1f} ms (v{baseline}: {bp:.1f} ms)"
            )
    if reasons:  # an operational breach fails at once, whatever the labels say
        return StepEvidence("failed", reasons, ev)
    actuals = plog.actuals_frame(sorted(set(df["series_id"])))
    lc = scaled_losses(cand, actuals, freq)
    lb = scaled_losses(base, actuals, freq)
    if step in ("shadow", "bake"):
        paired = lc.merge(lb, on="request_id", suffixes=("_c", "_b"))
        n = len(paired)
        ev["labelled"] = n
        if n < min_labelled:
            return StepEvidence(
                "waiting", [f"{n} paired labelled predictions, need {min_labelled}"], ev
            )
        dm = diebold_mariano(paired["loss_c"].to_numpy(), paired["loss_b"].to_numpy(), horizon=1)
        test = {"test": "diebold_mariano_paired", **dm.to_dict()}
        test["mean_loss_candidate"] = float(paired["loss_c"].mean())
        test["mean_loss_baseline"] = float(paired["loss_b"].mean())
        p, diff = dm.p_value, dm.mean_diff
    else:
        n = min(len(lc), len(lb))
        ev["labelled"] = {"candidate": len(lc), "baseline": len(lb)}
        if n < min_labelled:
            return StepEvidence(
                "waiting",
                [
                    f"{len(lc)} canary and {len(lb)} champion labelled predictions, need {min_labelled} each"
                ],
                ev,
            )
        from scipy import stats

        t = stats.ttest_ind(lc["loss"], lb["loss"], equal_var=False)
        diff = float(lc["loss"].mean() - lb["loss"].mean())
        p = float(t.pvalue)
        test = {
            "test": "welch_two_sample",
            "statistic": float(t.statistic),
            "p_value": p,
            "mean_diff": diff,
            "mean_loss_candidate": float(lc["loss"].mean()),
            "mean_loss_baseline": float(lb["loss"].mean()),
            "n_candidate": len(lc),
            "n_baseline": len(lb),
        }
    verdict = _verdict(p, diff, cfg.significance)
    test["verdict"], test["alpha"] = verdict, cfg.significance
    ev["quality"] = {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in test.items()
    }
    what = f"v{candidate} vs v{baseline}: scaled error {test['mean_loss_candidate']:.3f} vs {test['mean_loss_baseline']:.3f} (p {p:.3g})"
    if verdict == "better":
        return StepEvidence("passed", [f"{step}: {what}, significantly better"], ev)
    if verdict == "worse":
        return StepEvidence("failed", [f"{step}: {what}, significantly worse"], ev)
    return StepEvidence("inconclusive", [f"{step}: {what}, inconclusive"], ev)
