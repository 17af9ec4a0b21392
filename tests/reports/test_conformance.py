"""Warden's engine against golden values from Evidently 0.7, Fairlearn 0.15 and AIF360 0.6
(produced by golden/make_golden.py in a separate environment; the versions are in the files)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from governance.reports.engine import (
    DriftOptions,
    FairnessOptions,
    MethodChoice,
    compute_drift,
    compute_fairness,
    read_table,
)

pytestmark = pytest.mark.database_free

GOLDEN = Path(__file__).parent / "golden"
DRIFT = json.loads((GOLDEN / "drift_evidently.json").read_text())
FAIRNESS = json.loads((GOLDEN / "fairness_fairlearn_aif360.json").read_text())


def close(actual: float | None, expected: float, rel: float) -> bool:
    assert actual is not None
    if expected == 0:
        return abs(actual) <= rel
    return math.isclose(actual, expected, rel_tol=rel, abs_tol=0.0)


def test_golden_files_record_the_library_versions():
    assert DRIFT["libraries"]["evidently"].startswith("0.7.")
    assert FAIRNESS["libraries"]["fairlearn"].startswith("0.15.")
    assert FAIRNESS["libraries"]["aif360"].startswith("0.6.")


@pytest.mark.parametrize("case", DRIFT["cases"], ids=lambda c: c["name"])
def test_drift_agrees_with_evidently(case: dict[str, Any]):
    names = list(case["types"])
    reference = read_table(GOLDEN / "inputs" / case["reference"], names, label="reference")
    current = read_table(GOLDEN / "inputs" / case["current"], names, label="current")
    method = MethodChoice(method=case["method"]) if case["method"] else MethodChoice()
    result = compute_drift(
        reference.frame, current.frame, DriftOptions(column_types=case["types"], method=method)
    )
    checked = 0
    for column in result.columns:
        expected = case["columns"][column.name]
        assert str(column.method) == expected["method"], column.name
        assert column.threshold == expected["threshold"]
        assert (column.reference.n, column.current.n) == (
            expected["n_reference"],
            expected["n_current"],
        )
        value = column.p_value if column.method in ("ks", "chisquare", "z") else column.statistic
        if column.method == "chisquare":
            continue  # deliberately a test of homogeneity, not Evidently's goodness of fit
        assert close(value, expected["score"], 1e-9), (column.name, value, expected["score"])
        assert column.drifted == expected["drifted"], column.name
        checked += 1
    assert checked


@pytest.mark.parametrize("case", FAIRNESS["cases"], ids=lambda c: c["name"])
def test_fairness_agrees_with_fairlearn_and_aif360(case: dict[str, Any]):
    options = FairnessOptions(
        label=case["label"],
        prediction=case["prediction"],
        sensitive=case["sensitive"],
        prediction_positive=case.get("prediction_positive"),
        favorable_label="Low" if case["favorable"] == "negative" else None,
        privileged=case["privileged"],
        sample_weight=case["weight"],
    )
    table = read_table(GOLDEN / "inputs" / case["input"], options.columns(), label="input")
    result = compute_fairness(table.frame, options).to_dict()
    by_attributes = {json.dumps(g["attributes"], sort_keys=True): g for g in result["groups"]}
    assert len(by_attributes) == len(case["groups"])
    for expected in case["groups"]:
        group = by_attributes[json.dumps(expected["attributes"], sort_keys=True)]
        for rate in ("selection_rate", "base_rate", "tpr", "fpr", "fnr", "precision", "accuracy"):
            assert close(group[rate], expected[rate], 1e-12), (expected["attributes"], rate)
    for rate, value in case["overall"].items():
        assert close(result["overall"][rate], value, 1e-12), rate
    for name, value in case["metrics"].items():
        if name.startswith("equal_opportunity") and name.endswith("_to_overall"):
            continue
        assert close(result["metrics"][name], value, 1e-12), name
    for key, value in case["aggregates"].items():
        rate, aggregate = key.split(".")
        assert close(result["aggregates"][rate][aggregate], value, 1e-12), key
    for name, value in case["aif360"].items():
        assert close(result["aif360"][name], value, 1e-12), name
