"""Naive and seasonal-naive forecasts on the same windows as the model."""

from __future__ import annotations

import numpy as np

from components.windows import WindowSet


def naive(ws: WindowSet, starts: np.ndarray | None = None) -> np.ndarray:
    """Repeat the window's last observed target value over the horizon."""
    s = ws.starts if starts is None else starts
    last = ws.data[s + ws.lookback - 1, 0]
    return np.repeat(last[:, None], ws.horizon, axis=1)


def seasonal_naive(
    ws: WindowSet,
    season_length: int,
    series_first_row: np.ndarray,
    starts: np.ndarray | None = None,
) -> np.ndarray:
    """y_hat[t+h] = y[t + h - m*ceil(h/m)]: the value one season before, from the series' past.

    The past may reach before the window (never past its origin); where it would reach before
    the series' first row, the naive value is used instead.
    """
    s = ws.starts if starts is None else starts
    origin = s + ws.lookback - 1
    m = max(int(season_length), 1)
    h = np.arange(1, ws.horizon + 1)
    back = m * np.ceil(h / m).astype(np.int64)
    idx = origin[:, None] + h[None, :] - back[None, :]
    first = np.asarray(series_first_row)[:, None]
    fallback = np.repeat(ws.data[origin, 0][:, None], ws.horizon, axis=1)
    ok = idx >= first
    out = np.where(ok, ws.data[np.clip(idx, 0, None), 0], fallback)
    return out.astype(np.float32)
