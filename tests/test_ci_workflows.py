"""The GitHub Actions workflows users copy from ci/ validate against GitHub's workflow schema
(check-jsonschema's bundled copy: no network)."""

import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import REPO

WORKFLOWS = sorted((REPO / "ci").glob("*.yml"))


def _validate(*paths: Path) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("check-jsonschema")
    return subprocess.run(
        [str(exe), "--builtin-schema", "vendor.github-workflows", *map(str, paths)],
        capture_output=True,
        text=True,
    )


def test_shipped_workflows_are_valid():
    assert {p.name for p in WORKFLOWS} == {"promote.yml", "pr-check.yml"}
    proc = _validate(*WORKFLOWS)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_validator_catches_a_broken_workflow(tmp_path):
    wf = yaml.safe_load((REPO / "ci" / "promote.yml").read_text())
    wf["jobs"]["promote"]["runs_on"] = wf["jobs"]["promote"].pop("runs-on")  # a typo GitHub rejects
    bad = tmp_path / "bad.yml"
    bad.write_text(yaml.safe_dump(wf))
    assert _validate(bad).returncode != 0


def test_promotion_workflow_serialises_per_model_and_uses_the_cli():
    text = (REPO / "ci" / "promote.yml").read_text()
    wf = yaml.safe_load(text)
    assert wf["concurrency"]["group"] == "seqops-promote-${{ inputs.model }}"
    assert wf["concurrency"]["cancel-in-progress"] is False
    assert (
        "seqops promote" in text and "--trigger ci" in text and "secrets.SEQOPS_LEDGER_URL" in text
    )
