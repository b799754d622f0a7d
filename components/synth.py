"""Seeded synthetic panels: seasonality, trend, noise, and optional injected drift."""

from __future__ import annotations

import numpy as np
import pandas as pd


def synth_panel(
    *,
    n_series: int = 4,
    length: int = 400,
    freq: str = "D",
    start: str = "2020-01-01",
    season_length: int = 7,
    trend: float = 0.02,
    noise: float = 0.3,
    drift_start: int | None = None,
    drift_shift: float = 3.0,
    drift_scale: float = 2.0,
    covariate: bool = True,
    seed: int = 0,
) -> pd.DataFrame:
    """A long-format panel with columns ``series_id, timestamp, value`` (+ ``temperature``).

    Drift, when ``drift_start`` is given, shifts the level by ``drift_shift`` seasonal amplitudes
    and multiplies the noise by ``drift_scale`` from that row on, in every series.
    """
    if n_series < 1 or length < 2:
        raise ValueError("n_series must be >= 1 and length >= 2")
    rng = np.random.default_rng(seed)
    t = np.arange(length, dtype=np.float64)
    stamps = pd.date_range(start=start, periods=length, freq=freq)
    frames = []
    for i in range(n_series):
        level = rng.uniform(5.0, 50.0)
        amp = rng.uniform(1.0, 4.0)
        phase = rng.uniform(0, 2 * np.pi)
        season = amp * np.sin(2 * np.pi * t / max(season_length, 1) + phase)
        sigma = np.full(length, noise * amp)
        shift = np.zeros(length)
        if drift_start is not None and 0 <= drift_start < length:
            shift[drift_start:] = drift_shift * amp
            sigma[drift_start:] *= drift_scale
        value = level + trend * t + season + shift + rng.normal(0.0, 1.0, length) * sigma
        part = {"series_id": f"s{i:03d}", "timestamp": stamps, "value": value.round(4)}
        if covariate:
            part["temperature"] = (
                15 + 10 * np.sin(2 * np.pi * t / 365.25 + i) + rng.normal(0, 1, length)
            ).round(3)
        frames.append(pd.DataFrame(part))
    return pd.concat(frames, ignore_index=True)
