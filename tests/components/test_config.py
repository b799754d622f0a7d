import pytest
from pydantic import ValidationError

from components.config import infer_season_length, json_schema, load_config, parse_config
from components.errors import ConfigError

MINIMAL = {
    "name": "co2-weekly",
    "data": {"path": "data/co2_weekly.csv", "timestamp": "date", "target": "co2"},
    "window": {"lookback": 104, "horizon": 13},
}


def test_minimal_six_keys_get_defaults():
    job = parse_config(MINIMAL)
    assert job.split.test == 0.15 and job.missing.policy == "fail" and job.model.units == 64
    assert job.training.early_stopping.enabled


def test_config_is_frozen():
    job = parse_config(MINIMAL)
    with pytest.raises(ValidationError, match="frozen"):
        job.name = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("patch", "needle"),
    [
        (
            {"window": {"lookback": 104, "horizon": 13, "lookbak": 3}},
            "unknown key 'window.lookbak' (did you mean 'lookback'?)",
        ),
        ({"trainig": {"epochs": 3}}, "unknown key 'trainig' (did you mean 'training'?)"),
        ({"window": {"lookback": 0, "horizon": 13}}, "window.lookback"),
        ({"window": {"lookback": 10, "horizon": -2}}, "window.horizon"),
        ({"window": {"lookback": "ten", "horizon": 2}}, "window.lookback"),
        ({"missing": {"policy": "guess"}}, "missing.policy"),
        ({"split": {"val": 0.45, "test": 0.45}}, "at least 20%"),
        ({"validation": {"ranges": {"co2": [5, 1]}}}, "min <= max"),
    ],
)
def test_bad_keys_are_named(patch, needle):
    with pytest.raises(ConfigError) as exc:
        parse_config({**MINIMAL, **patch})
    assert needle in str(exc.value)
    assert exc.value.exit_code == 2


def test_load_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not a file"):
        load_config(tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    bad.write_text("- a list")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(bad)


def test_season_length_inference():
    assert infer_season_length("W-SAT") == 52
    assert infer_season_length("D") == 7
    assert infer_season_length("h") == 24
    assert infer_season_length(None) == 1
    job = parse_config({**MINIMAL, "evaluation": {"season_length": 12}})
    assert job.season_length() == 12


def test_schema_lists_sections():
    schema = json_schema()
    assert {"name", "data", "window", "training", "gate"} <= set(schema["properties"])


def test_config_hash_changes_with_content():
    a = parse_config(MINIMAL).config_hash()
    b = parse_config({**MINIMAL, "window": {"lookback": 52, "horizon": 13}}).config_hash()
    assert a != b and a == parse_config(MINIMAL).config_hash()
