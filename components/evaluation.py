"""Test-split evaluation and rolling-origin backtests for the model and its baselines."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from components.baselines import naive, seasonal_naive
from components.metrics import metric_table, per_window_loss
from components.windows import WindowSet

log = logging.getLogger(__name__)

PredictFn = Callable[[np.ndarray], np.ndarray]


@dataclass
class EvalResult:
    metrics: dict[str, dict[str, object]]  # model / naive / seasonal_naive -> metric table
    y_true: np.ndarray
    forecasts: dict[str, np.ndarray]
    scale: np.ndarray
    starts: np.ndarray
    backtest: list[dict[str, object]] = field(default_factory=list)

    def losses(self, name: str, metric: str) -> np.ndarray:
        return per_window_loss(self.y_true, self.forecasts[name], self.scale, metric)


def series_first_rows(panel_lengths: list[int]) -> np.ndarray:
    return np.cumsum([0] + panel_lengths[:-1]).astype(np.int64)


def evaluate(
    ws: WindowSet,
    predict: PredictFn,
    *,
    scales: np.ndarray,
    first_rows: np.ndarray,
    season_length: int,
    starts: np.ndarray | None = None,
    series_index: np.ndarray | None = None,
) -> EvalResult:
    """Score ``predict`` and both baselines on exactly the same windows."""
    s = ws.starts if starts is None else starts
    owner = ws.series_index if series_index is None else series_index
    x, y = ws.materialize(s)
    preds = {
        "model": np.asarray(predict(x), dtype=np.float32).reshape(y.shape),
        "naive": naive(ws, s),
        "seasonal_naive": seasonal_naive(ws, season_length, first_rows[owner], s),
    }
    scale = scales[owner]
    metrics = {name: metric_table(y, p, scale) for name, p in preds.items()}
    return EvalResult(metrics=metrics, y_true=y, forecasts=preds, scale=scale, starts=s)


def fold_windows(
    ws_all: WindowSet, series_bounds: list[tuple[int, int]], folds: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Rolling origins over each series' test region [start, stop) (indices in ``ws_all.data``).

    The region is cut into ``folds`` consecutive blocks; fold k holds every window whose targets
    lie in block k (its inputs may come from before the block: they are the past).
    """
    out = []
    L, H = ws_all.lookback, ws_all.horizon
    for k in range(folds):
        starts, owners = [], []
        for i, (start, stop) in enumerate(series_bounds):
            edges = np.linspace(start, stop, folds + 1).astype(np.int64)
            b0, b1 = edges[k], edges[k + 1]
            # target rows [s+L, s+L+H) inside [b0, b1)
            s = np.arange(b0 - L, b1 - L - H + 1)
            starts.append(s)
            owners.append(np.full(s.shape[0], i))
        out.append(
            (np.concatenate(starts).astype(np.int64), np.concatenate(owners).astype(np.int64))
        )
    return out


def summarize_folds(folds: list[dict[str, object]]) -> dict[str, float]:
    """Mean and spread of the model's and baselines' MASE over folds."""
    out: dict[str, float] = {}
    for name in ("model", "naive", "seasonal_naive"):
        vals = [f[name]["mase"] for f in folds if name in f]  # type: ignore[index]
        if vals:
            out[f"{name}_mase_mean"] = float(np.mean(vals))
            out[f"{name}_mase_std"] = float(np.std(vals))
    return out
