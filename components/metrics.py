"""Forecast error metrics, overall and per horizon step.

MASE divides by the in-sample mean absolute one-step naive error of the window's series over
its train segment (m = 1), so it is comparable across series of different scales.
"""

from __future__ import annotations

import numpy as np

METRICS = ("mae", "rmse", "smape", "mase")


def _smape(y: np.ndarray, yhat: np.ndarray) -> np.ndarray:
    denom = np.abs(y) + np.abs(yhat)
    out = np.zeros_like(denom, dtype=np.float64)
    nz = denom > 0
    out[nz] = 200.0 * np.abs(y - yhat)[nz] / denom[nz]
    return out


def metric_table(y: np.ndarray, yhat: np.ndarray, scale: np.ndarray) -> dict[str, object]:
    """Metrics for (n, H) actuals and forecasts; ``scale`` is the MASE denominator per window."""
    y = np.asarray(y, dtype=np.float64)
    yhat = np.asarray(yhat, dtype=np.float64)
    err = yhat - y
    ae = np.abs(err)
    sm = _smape(y, yhat)
    sc = np.asarray(scale, dtype=np.float64)[:, None]
    table: dict[str, object] = {
        "mae": float(ae.mean()),
        "rmse": float(np.sqrt((err**2).mean())),
        "smape": float(sm.mean()),
        "mase": float((ae / sc).mean()),
        "per_horizon": {
            "mae": ae.mean(axis=0).tolist(),
            "rmse": np.sqrt((err**2).mean(axis=0)).tolist(),
            "smape": sm.mean(axis=0).tolist(),
            "mase": (ae / sc).mean(axis=0).tolist(),
        },
        "n_windows": int(y.shape[0]),
    }
    return table


def per_window_loss(
    y: np.ndarray, yhat: np.ndarray, scale: np.ndarray, metric: str = "mase"
) -> np.ndarray:
    """One loss per window (mean over the horizon), for paired tests between models."""
    ae = np.abs(np.asarray(yhat, np.float64) - np.asarray(y, np.float64))
    if metric == "mase":
        return (ae / np.asarray(scale, np.float64)[:, None]).mean(axis=1)
    if metric == "mae":
        return ae.mean(axis=1)
    if metric == "rmse":
        return np.sqrt((ae**2).mean(axis=1))
    if metric == "smape":
        return _smape(np.asarray(y, np.float64), np.asarray(yhat, np.float64)).mean(axis=1)
    raise ValueError(f"unknown metric {metric!r}")


def mase_scales(values: list[np.ndarray], train_bounds: list[tuple[int, int]]) -> np.ndarray:
    """Per-series MASE denominator: mean |y_t - y_{t-1}| over the train segment."""
    out = []
    for v, (start, stop) in zip(values, train_bounds, strict=True):
        d = np.abs(np.diff(v[start:stop, 0].astype(np.float64)))
        s = float(d.mean()) if d.size else 1.0
        out.append(s if s > 1e-12 else 1.0)
    return np.asarray(out)
