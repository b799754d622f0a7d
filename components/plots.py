"""PNG plots: forecast vs actual on the test split, and error per horizon step."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def forecast_plot(
    path: Path,
    *,
    timestamps: np.ndarray,
    actual: np.ndarray,
    origins_local: np.ndarray,
    forecasts: dict[str, np.ndarray],
    title: str,
) -> Path:
    """Actual series with non-overlapping forecasts (one every horizon steps) drawn on top."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(11, 4.2), dpi=110)
    ax.plot(timestamps, actual, color="black", lw=1.2, label="actual")
    colors = {"model": "tab:blue", "seasonal_naive": "tab:orange", "naive": "tab:gray"}
    for name, fc in forecasts.items():
        H = fc.shape[1]
        for j, (o, f) in enumerate(zip(origins_local, fc, strict=True)):
            idx = np.arange(o + 1, o + 1 + H)
            idx = idx[idx < len(timestamps)]
            ax.plot(
                timestamps[idx],
                f[: len(idx)],
                color=colors.get(name),
                lw=1.4 if name == "model" else 1.0,
                ls="-" if name == "model" else "--",
                label=name if j == 0 else None,
            )
    ax.set_title(title)
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def horizon_error_plot(
    path: Path, per_horizon: dict[str, list[float]], *, metric: str, title: str
) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4), dpi=110)
    for name, vals in per_horizon.items():
        ax.plot(np.arange(1, len(vals) + 1), vals, marker="o", ms=3, label=name)
    ax.set_xlabel("horizon step")
    ax.set_ylabel(metric.upper())
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
