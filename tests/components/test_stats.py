import numpy as np

from components.stats import diebold_mariano


def test_clearly_better_forecasts_are_significant():
    rng = np.random.default_rng(0)
    base = rng.gamma(2.0, 1.0, 300)
    r = diebold_mariano(base * 0.6, base, horizon=4)
    assert r.mean_diff < 0 and r.p_value < 0.001 and r.statistic < 0


def test_same_quality_is_not_significant():
    rng = np.random.default_rng(1)
    a, b = rng.gamma(2.0, 1.0, 300), rng.gamma(2.0, 1.0, 300)
    assert diebold_mariano(a, b, horizon=4).p_value > 0.05


def test_identical_losses_give_no_evidence():
    x = np.linspace(1, 2, 50)
    r = diebold_mariano(x, x, horizon=13)
    assert r.p_value == 1.0 and r.statistic == 0.0


def test_overlap_lags_widen_the_variance():
    rng = np.random.default_rng(2)
    shared = np.convolve(rng.normal(0, 1, 320), np.ones(8) / 8, mode="valid")[
        :300
    ]  # autocorrelated
    a = 1.0 + shared + 0.05
    b = 1.0 + shared * 0.9
    naive = diebold_mariano(a, b, horizon=1)
    robust = diebold_mariano(a, b, horizon=8)
    assert abs(robust.statistic) < abs(naive.statistic)
