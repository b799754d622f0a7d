"""Paired forecast comparison: the Diebold-Mariano test with the Harvey-Leybourne-Newbold
small-sample correction."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class DMResult:
    statistic: float
    p_value: float
    mean_diff: float  # mean(loss_a - loss_b): negative means a is better
    n: int
    lag: int

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def diebold_mariano(loss_a: np.ndarray, loss_b: np.ndarray, *, horizon: int = 1) -> DMResult:
    """Two-sided DM test of equal expected loss on paired per-window losses.

    The long-run variance of d = loss_a - loss_b uses a rectangular (Newey-West style) window of
    ``horizon - 1`` lags, the autocorrelation overlapping multi-step forecasts induce; the statistic
    gets the HLN correction and a Student-t reference with n - 1 degrees of freedom.
    """
    from scipy import stats

    d = np.asarray(loss_a, np.float64) - np.asarray(loss_b, np.float64)
    n = int(d.size)
    lag = max(int(horizon) - 1, 0)
    if n < 3:
        return DMResult(
            statistic=float("nan"),
            p_value=float("nan"),
            mean_diff=float(d.mean()) if n else 0.0,
            n=n,
            lag=lag,
        )
    mean = float(d.mean())
    dc = d - mean
    gamma0 = float(dc @ dc) / n
    var = gamma0 + 2.0 * sum(float(dc[k:] @ dc[:-k]) / n for k in range(1, min(lag, n - 1) + 1))
    if var <= 0 or not np.isfinite(var):
        if np.allclose(d, 0.0):  # identical forecasts: no evidence either way
            return DMResult(statistic=0.0, p_value=1.0, mean_diff=0.0, n=n, lag=lag)
        var = gamma0 if gamma0 > 0 else 1e-300
    dm = mean / np.sqrt(var / n)
    h = lag + 1
    hln = np.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n) if n + 1 - 2 * h > 0 else 1.0
    stat = float(dm * hln)
    p = float(2 * stats.t.sf(abs(stat), df=n - 1))
    return DMResult(statistic=stat, p_value=p, mean_diff=mean, n=n, lag=lag)
