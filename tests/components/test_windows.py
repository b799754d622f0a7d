import numpy as np
import pytest

from components.config import SplitConfig, WindowConfig
from components.data import Panel
from components.errors import DataError
from components.windows import (
    build_windows,
    fit_scaler,
    make_dataset,
    min_rows_required,
    segment_bounds,
    split_panel,
)


def _panel(lengths, n_features=2):
    values = []
    for i, n in enumerate(lengths):
        v = np.zeros((n, n_features), np.float32)
        v[:, 0] = np.arange(n) + 1000 * i  # row id encodes (series, row)
        v[:, 1] = -v[:, 0]
        values.append(v)
    ts = [np.arange(n) for n in lengths]
    return Panel(
        ids=[f"s{i}" for i in range(len(lengths))],
        timestamps=ts,
        values=values,
        feature_names=["y", "x"],
    )


W = WindowConfig(lookback=5, horizon=3)
S = SplitConfig(val=0.2, test=0.2, gap=2)


def test_no_window_crosses_a_segment_boundary():
    panel = _panel([100, 80])
    segs = split_panel(panel, W, S)
    for seg in ("train", "val", "test"):
        ws = build_windows(panel, segs, seg, W)
        x, y = ws.materialize()
        for xi, yi, owner in zip(x, y, ws.series_index, strict=True):
            rows = np.concatenate([xi[:, 0], yi]) - 1000 * owner
            lo, hi = segs.bounds[owner][seg]
            assert rows.min() >= lo and rows.max() < hi
            assert np.all(np.diff(rows) == 1)  # contiguous, time-ordered


def test_segments_are_ordered_disjoint_and_gapped():
    b = segment_bounds(100, S)
    assert b["train"][1] + 2 == b["val"][0] and b["val"][1] + 2 == b["test"][0]
    assert b["test"][1] == 100


def test_scaler_sees_train_rows_only():
    panel = _panel([100])
    segs = split_panel(panel, W, S)
    mean, _ = fit_scaler(panel, segs)
    lo, hi = segs.bounds[0]["train"]
    assert mean[0] == pytest.approx(np.arange(lo, hi).mean())


def test_short_segment_is_refused():
    panel = _panel([20])
    with pytest.raises(DataError, match="split has"):
        split_panel(panel, W, S)
    assert min_rows_required(W, S) > 20


def test_tf_dataset_matches_materialized_windows():
    panel = _panel([60, 50])
    segs = split_panel(panel, W, SplitConfig(val=0.2, test=0.2))
    ws = build_windows(panel, segs, "train", W)
    ds = make_dataset(ws, target_mean=10.0, target_std=2.0, batch_size=7, shuffle=False, seed=0)
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds], strict=True)
    x_ref, y_ref = ws.materialize()
    np.testing.assert_allclose(np.concatenate(xs), x_ref)
    np.testing.assert_allclose(np.concatenate(ys), (y_ref - 10.0) / 2.0, rtol=1e-6)
