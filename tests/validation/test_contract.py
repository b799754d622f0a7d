import numpy as np
import pandas as pd
import pytest

from components.config import parse_config
from tests.conftest import REPO
from validation.contract import check_contract


@pytest.fixture(scope="module")
def co2_job():
    import yaml

    return parse_config(yaml.safe_load((REPO / "configs" / "co2.yaml").read_text()))


@pytest.fixture(scope="module")
def co2_frame():
    return pd.read_csv(REPO / "data" / "co2_weekly.csv")


def test_bundled_co2_passes_its_contract(co2_job, co2_frame, tmp_path):
    r = check_contract(co2_job, co2_frame, report_dir=tmp_path)
    assert r.success, r.plain_lines()
    assert r.n_rows == 2284 and co2_frame.co2.isna().sum() == 59
    assert (tmp_path / "validation.html").exists() and (tmp_path / "validation.json").exists()


def test_missing_values_beyond_policy_fail(co2_job, co2_frame):
    job = co2_job.model_copy(
        update={"missing": co2_job.missing.model_copy(update={"policy": "fail"})}
    )
    r = check_contract(job, co2_frame)
    assert not r.success
    assert any(
        "missing values allowed: 0%" in line and "59 offending" in line for line in r.plain_lines()
    )


def test_declared_range_violation_names_column(co2_job, co2_frame):
    bad = co2_frame.copy()
    bad.loc[100, "co2"] = 9999.0
    r = check_contract(co2_job, bad)
    assert [f.check for f in r.failures] == ["values within the declared range [250, 500]"]
    assert r.failures[0].examples == [9999.0]


def test_gap_larger_than_declared_is_reported(co2_job, co2_frame):
    r = check_contract(co2_job, co2_frame.drop(index=range(500, 510)))
    assert any("gaps at most" in line and "gap of 11.0 steps" in line for line in r.plain_lines())


def _panel_job(covariates: list[str] | None = None):
    data = {"path": "x", "timestamp": "timestamp", "target": "value", "series_id": "series_id"}
    return parse_config(
        {
            "name": "p",
            "data": {**data, "covariates": covariates or []},
            "window": {"lookback": 14, "horizon": 4},
        }
    )


def test_per_series_problems_in_a_panel(tiny_panel_frame):
    job = _panel_job()
    frame = tiny_panel_frame.copy()
    # timestamps repeat across series: that is fine; within one series it is not
    assert check_contract(job, frame).success
    frame.loc[frame.series_id == "s001", "timestamp"] = (
        frame.loc[frame.series_id == "s001", "timestamp"].iloc[::-1].to_numpy()
    )
    lines = check_contract(job, frame).plain_lines()
    assert any("strictly increasing" in line for line in lines)


def test_inf_and_non_numeric_covariates(tiny_panel_frame):
    job = _panel_job(["temperature"])
    frame = tiny_panel_frame.copy()
    frame["temperature"] = frame["temperature"].astype(object)
    frame.loc[3, "temperature"] = "warm"
    frame.loc[5, "value"] = np.inf
    lines = check_contract(job, frame).plain_lines()
    assert any(
        line.startswith("[temperature] values must be numeric") and "'warm'" in line
        for line in lines
    )
    assert any(line.startswith("[value] values must be finite") for line in lines)
