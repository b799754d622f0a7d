"""Every bad input in the issue: a clear error naming the problem, exit 2, nothing registered.

They run through the real CLI and the real ``retrain`` Prefect flow, so the contract is tested
where users meet it, not only in the validation module.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from tests.conftest import REPO, tiny_config, write_yaml
from tests.flows.helpers import invoke, registered_models

pytestmark = pytest.mark.usefixtures("prefect_server")


def _run(tmp_path, data_path, **overrides):
    cfg = tiny_config(tmp_path, data_path, **overrides)
    path = write_yaml(tmp_path / "job.yaml", cfg)
    code, payload, err = invoke("retrain", "--config", str(path), "--json")
    assert registered_models(tmp_path / ".seqops") == []
    return code, payload, err


def _refused(code, payload, *needles):
    assert code == 2, payload
    assert payload["exit_code"] == 2 and payload.get("version") is None
    text = payload["error"] + "\n" + "\n".join(payload.get("failures", []))
    for needle in needles:
        assert needle in text, text


def _csv(tmp_path, frame, name="data.csv"):
    p = tmp_path / name
    frame.to_csv(p, index=False)
    return p


def test_missing_file(tmp_path):
    _refused(*_run(tmp_path, tmp_path / "absent.csv")[:2], "data file not found", "absent.csv")


def test_directory_instead_of_file(tmp_path):
    d = tmp_path / "adir"
    d.mkdir()
    _refused(*_run(tmp_path, d)[:2], "not a file")


def test_empty_file(tmp_path):
    p = tmp_path / "empty.csv"
    p.write_text("")
    _refused(*_run(tmp_path, p)[:2], "empty")


def test_header_only(tmp_path):
    p = tmp_path / "header.csv"
    p.write_text("series_id,timestamp,value,temperature\n")
    _refused(*_run(tmp_path, p)[:2], "header but no rows")


def test_required_column_missing(tmp_path, tiny_panel_frame):
    p = _csv(tmp_path, tiny_panel_frame.drop(columns=["temperature"]))
    code, payload, _ = _run(tmp_path, p)
    _refused(code, payload, "[temperature] required column present")
    assert payload["reports"]["validation_html"].endswith("validation.html")


def test_target_non_numeric(tmp_path, tiny_panel_frame):
    f = tiny_panel_frame.astype({"value": object})
    f.loc[10, "value"] = "n/a-ish"
    _refused(*_run(tmp_path, _csv(tmp_path, f))[:2], "[value] values must be numeric", "'n/a-ish'")


def test_timestamps_unparseable(tmp_path, tiny_panel_frame):
    f = tiny_panel_frame.astype({"timestamp": str})
    f.loc[7, "timestamp"] = "yesterday-ish"
    _refused(
        *_run(tmp_path, _csv(tmp_path, f))[:2], "timestamps must parse as dates", "'yesterday-ish'"
    )


def test_duplicate_timestamps(tmp_path, tiny_panel_frame):
    f = tiny_panel_frame.copy()
    f.loc[21, "timestamp"] = f.loc[20, "timestamp"]
    _refused(*_run(tmp_path, _csv(tmp_path, f))[:2], "no duplicate timestamps within a series")


def test_timestamps_out_of_order(tmp_path, tiny_panel_frame):
    f = tiny_panel_frame.copy()
    f.loc[[30, 31], "timestamp"] = f.loc[[31, 30], "timestamp"].to_numpy()
    _refused(
        *_run(tmp_path, _csv(tmp_path, f))[:2], "timestamps strictly increasing within a series"
    )


def test_fewer_rows_than_lookback_plus_horizon(tmp_path, tiny_panel_frame):
    f = tiny_panel_frame.groupby("series_id").head(12)  # lookback 14 + horizon 4 = 18
    _refused(*_run(tmp_path, _csv(tmp_path, f))[:2], "enough rows per series", "12 rows")


def test_nan_in_target_beyond_policy(tmp_path, tiny_panel_frame):
    f = tiny_panel_frame.copy()
    f.loc[f.index[:40], "value"] = np.nan  # 40 / 480 rows = 8% > the 5% a fill policy allows
    code, payload, _ = _run(
        tmp_path, _csv(tmp_path, f), missing={"policy": "interpolate", "max_fraction": 0.05}
    )
    _refused(code, payload, "[value] missing values allowed: 5%")


def test_nan_with_fail_policy(tmp_path, tiny_panel_frame):
    f = tiny_panel_frame.copy()
    f.loc[50, "value"] = np.nan
    _refused(
        *_run(tmp_path, _csv(tmp_path, f))[:2],
        "[value] missing values allowed: 0% (missing.policy=fail)",
    )


def test_inf_in_target(tmp_path, tiny_panel_frame):
    f = tiny_panel_frame.copy()
    f.loc[60, "value"] = np.inf
    _refused(*_run(tmp_path, _csv(tmp_path, f))[:2], "[value] values must be finite")


def test_series_shorter_than_window_in_panel(tmp_path, tiny_panel_frame):
    f = pd.concat(
        [
            tiny_panel_frame[tiny_panel_frame.series_id != "s002"],
            tiny_panel_frame[tiny_panel_frame.series_id == "s002"].head(30),
        ]
    )
    code, payload, _ = _run(tmp_path, _csv(tmp_path, f))
    _refused(code, payload, "series s002: 30 rows")
    assert not any("series s000" in line for line in payload["failures"])


def test_unknown_config_key(tmp_path, tiny_data):
    code, payload, _ = _run(
        tmp_path, tiny_data, window={"lookback": 14, "horizon": 4, "look_back": 3}
    )
    _refused(code, payload, "unknown key 'window.look_back'")


@pytest.mark.parametrize("window", [{"lookback": 0, "horizon": 4}, {"lookback": 14, "horizon": -1}])
def test_non_positive_window(tmp_path, tiny_data, window):
    code, payload, _ = _run(tmp_path, tiny_data, window=window)
    _refused(code, payload, "Input should be greater than 0")


def test_horizon_longer_than_test_split(tmp_path, tiny_data):
    code, payload, _ = _run(tmp_path, tiny_data, window={"lookback": 4, "horizon": 30})
    _refused(code, payload, "horizon 30 is longer than the test split (24 rows)")


def test_human_output_names_the_report(tmp_path, tiny_panel_frame):
    f = tiny_panel_frame.copy()
    f.loc[60, "value"] = np.inf
    cfg = tiny_config(tmp_path, _csv(tmp_path, f))
    code, payload, err = invoke("retrain", "--config", str(write_yaml(tmp_path / "j.yaml", cfg)))
    assert code == 2 and payload is None
    assert "values must be finite" in err and "validation_html:" in err


def test_terminal_shows_each_log_line_once_and_no_traceback(tmp_path, tiny_panel_frame):
    """A real ``seqops retrain`` process: Prefect logs the contract failure from its task and its
    flow; the terminal gets each line once (not also through Prefect's console handler), no
    traceback for an expected outcome, and the traceback back with --verbose."""
    from prefect.settings import PREFECT_API_URL

    p = _csv(tmp_path, tiny_panel_frame.drop(columns=["temperature"]))
    cfg = write_yaml(tmp_path / "j.yaml", tiny_config(tmp_path, p))
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value()), "PYTHONPATH": str(REPO)}

    def run(*extra):
        cmd = [sys.executable, "-m", "flows", "retrain", "--config", str(cfg), *extra]
        return subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True)

    proc = run()
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = proc.stderr.splitlines()
    done = [ln for ln in lines if "Flow run '" in ln and "Finished in state Failed" in ln]
    assert len(done) == 1, proc.stderr[-3000:]
    assert sum("data contract FAILED" in ln for ln in lines) == 1, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert "error (data_contract, exit 2)" in proc.stderr
    verbose = run("--verbose")
    assert verbose.returncode == 2 and "Traceback" in verbose.stderr
