"""The CI examples in docs/ci parse and run the gate the way docs/gate.md says."""

from __future__ import annotations

import pytest
import yaml

from tests.support import REPO

pytestmark = pytest.mark.database_free

DOCS = REPO / "docs" / "ci"


def test_github_actions_example_runs_the_gate_before_deploying():
    workflow = yaml.safe_load((DOCS / "github-actions.yml").read_text())

    steps = workflow["jobs"]["deploy"]["steps"]
    names = [step.get("name") for step in steps]
    gate = steps[names.index("Warden gate")]
    assert names.index("Warden gate") < names.index("Deploy")
    assert gate["env"]["WARDEN_API_KEY"] == "${{ secrets.WARDEN_API_KEY }}"
    assert "warden-gate check" in gate["run"] and "--wait 600" in gate["run"]
    assert "WARDEN_API_KEY" not in gate["run"]  # the key never on the command line
    digest = steps[names.index("Compute the artifact digest")]["run"]
    assert "sha256sum" in digest
    assert "clients/warden-gate" in steps[names.index("Install warden-gate")]["run"]


def test_gitlab_ci_example_runs_the_gate_in_a_stage_before_deploy():
    pipeline = yaml.safe_load((DOCS / "gitlab-ci.yml").read_text())

    assert pipeline["stages"] == ["build", "gate", "deploy"]
    job = pipeline["warden-gate"]
    script = "\n".join(job["script"])
    assert job["stage"] == "gate"
    assert "warden-gate check" in script and "--wait 600" in script
    assert "sha256sum" in script and "clients/warden-gate" in script
    assert "WARDEN_API_KEY" not in script
    assert "warden-gate" in pipeline["deploy"]["needs"]
