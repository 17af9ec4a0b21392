"""Passing reports are the evidence the seeded prod high-risk policy requires: computed
through the API on the version's registered data, they make the gate allow once the four
sign-offs are given; a failing or overridden report does not."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from governance.approvals import selectors as approval_selectors
from governance.approvals import services as approvals
from governance.reports.models import Report
from registry.datafiles import file_digest
from registry.services import DatasetRef
from tests import factories
from tests.approvals.conftest import approve_through, deploy
from tests.conftest import client_with_key
from tests.reports.conftest import upload

pytestmark = pytest.mark.django_db


def fair_table(path: Path, seed: int) -> Path:
    """Two age groups with the same rates: a fair classifier, and no drift between seeds."""
    rng = np.random.default_rng(seed)
    n = 4000
    label = rng.integers(0, 2, n)
    flip = rng.random(n) < 0.05
    frame = pd.DataFrame(
        {
            "age": np.where(np.arange(n) % 2 == 0, "under_40", "over_40"),
            "defaulted": label,
            "predicted": np.where(flip, 1 - label, label),
            "income": rng.normal(50_000, 8_000, n).round(2),
        }
    )
    frame.to_csv(path, index=False)
    return path


@pytest.fixture
def credit(people, tmp_path, settings):
    """A high-risk model whose version 1 has registered validation and reference data."""
    settings.REPORTS_DATASET_ROOTS = [str(tmp_path)]
    alice = people.alice
    model = factories.registered_model(
        alice, name="credit-score", risk_tier="high", team=alice.groups.get(name="credit-risk"),
        sensitive_attributes=["age"],
    )  # fmt: skip
    validation = fair_table(tmp_path / "validation.csv", 1)
    reference = fair_table(tmp_path / "reference.csv", 2)
    for name, path in (("credit-validation", validation), ("credit-reference", reference)):
        factories.dataset_version(
            alice, factories.dataset(alice, name=name), content_digest=file_digest(path),
            row_count=4000, source_uri=str(path), schema={"age": "string"},
        )  # fmt: skip
    version = factories.model_version(
        alice,
        model,
        datasets=[
            DatasetRef("credit-validation", 1, "validation"),
            DatasetRef("credit-reference", 1, "reference"),
        ],
    )
    current = fair_table(tmp_path / "current.csv", 3)
    return version, validation, reference, current


FAIRNESS = {
    "kind": "fairness",
    "model": "credit-score",
    "version": 1,
    "label": "defaulted",
    "prediction": "predicted",
    "sensitive": "age",
}


def gate(key, version):
    answer = client_with_key(key).get(
        "/api/v1/gate",
        {
            "model": version.model.name,
            "version": version.version,
            "environment": "prod",
            "digest": version.artifact_digest,
        },
    )
    assert answer.status_code == 200
    return answer.json()


def test_real_passing_reports_let_the_prod_high_risk_gate_allow(people, credit, ci, ci_key, post):
    version, validation, _, current = credit
    deploy(ci, version, "dev")
    deploy(ci, version, "test")
    approve_through(
        version, "prod", people.alice, people.victor, people.vera, people.rita, people.carl
    )
    assert gate(ci_key, version)["reasons"] == [
        "evidence_missing:fairness",
        "evidence_missing:drift",
    ]
    fairness = post(people.victor, **FAIRNESS, evaluation=upload(validation))
    assert fairness.status_code == 202, fairness.json()
    reference_id = version.dataset_usages.get(role="reference").dataset_version_id
    drift = post(
        people.victor, kind="drift", model="credit-score", version=1,
        reference_dataset_version=reference_id, current=upload(current),
    )  # fmt: skip
    assert drift.status_code == 202, drift.json()
    reports = {r.kind: r for r in Report.objects.all()}
    assert reports["fairness"].verdict == "pass", reports["fairness"].result_json[:400]
    assert reports["drift"].verdict == "pass"
    answer = gate(ci_key, version)
    assert answer["allowed"] is True, answer
    # The signers were shown the reports' PDF digests.
    evidence = approvals.evidence_module.judge(
        requirement=approvals.evidence_module.EvidenceRequirement.from_data(
            {"kind": "fairness", "thresholds": {"min_impact_ratio": "0.8"}}
        ),
        candidates=approval_selectors.evidence_candidates(version),
        declared=version.model.sensitive_attributes,
        now=reports["fairness"].finished_at,
    )
    assert evidence.evidence is not None
    assert evidence.evidence.sha256 == reports["fairness"].pdf_sha256


def test_overridden_or_unregistered_reports_do_not_count(people, credit, ci, ci_key, post):
    version, validation, _, current = credit
    deploy(ci, version, "dev")
    deploy(ci, version, "test")
    approve_through(
        version, "prod", people.alice, people.victor, people.vera, people.rita, people.carl
    )
    # Thresholds overridden: never evidence.
    post(people.victor, **FAIRNESS, evaluation=upload(validation), min_impact_ratio="0.7")
    # Data that is not the version's registered validation data: not evidence either.
    post(people.victor, **FAIRNESS, evaluation=upload(current))
    # A drift report whose reference is not registered for the version.
    post(
        people.victor, kind="drift", model="credit-score", version=1,
        reference=upload(current), current=upload(validation),
    )  # fmt: skip
    assert Report.objects.filter(status="done").count() == 3
    assert gate(ci_key, version)["reasons"] == [
        "evidence_missing:fairness",
        "evidence_missing:drift",
    ]
