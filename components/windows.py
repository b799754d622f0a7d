"""Time-ordered splits and windowing.

Each series is cut into train | gap | val | gap | test. A window (lookback inputs followed by
horizon targets) lies entirely inside one segment, so no window crosses a boundary and no test
target is ever seen in training. Windows are addressed by their start row in one concatenated
array; batches are gathered with vectorised indexing (no Python loop per window).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from components.config import SplitConfig, WindowConfig
from components.data import Panel
from components.errors import DataError

SEGMENTS = ("train", "val", "test")


@dataclass(frozen=True)
class Segments:
    """Row ranges [start, stop) of each segment, per series (indices local to the series)."""

    bounds: list[dict[str, tuple[int, int]]]


def segment_bounds(n: int, split: SplitConfig) -> dict[str, tuple[int, int]]:
    n_test = int(np.floor(n * split.test))
    n_val = int(np.floor(n * split.val))
    test_start = n - n_test
    val_stop = test_start - split.gap
    val_start = val_stop - n_val
    train_stop = val_start - split.gap
    return {
        "train": (0, max(train_stop, 0)),
        "val": (max(val_start, 0), max(val_stop, 0)),
        "test": (test_start, n),
    }


def min_rows_required(window: WindowConfig, split: SplitConfig) -> int:
    """Smallest series length for which every segment holds at least one window."""
    need = window.lookback + window.horizon
    n = need
    while True:
        b = segment_bounds(n, split)
        if all(stop - start >= need for start, stop in b.values()):
            return n
        n += 1


def split_panel(panel: Panel, window: WindowConfig, split: SplitConfig) -> Segments:
    need = window.lookback + window.horizon
    bounds = []
    for sid, vals in zip(panel.ids, panel.values, strict=True):
        b = segment_bounds(len(vals), split)
        for seg, (start, stop) in b.items():
            if stop - start < need:
                what = "horizon + lookback" if seg != "test" else "lookback + horizon"
                raise DataError(
                    f"series {sid!r}: the {seg} split has {stop - start} rows but one window needs "
                    f"{what} = {need}; use a longer series, a smaller window or a larger {seg} fraction"
                )
        bounds.append(b)
    return Segments(bounds=bounds)


@dataclass(frozen=True)
class WindowSet:
    """All windows of one segment over a panel.

    ``data`` is the concatenation of every series (rows x features, float32); ``starts`` the
    first input row of each window in ``data``; ``series_index`` which series each window is from.
    """

    data: np.ndarray
    starts: np.ndarray
    series_index: np.ndarray
    lookback: int
    horizon: int

    def __len__(self) -> int:
        return int(self.starts.shape[0])

    def materialize(self, starts: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(X, Y): X (n, lookback, F) raw inputs, Y (n, horizon) raw targets."""
        s = self.starts if starts is None else starts
        xi = s[:, None] + np.arange(self.lookback)
        yi = s[:, None] + self.lookback + np.arange(self.horizon)
        return self.data[xi], self.data[yi, 0]

    def origins(self) -> np.ndarray:
        """Row in ``data`` of the last observed value of each window."""
        return self.starts + self.lookback - 1


def build_windows(
    panel: Panel, segments: Segments, segment: str, window: WindowConfig, *, stride: int = 1
) -> WindowSet:
    data = np.concatenate(panel.values, axis=0).astype(np.float32, copy=False)
    offsets = np.cumsum([0] + [len(v) for v in panel.values[:-1]])
    need = window.lookback + window.horizon
    starts, owners = [], []
    for i, (off, b) in enumerate(zip(offsets, segments.bounds, strict=True)):
        start, stop = b[segment]
        local = np.arange(start, stop - need + 1, stride)
        starts.append(off + local)
        owners.append(np.full(local.shape[0], i))
    return WindowSet(
        data=data,
        starts=np.concatenate(starts).astype(np.int64),
        series_index=np.concatenate(owners).astype(np.int64),
        lookback=window.lookback,
        horizon=window.horizon,
    )


def fit_scaler(panel: Panel, segments: Segments) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and std over the train segments only (no look-ahead)."""
    rows = np.concatenate(
        [
            v[b["train"][0] : b["train"][1]]
            for v, b in zip(panel.values, segments.bounds, strict=True)
        ]
    )
    mean = rows.mean(axis=0, dtype=np.float64)
    std = rows.std(axis=0, dtype=np.float64)
    std[std < 1e-8] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


def make_dataset(
    ws: WindowSet,
    *,
    target_mean: float,
    target_std: float,
    batch_size: int,
    shuffle: bool,
    seed: int,
):
    """tf.data pipeline yielding (raw X, scaled Y) batches, gathered per batch on the graph."""
    import tensorflow as tf

    data = tf.constant(ws.data)
    target = tf.constant(ws.data[:, 0])  # once, not a column copy per batch
    xr = tf.range(ws.lookback, dtype=tf.int64)
    yr = tf.range(ws.horizon, dtype=tf.int64) + ws.lookback
    ds = tf.data.Dataset.from_tensor_slices(ws.starts)
    if shuffle:
        ds = ds.shuffle(len(ws), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)

    def gather(s):
        x = tf.gather(data, s[:, None] + xr)
        y = tf.gather(target, s[:, None] + yr)
        return x, (y - target_mean) / target_std

    return ds.map(gather, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
