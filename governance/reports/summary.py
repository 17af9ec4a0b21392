"""The verdict and the summary of a result document (METRICS_SPEC section 5, a lineage
document, a regulator's export): what the API shows of a report and its ``report.completed``
record keeps. Plain dictionaries in and out: no engine, no numerical library.
"""

from __future__ import annotations

from typing import Any


def passed(result: dict[str, Any]) -> bool:
    """The verdict of a result: no dataset drift; for every other kind, ``pass``."""
    if result["kind"] == "drift":
        return not result["dataset_drift"]
    return bool(result["verdict"] == "pass")


def result_summary(result: dict[str, Any]) -> dict[str, Any]:
    """The figures a risk officer looks at first (JSON numbers)."""
    if result["kind"] == "regulator_export":
        verification = result["verification"]
        return {
            "verdict": result["verdict"],
            "verdict_reasons": result["verdict_reasons"][:20],
            "export_kind": verification["kind"],
            "records": result["summary"]["records"],
            "checkpoints": len(verification["checkpoints"]),
            "errors": verification["errors"],
            "warnings": verification["warnings"],
            "signatures": result["summary"]["signatures"],
            "bundle_sha256": result["bundle"]["sha256"],
        }
    if result["kind"] == "lineage":
        return {
            "verdict": result["verdict"],
            "verdict_reasons": result["verdict_reasons"],
            "parents": len(result["parents"]),
            "datasets": len(result["datasets"]),
            "requests": len(result["requests"]),
            "signoffs": sum(len(r["signoffs"]) for r in result["requests"]),
            "deployments": len(result["deployments"]),
            "live_now": result["live_now"],
        }
    if result["kind"] == "drift":
        return {
            "dataset_drift": result["dataset_drift"],
            "drifted_count": result["drifted_count"],
            "evaluated_count": result["evaluated_count"],
            "share": result["share"],
            "drift_share": result["drift_share"],
            "drifted_columns": result["drifted_columns"],
            "not_evaluable": result["not_evaluable"],
            "excluded": result.get("excluded", []),
        }
    return {
        "verdict": result["verdict"],
        "verdict_reasons": result["verdict_reasons"],
        "metrics": result["metrics"],
        # [column, value] pairs: user-chosen names never become JSON object keys (audit).
        "flagged_groups": [
            [[key, rule["attributes"][key]] for key in sorted(rule["attributes"])]
            for rule in result["four_fifths"]
            if rule.get("flagged")
        ],
        "groups": len(result["groups"]),
    }
