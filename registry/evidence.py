"""Gate evidence recomputed at promotion time: candidate and champion scored on identical test
windows of the latest data (each with its own lookback), plus per-window losses for the paired test."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from components.config import JobConfig
from components.data import load_frame, to_panel
from components.errors import DataContractError
from components.evaluation import evaluate, series_first_rows
from components.metrics import mase_scales, metric_table, per_window_loss
from components.stats import DMResult, diebold_mariano
from components.windows import build_windows, split_panel
from registry.champion import Champion

log = logging.getLogger(__name__)

METRICS = ("mae", "rmse", "smape", "mase")


@dataclass
class Evidence:
    candidate: dict[str, float]
    seasonal_naive: dict[str, float]
    naive: dict[str, float]
    champion: dict[str, float] | None = None
    dm: DMResult | None = None
    windows: int = 0
    champion_problem: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate,
            "champion": self.champion,
            "seasonal_naive": self.seasonal_naive,
            "naive": self.naive,
            "dm": self.dm.to_dict() if self.dm else None,
            "windows": self.windows,
            "champion_problem": self.champion_problem,
            "data": self.data,
        }


def _pick(table: dict[str, object]) -> dict[str, float]:
    return {m: float(table[m]) for m in METRICS}  # type: ignore[arg-type]


def promotion_evidence(
    job: JobConfig, candidate: Champion, champion: Champion | None, base_dir: Path | None
) -> Evidence:
    from validation.contract import check_contract

    frame = load_frame(job.data, base_dir)
    contract = check_contract(job, frame)
    if not contract.success:
        raise DataContractError(
            f"data contract failed for {job.data.path}",
            failures=contract.plain_lines(),
            report_paths={},
        )
    panel = to_panel(frame, job.data, job.missing)
    segs = split_panel(panel, job.window, job.split)
    test = build_windows(panel, segs, "test", job.window)
    scales = mase_scales(panel.values, [b["train"] for b in segs.bounds])
    first = series_first_rows([len(v) for v in panel.values])
    res = evaluate(
        test, candidate.predict, scales=scales, first_rows=first, season_length=job.season_length()
    )  # type: ignore[arg-type]
    ev = Evidence(
        candidate=_pick(res.metrics["model"]),
        seasonal_naive=_pick(res.metrics["seasonal_naive"]),
        naive=_pick(res.metrics["naive"]),
        windows=len(test),
        data={"path": job.data.path, "rows": int(len(frame)), "series": len(panel.ids)},
    )
    if champion is None:
        return ev
    if champion.n_features != panel.n_features or champion.horizon != job.window.horizon:
        ev.champion_problem = (
            f"champion v{champion.version} takes {champion.n_features} features / horizon {champion.horizon}, "
            f"the candidate {panel.n_features} / {job.window.horizon}"
        )
        return ev
    starts_c = test.origins() - champion.lookback + 1
    ok = starts_c >= first[test.series_index]
    if not ok.any():
        ev.champion_problem = f"no test window has the {champion.lookback} steps of history champion v{champion.version} needs"
        return ev
    xc = test.data[starts_c[ok][:, None] + np.arange(champion.lookback)]
    y, sc = res.y_true[ok], res.scale[ok]
    ch_pred = np.asarray(champion.predict(xc), np.float32)
    cand_pred = res.forecasts["model"][ok]
    ev.champion = _pick(metric_table(y, ch_pred, sc))
    ev.candidate = _pick(metric_table(y, cand_pred, sc))  # on exactly the windows both could score
    ev.seasonal_naive = _pick(metric_table(y, res.forecasts["seasonal_naive"][ok], sc))
    ev.windows = int(ok.sum())
    ev.dm = diebold_mariano(
        per_window_loss(y, cand_pred, sc, job.gate.metric),
        per_window_loss(y, ch_pred, sc, job.gate.metric),
        horizon=job.window.horizon,
    )
    return ev
