"""Data drift with Evidently 0.7: a reference frame against a current frame.

Frames larger than ``sample_size`` rows are sampled uniformly without replacement with a fixed
seed; the summary states the sizes before and after sampling.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


@dataclass
class DriftSummary:
    reference_label: str
    drift_detected: bool
    drift_share: float
    drift_share_threshold: float
    drifted_columns: list[str]
    tests: dict[str, dict[str, object]]
    reference_rows: int
    current_rows: int
    sampled: dict[str, object] = field(default_factory=dict)
    seconds: float = 0.0
    html_path: str | None = None
    json_path: str | None = None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def drift_features(
    frame: pd.DataFrame, target: str, covariates: list[str], series_col: str | None
) -> pd.DataFrame:
    """Columns compared for drift: the target, its one-step change (dynamics), and covariates."""
    out = pd.DataFrame({target: frame[target].astype("float64")})
    diff = frame.groupby(series_col)[target].diff() if series_col else frame[target].diff()
    out[f"{target}_diff"] = diff.astype("float64")
    for c in covariates:
        out[c] = frame[c].astype("float64")
    return out


def _sample(frame: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    return frame.sample(n=n, random_state=seed) if len(frame) > n else frame


def run_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    out_dir: Path,
    reference_label: str,
    sample_size: int = 50_000,
    drift_share: float = 0.5,
    seed: int = 0,
) -> DriftSummary:
    """Run Evidently's DataDriftPreset and save HTML and JSON beside a machine-readable summary."""
    from evidently import Report
    from evidently.presets import DataDriftPreset

    t0 = time.perf_counter()
    cols = [c for c in reference.columns if c in current.columns]
    ref = _sample(reference[cols].dropna(how="all"), sample_size, seed)
    cur = _sample(current[cols].dropna(how="all"), sample_size, seed + 1)
    sampled = {
        "strategy": f"uniform random rows without replacement, seed {seed} (reference) / {seed + 1} (current)",
        "sample_size": sample_size,
        "reference_rows_total": int(len(reference)),
        "current_rows_total": int(len(current)),
        "reference_rows_used": int(len(ref)),
        "current_rows_used": int(len(cur)),
        "was_sampled": bool(len(reference) > sample_size or len(current) > sample_size),
    }
    snapshot = Report([DataDriftPreset(drift_share=drift_share)]).run(
        current_data=cur, reference_data=ref
    )
    raw = snapshot.dict()
    tests: dict[str, dict[str, object]] = {}
    share = 0.0
    for m in raw.get("metrics", []):
        conf = m.get("config", {})
        kind = str(conf.get("type", ""))
        if kind.endswith("ValueDrift"):
            method = str(conf.get("method", ""))
            thr = float(conf.get("threshold", 0.05))
            val = float(m["value"])
            is_p = "p_value" in method
            drifted = (val < thr) if is_p else (val >= thr)
            tests[str(conf["column"])] = {
                "method": method,
                "statistic": val,
                "threshold": thr,
                "drifted": bool(drifted),
                "kind": "p_value" if is_p else "distance",
            }
        elif kind.endswith("DriftedColumnsCount"):
            share = float(m["value"]["share"])
    drifted_cols = sorted(c for c, t in tests.items() if t["drifted"])
    out_dir.mkdir(parents=True, exist_ok=True)
    html = out_dir / "drift_report.html"
    snapshot.save_html(str(html))
    _annotate_html(html, sampled, reference_label)
    summary = DriftSummary(
        reference_label=reference_label,
        drift_detected=bool(share >= drift_share and drifted_cols),
        drift_share=share,
        drift_share_threshold=drift_share,
        drifted_columns=drifted_cols,
        tests=tests,
        reference_rows=int(len(reference)),
        current_rows=int(len(current)),
        sampled=sampled,
        seconds=time.perf_counter() - t0,
        html_path=str(html),
    )
    js = out_dir / "drift_summary.json"
    js.write_text(json.dumps(summary.to_dict(), indent=2, default=_jsonable))
    summary.json_path = str(js)
    js.write_text(json.dumps(summary.to_dict(), indent=2, default=_jsonable))
    log.info(
        "drift vs %s: share %.2f (threshold %.2f), drifted %s, %.1fs",
        reference_label,
        share,
        drift_share,
        drifted_cols or "none",
        summary.seconds,
    )
    return summary


def _jsonable(o: object) -> object:
    if isinstance(o, np.generic):
        return o.item()
    return str(o)


def _annotate_html(path: Path, sampled: dict[str, object], reference_label: str) -> None:
    """Prepend what was compared and sampled, so the report says it itself."""
    note = (
        '<div style="font-family:sans-serif;padding:8px 12px;background:#f4f6fb;border-bottom:1px solid #ccd">'
        f"<b>seqops drift report</b> &mdash; reference: {reference_label}. "
        f"Rows used: reference {sampled['reference_rows_used']} of {sampled['reference_rows_total']}, "
        f"current {sampled['current_rows_used']} of {sampled['current_rows_total']}"
        + (f"; sampled ({sampled['strategy']})" if sampled["was_sampled"] else "; no sampling")
        + ".</div>"
    )
    text = path.read_text(encoding="utf-8")
    i = text.find("<body")
    if i >= 0:
        j = text.find(">", i) + 1
        text = text[:j] + note + text[j:]
    else:
        text = note + text
    path.write_text(text, encoding="utf-8")
