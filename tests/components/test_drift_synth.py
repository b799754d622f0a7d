import json

import numpy as np
import pandas as pd

from components.drift import run_drift
from components.synth import synth_panel


def test_synth_is_seeded_and_injects_drift():
    a = synth_panel(n_series=2, length=50, seed=7)
    b = synth_panel(n_series=2, length=50, seed=7)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(synth_panel(n_series=2, length=50, seed=8))
    d = synth_panel(n_series=1, length=400, seed=7, drift_start=200, covariate=False, trend=0.0)
    assert d.value.iloc[200:].mean() - d.value.iloc[:200].mean() > 2.0


def _frame(rng, n, shift=0.0):
    return pd.DataFrame({"value": rng.normal(shift, 1.0, n), "value_diff": rng.normal(0, 1, n)})


def test_drift_detected_only_when_present(tmp_path):
    rng = np.random.default_rng(0)
    ref = _frame(rng, 3000)
    same = run_drift(
        ref, _frame(rng, 3000), out_dir=tmp_path / "same", reference_label="ref", drift_share=0.5
    )
    assert not same.drift_detected and same.drifted_columns == []
    shifted = run_drift(
        ref,
        _frame(rng, 3000, shift=2.0),
        out_dir=tmp_path / "shift",
        reference_label="ref",
        drift_share=0.5,
    )
    assert shifted.drift_detected and shifted.drifted_columns == ["value"]
    summary = json.loads((tmp_path / "shift" / "drift_summary.json").read_text())
    assert summary["drifted_columns"] == ["value"]
    assert "seqops drift report" in (tmp_path / "shift" / "drift_report.html").read_text()


def test_large_frames_are_sampled_and_say_so(tmp_path):
    rng = np.random.default_rng(1)
    s = run_drift(
        _frame(rng, 5000),
        _frame(rng, 4000),
        out_dir=tmp_path,
        reference_label="ref",
        sample_size=1000,
    )
    assert s.sampled["was_sampled"] and s.sampled["reference_rows_used"] == 1000
    assert s.sampled["current_rows_total"] == 4000
    assert "sampled (uniform random rows" in (tmp_path / "drift_report.html").read_text()
