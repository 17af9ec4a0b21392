"""The verdict and the summary of a result document (METRICS_SPEC section 5, a lineage
document, a regulator's export): what the API shows of a report and its ``report.completed``
record keeps. Plain dictionaries in and out: no engine, no numerical library.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from typing import Any

# A Python dictionary as results computed before groups were written as text printed them
# (``for {'race': 'Asian'}``).
_DICT_TEXT = re.compile(r"\{'[^{}]*\}")


def group_text(attributes: Mapping[str, Any]) -> str:
    """A group of a fairness result as people read it: ``race = Asian, sex = Male``."""
    return ", ".join(f"{name} = {value}" for name, value in attributes.items()) or "everyone"


def readable_reason(reason: Any) -> str:
    """A verdict reason as text for people: a group printed as a Python dictionary by an
    older result is rewritten as :func:`group_text` writes it."""

    def group(match: re.Match[str]) -> str:
        try:
            value = ast.literal_eval(match.group(0))
        except (ValueError, SyntaxError):
            return match.group(0)
        return group_text(value) if isinstance(value, dict) else match.group(0)

    return _DICT_TEXT.sub(group, str(reason))


def readable_reasons(reasons: Any) -> list[str]:
    """:func:`readable_reason` of each reason."""
    return [readable_reason(reason) for reason in reasons or []]


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
            "verdict_reasons": readable_reasons(result["verdict_reasons"][:20]),
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
            "verdict_reasons": readable_reasons(result["verdict_reasons"]),
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
        "verdict_reasons": readable_reasons(result["verdict_reasons"]),
        "metrics": result["metrics"],
        # [column, value] pairs: user-chosen names never become JSON object keys (audit).
        "flagged_groups": [
            [[key, rule["attributes"][key]] for key in sorted(rule["attributes"])]
            for rule in result["four_fifths"]
            if rule.get("flagged")
        ],
        "groups": len(result["groups"]),
    }


_EVIDENCE_STATUS = {
    "failed": "{Kind} evidence failing: the newest {kind} report does not pass",
    "missing": "{Kind} evidence missing: no {kind} report counts",
    "stale": "{Kind} evidence stale: the newest {kind} report is older than the policy allows",
}
_BLOCKING = ("high", "critical")


def _listed(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def lineage_problems(document: dict[str, Any]) -> list[str]:
    """What a lineage document shows about the version besides the completeness of its record:
    break-glass deployments, evidence the policy requires that is failing, missing or stale
    (as the gate judges it now, even where a break-glass request bypasses it), open findings,
    and environments where the version is live although the gate would now deny it. A
    version can have a complete record and every one of these problems."""
    problems = []
    deployed_by = {d["request"] for d in document["deployments"] if d.get("request") is not None}
    for request in document["requests"]:
        if request["state"] != "emergency":
            continue
        what = (
            f"Deployed to {request['environment']} by break-glass"
            if request["id"] in deployed_by
            else f"Break-glass request to {request['environment']}"
        )
        review = next((s for s in request["signoffs"] if s["step"] == "retrospective"), None)
        due = (request.get("retrospective_due_at") or "")[:10]
        if review is not None:
            after = f"retrospective review signed {review['signed_at'][:10]}"
        else:
            after = f"retrospective review not signed (due {due})" if due else "no review"
        problems.append(
            f"{what} (request #{request['id']}): sign-off, evidence and the promotion order "
            f"were bypassed; {after}"
        )
    # Evidence where the version is or was meant to be: not every environment's policy.
    involved = {r["environment"] for r in document["requests"]} | {
        d["environment"] for d in document["deployments"]
    }
    evidence: dict[tuple[str, str], list[str]] = {}
    for row in document.get("gate") or []:
        if row["environment"] not in involved:
            continue
        judged = row.get("evidence")
        if judged is None:  # a document written before the gate rows kept their evidence
            judged = [
                {"kind": kind, "status": code.removeprefix("evidence_")}
                for code, _, kind in (r.partition(":") for r in row["reasons"])
                if code.startswith("evidence_")
            ]
        for item in judged:
            if item["status"] in _EVIDENCE_STATUS:
                evidence.setdefault((item["kind"], item["status"]), []).append(row["environment"])
    for (kind, status), environments in evidence.items():
        text = _EVIDENCE_STATUS[status].format(Kind=kind.capitalize(), kind=kind)
        problems.append(f"{text} (required in {_listed(environments)})")
    for finding in document.get("findings") or []:
        if finding["status"] != "open":
            continue
        due = f", due {finding['due_date']}" if finding.get("due_date") else ""
        blocks = "; it blocks the gate" if finding["severity"] in _BLOCKING else ""
        problems.append(
            f"Open {finding['severity']} finding #{finding['id']}: {finding['title']}"
            f" (raised {finding['raised_at'][:10]}{due}){blocks}"
        )
    live_now = set(document.get("live_now") or [])
    covered = ("evidence_", "open_finding:")
    for row in document.get("gate") or []:
        if row["environment"] not in live_now or row["allowed"]:
            continue
        others = [r for r in row["reasons"] if not r.startswith(covered)]
        if others:
            problems.append(
                f"Live in {row['environment']}, but the gate would now deny it: "
                + ", ".join(others)
            )
    return problems
