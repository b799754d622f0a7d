import numpy as np
import pytest

from components.baselines import naive, seasonal_naive
from components.metrics import mase_scales, metric_table, per_window_loss
from components.windows import WindowSet


def test_metric_values():
    y = np.array([[1.0, 2.0], [3.0, 4.0]])
    yhat = np.array([[2.0, 2.0], [3.0, 6.0]])
    t = metric_table(y, yhat, scale=np.array([1.0, 2.0]))
    assert t["mae"] == pytest.approx(0.75)
    assert t["rmse"] == pytest.approx(np.sqrt(5 / 4))
    assert t["mase"] == pytest.approx((1 + 0 + 0 + 1) / 4)
    assert t["per_horizon"]["mae"] == pytest.approx([0.5, 1.0])
    assert t["smape"] == pytest.approx(np.mean([200 / 3, 0, 0, 200 * 2 / 10]))
    np.testing.assert_allclose(per_window_loss(y, yhat, np.array([1.0, 2.0]), "mae"), [0.5, 1.0])


def test_mase_scale_uses_train_rows():
    v = [np.array([[0.0], [2.0], [4.0], [100.0]], np.float32)]
    assert mase_scales(v, [(0, 3)])[0] == pytest.approx(2.0)


def _ws(series, lookback, horizon):
    data = np.asarray(series, np.float32)[:, None]
    starts = np.arange(0, len(series) - lookback - horizon + 1)
    return WindowSet(
        data=data,
        starts=starts,
        series_index=np.zeros_like(starts),
        lookback=lookback,
        horizon=horizon,
    )


def test_naive_repeats_last_value():
    ws = _ws(np.arange(10), 3, 2)
    np.testing.assert_array_equal(naive(ws)[0], [2, 2])


def test_seasonal_naive_is_exact_on_a_periodic_series():
    series = np.tile([1.0, 5.0, 3.0, 7.0], 10)
    ws = _ws(series, 8, 6)
    _, y = ws.materialize()
    np.testing.assert_allclose(seasonal_naive(ws, 4, np.array([0])), y)
    assert not np.allclose(naive(ws), y)


def test_seasonal_naive_falls_back_to_naive_before_series_start():
    ws = _ws(np.arange(20, dtype=float), 2, 3)
    out = seasonal_naive(ws, 10, np.array([0]))
    np.testing.assert_array_equal(out[0], [1, 1, 1])  # nothing a season back: naive
