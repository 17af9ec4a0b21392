"""Who may do what, as data: the expectation table the authorization matrix walks
(``tests/test_authorization_matrix.py``).

One entry per API operation (method and path template, as the OpenAPI schema names them) and
per page. Each says which accounts may do it in a session, which API key scopes open it (none:
a person's act, refused to every key with 403 ``person_required``), and which object decides
the caller's scope (out of scope is 404). The README's Roles section is the source: its scope
table, its list of person-only acts, and the roles of ``core/roles.py``.

Accounts are the cast's names; ``owner`` is the owner of the object's side (the data scientist
of team A for A, of team B for B), ``team`` the members of the side's team (for A the data
scientist and the CI service account ``ci``, for B the data scientist and the ML engineer),
``team_people`` the same without the service account.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.accounts.models import ApiKeyScope

S = ApiKeyScope
PERSON_ONLY: frozenset[str] = frozenset()
REGISTRY_READ = frozenset({S.REGISTRY_READ, S.REGISTRY_WRITE})
REGISTRY_WRITE = frozenset({S.REGISTRY_WRITE})
PIPELINE_READ = frozenset({S.GATE_READ, S.DEPLOYMENTS_WRITE, S.REGISTRY_READ, S.REGISTRY_WRITE})
GATE = frozenset({S.GATE_READ})
DEPLOYMENTS = frozenset({S.DEPLOYMENTS_WRITE})
AUDIT = frozenset({S.AUDIT_READ})
REPORTS_READ = frozenset({S.REGISTRY_READ, S.REGISTRY_WRITE, S.REPORTS_WRITE})
REPORTS_WRITE = frozenset({S.REPORTS_WRITE})

PEOPLE = frozenset(
    {
        "ds_a",
        "ds_b",
        "ml_engineer",
        "validator",
        "risk_officer",
        "compliance_officer",
        "auditor",
        "admin",
    }
)
EVERYONE = PEOPLE | {"ci"}
BUILDERS = frozenset({"ds_a", "ds_b", "ml_engineer", "admin"})
AUDIT_READERS = frozenset({"validator", "risk_officer", "compliance_officer", "auditor", "admin"})
EXPORTERS = frozenset({"auditor", "admin"})
FINDING_ROLES = frozenset({"validator", "risk_officer", "compliance_officer"})
WEBHOOK_MANAGERS = frozenset({"risk_officer", "compliance_officer", "admin"})
REPORT_REQUESTERS = BUILDERS | {"validator", "risk_officer", "compliance_officer"}
MODEL_WRITERS = frozenset({"owner", "team", "admin"})

# Which sides of each kind of object an account sees (the selectors' scope). Models and all
# that hangs off them (versions, requests, findings, reports): the owner and team, and every
# holder of the global view permission. Datasets: every role. Exports: one's own.
_MODEL_SCOPE = {
    "ds_a": "A",
    "ds_b": "B",
    "ml_engineer": "B",
    "ci": "A",
    **dict.fromkeys(AUDIT_READERS, "AB"),
}
SEES: dict[str, dict[str, str]] = {
    "model": _MODEL_SCOPE,
    "request": _MODEL_SCOPE,
    "request_page": {name: scope for name, scope in _MODEL_SCOPE.items() if name != "ci"},
    "approved": _MODEL_SCOPE,
    "emergency": _MODEL_SCOPE,
    "finding": _MODEL_SCOPE,
    "report": _MODEL_SCOPE,
    "dataset": dict.fromkeys(PEOPLE, "AB"),
    "webhook": dict.fromkeys(EVERYONE, "AB"),
    "export": {"auditor": "A", "admin": "B"},
}


@dataclass(frozen=True)
class Rule:
    """Who may do one operation.

    ``who``: accounts allowed in a session on an object in their scope (``owner``/``team``/
    ``team_people`` expand per side). ``scopes``: the key scopes that open it (empty: person
    only). ``kind``: the object (in the path, or named by the body or query) whose scope decides
    404. ``role_first``: the permission class checks the role, so a caller without it is 403
    whatever the object. ``lists``: a list whose rows must hold only objects of this kind in the
    caller's scope. ``body``/``query``: a plausible request, formatted with the side's names.
    """

    who: frozenset[str]
    scopes: frozenset[str]
    kind: str | None = None
    role_first: bool = False
    lists: str | None = None
    public: bool = False
    body: dict[str, Any] | None = None
    query: dict[str, Any] | None = None
    multipart: bool = False
    out_of_scope: int = 404

    def side_list(self) -> tuple[str | None, ...]:
        if self.kind or self.lists:
            return ("A", "B")
        return (None,)


def R(who: frozenset[str] | set[str], scopes: frozenset[str], **options: Any) -> Rule:
    return Rule(who=frozenset(who), scopes=scopes, **options)


REASON = {"reason": "matrix"}
GATE_QUESTION = {"model": "{model}", "version": 1, "environment": "test", "digest": "{digest}"}

API: dict[tuple[str, str], Rule] = {
    ("GET", "/api/v1/audit/records/"): R(AUDIT_READERS, AUDIT, role_first=True),
    ("GET", "/api/v1/audit/verify"): R(AUDIT_READERS, AUDIT, role_first=True),
    ("GET", "/api/v1/audit/public-key"): R(EVERYONE, AUDIT, public=True),
    ("GET", "/api/v1/audit/checkpoints/latest"): R(AUDIT_READERS, AUDIT, role_first=True),
    ("GET", "/api/v1/audit/checkpoints/{size}"): R(AUDIT_READERS, AUDIT, role_first=True),
    ("GET", "/api/v1/audit/proofs/inclusion"): R(
        AUDIT_READERS, AUDIT, role_first=True, query={"seq": 1, "size": "{size}"}
    ),
    ("GET", "/api/v1/audit/proofs/consistency"): R(
        AUDIT_READERS, AUDIT, role_first=True, query={"from": "{first_size}", "to": "{size}"}
    ),
    ("GET", "/api/v1/audit/exports/"): R(EXPORTERS, AUDIT, role_first=True, lists="export"),
    ("POST", "/api/v1/audit/exports/"): R(EXPORTERS, AUDIT, role_first=True, body={}),
    ("GET", "/api/v1/audit/exports/{export_id}"): R(
        EXPORTERS, AUDIT, role_first=True, kind="export"
    ),
    ("GET", "/api/v1/audit/exports/{export_id}/download"): R(
        EXPORTERS, AUDIT, role_first=True, kind="export"
    ),
    ("GET", "/api/v1/models/"): R(EVERYONE, REGISTRY_READ, lists="model"),
    ("POST", "/api/v1/models/"): R(
        BUILDERS, REGISTRY_WRITE, body={"name": "matrix-new-model", "risk_tier": "low"}
    ),
    ("GET", "/api/v1/models/{name}/"): R(EVERYONE, REGISTRY_READ, kind="model"),
    ("PATCH", "/api/v1/models/{name}/"): R(
        MODEL_WRITERS, REGISTRY_WRITE, kind="model", body={"description": "matrix"}
    ),
    ("POST", "/api/v1/models/{name}/risk"): R(
        {"risk_officer"},
        PERSON_ONLY,
        kind="model",
        body={"risk_tier": "high", "reason": "matrix"},
    ),
    ("POST", "/api/v1/models/{name}/retire"): R(
        MODEL_WRITERS | {"risk_officer"}, PERSON_ONLY, kind="model", body=REASON
    ),
    ("GET", "/api/v1/models/{name}/versions/"): R(EVERYONE, REGISTRY_READ, kind="model"),
    ("POST", "/api/v1/models/{name}/versions/"): R(
        MODEL_WRITERS,
        REGISTRY_WRITE,
        kind="model",
        body={
            "artifact_uri": "s3://matrix/model.pkl",
            "artifact_digest": "{new_digest}",
            "author": "{owner}",
        },
    ),
    ("GET", "/api/v1/models/{name}/versions/{version}/"): R(EVERYONE, REGISTRY_READ, kind="model"),
    ("POST", "/api/v1/models/{name}/versions/{version}/status"): R(
        MODEL_WRITERS | {"risk_officer"},
        PERSON_ONLY,
        kind="model",
        body={"status": "deprecated", "reason": "matrix"},
    ),
    ("GET", "/api/v1/models/{name}/versions/{version}/lineage"): R(
        EVERYONE, REGISTRY_READ, kind="model"
    ),
    ("GET", "/api/v1/models/{name}/deployments"): R(EVERYONE, PIPELINE_READ, kind="model"),
    ("GET", "/api/v1/models/{name}/signing-grants"): R(EVERYONE, PIPELINE_READ, kind="model"),
    ("POST", "/api/v1/models/{name}/signing-grants"): R(
        {"risk_officer", "admin"},
        PERSON_ONLY,
        kind="model",
        body={"role": "validator", "user": "matrix-validator", "reason": "matrix"},
    ),
    ("POST", "/api/v1/models/{name}/signing-grants/revoke"): R(
        {"risk_officer", "admin"},
        PERSON_ONLY,
        kind="model",
        body={"role": "validator", "user": "matrix-grantee", "reason": "matrix"},
    ),
    ("GET", "/api/v1/models/{name}/versions/{version}/findings"): R(
        EVERYONE, PIPELINE_READ, kind="model"
    ),
    ("POST", "/api/v1/models/{name}/versions/{version}/findings"): R(
        FINDING_ROLES,
        PERSON_ONLY,
        kind="model",
        body={"title": "matrix", "severity": "low", "owner": "{owner}"},
    ),
    ("GET", "/api/v1/datasets/"): R(EVERYONE, REGISTRY_READ, lists="dataset"),
    ("POST", "/api/v1/datasets/"): R(BUILDERS, REGISTRY_WRITE, body={"name": "matrix-new-data"}),
    ("GET", "/api/v1/datasets/{name}/"): R(EVERYONE, REGISTRY_READ, kind="dataset"),
    ("PATCH", "/api/v1/datasets/{name}/"): R(
        {"owner", "admin"}, REGISTRY_WRITE, kind="dataset", body={"description": "matrix"}
    ),
    ("POST", "/api/v1/datasets/{name}/retire"): R(
        {"owner", "admin"}, PERSON_ONLY, kind="dataset", body=REASON
    ),
    ("GET", "/api/v1/datasets/{name}/versions/"): R(EVERYONE, REGISTRY_READ, kind="dataset"),
    ("POST", "/api/v1/datasets/{name}/versions/"): R(
        MODEL_WRITERS,
        REGISTRY_WRITE,
        kind="dataset",
        body={"content_digest": "{new_digest}", "row_count": 5, "schema": {"a": "integer"}},
    ),
    ("GET", "/api/v1/datasets/{name}/versions/{version}/"): R(
        EVERYONE, REGISTRY_READ, kind="dataset"
    ),
    ("GET", "/api/v1/environments/"): R(EVERYONE, PIPELINE_READ),
    ("GET", "/api/v1/environments/{environment}/live"): R(EVERYONE, PIPELINE_READ, lists="model"),
    ("GET", "/api/v1/policies/"): R(EVERYONE, PIPELINE_READ),
    ("POST", "/api/v1/policies/"): R(
        {"admin"}, PERSON_ONLY, body={"environment": "dev", "risk_tier": "low", "steps": []}
    ),
    ("GET", "/api/v1/deployment-requests/"): R(EVERYONE, PIPELINE_READ, lists="request"),
    ("POST", "/api/v1/deployment-requests/"): R(
        {"owner", "team_people", "admin"},
        DEPLOYMENTS,
        kind="model",
        body={"model": "{model}", "version": 1, "environment": "test", "reason": "matrix"},
    ),
    ("GET", "/api/v1/deployment-requests/{request_id}/"): R(
        EVERYONE, PIPELINE_READ, kind="request"
    ),
    ("GET", "/api/v1/deployment-requests/{request_id}/signing-content"): R(
        PEOPLE, PERSON_ONLY, kind="request"
    ),
    ("POST", "/api/v1/deployment-requests/{request_id}/sign"): R(
        {"validator"},
        PERSON_ONLY,
        kind="request",
        body={"decision": "approve", "password": "{password}", "acknowledge_evidence": True},
    ),
    ("POST", "/api/v1/deployment-requests/{request_id}/reject"): R(
        {"validator"},
        PERSON_ONLY,
        kind="request",
        body={"password": "{password}", "comment": "not ready"},
    ),
    ("POST", "/api/v1/deployment-requests/{request_id}/withdraw"): R(
        {"owner"}, DEPLOYMENTS, kind="request", body=REASON
    ),
    ("POST", "/api/v1/deployment-requests/{request_id}/revoke"): R(
        {"risk_officer", "compliance_officer"}, PERSON_ONLY, kind="approved", body=REASON
    ),
    ("POST", "/api/v1/deployment-requests/{request_id}/retrospective"): R(
        {"validator", "compliance_officer"},
        PERSON_ONLY,
        kind="emergency",
        body={"decision": "approve", "password": "{password}"},
    ),
    ("POST", "/api/v1/deployment-requests/emergency"): R(
        {"risk_officer"},
        PERSON_ONLY,
        kind="model",
        body={
            "model": "{model}",
            "version": 1,
            "environment": "test",
            "reason": "matrix",
            "password": "{password}",
        },
    ),
    ("POST", "/api/v1/deployments/"): R(
        MODEL_WRITERS,
        DEPLOYMENTS,
        kind="model",
        body={"model": "{model}", "version": 1, "environment": "dev", "event": "deployed"},
    ),
    ("GET", "/api/v1/findings/{finding_id}"): R(EVERYONE, PIPELINE_READ, kind="finding"),
    ("POST", "/api/v1/findings/{finding_id}/resolve"): R(
        FINDING_ROLES, PERSON_ONLY, kind="finding", body={"resolution": "matrix"}
    ),
    ("GET", "/api/v1/gate"): R(EVERYONE, GATE, kind="model", query=GATE_QUESTION),
    ("GET", "/api/v1/gate/status"): R(EVERYONE, GATE, kind="model", query=GATE_QUESTION),
    ("GET", "/api/v1/reports/"): R(EVERYONE, REPORTS_READ, lists="report"),
    ("POST", "/api/v1/reports/"): R(
        REPORT_REQUESTERS,
        REPORTS_WRITE,
        kind="model",
        multipart=True,
        body={"kind": "lineage", "model": "{model}", "version": 1},
    ),
    ("GET", "/api/v1/reports/{report_id}"): R(EVERYONE, REPORTS_READ, kind="report"),
    ("GET", "/api/v1/reports/{report_id}/pdf"): R(EVERYONE, REPORTS_READ, kind="report"),
    ("GET", "/api/v1/webhooks/"): R(
        WEBHOOK_MANAGERS, PERSON_ONLY, role_first=True, lists="webhook"
    ),
    ("POST", "/api/v1/webhooks/"): R(
        WEBHOOK_MANAGERS,
        PERSON_ONLY,
        role_first=True,
        body={"url": "https://hooks.example.org/matrix", "events": ["gate.denied"]},
    ),
    ("GET", "/api/v1/webhooks/{subscription_id}"): R(
        WEBHOOK_MANAGERS, PERSON_ONLY, role_first=True, kind="webhook"
    ),
    ("PATCH", "/api/v1/webhooks/{subscription_id}"): R(
        WEBHOOK_MANAGERS,
        PERSON_ONLY,
        role_first=True,
        kind="webhook",
        body={"description": "matrix"},
    ),
    ("POST", "/api/v1/webhooks/{subscription_id}/rotate-secret"): R(
        WEBHOOK_MANAGERS, PERSON_ONLY, role_first=True, kind="webhook", body={}
    ),
    ("GET", "/api/v1/webhooks/{subscription_id}/deliveries"): R(
        WEBHOOK_MANAGERS, PERSON_ONLY, role_first=True, kind="webhook"
    ),
    ("POST", "/api/v1/webhooks/{subscription_id}/deliveries/{delivery_id}/redeliver"): R(
        WEBHOOK_MANAGERS, PERSON_ONLY, role_first=True, kind="webhook", body={}
    ),
}

# Pages: the approval pages and the login (sessions only: a key is no credential there, and
# anonymous callers are sent to the login page). Keys are the URL pattern's route.
PAGES: dict[tuple[str, str], Rule] = {
    ("GET", "/approvals/"): R(PEOPLE, PERSON_ONLY, lists="request_page"),
    ("GET", "/approvals/new/"): R(PEOPLE, PERSON_ONLY),
    ("POST", "/approvals/new/"): R(
        {"owner", "team_people", "admin"},
        PERSON_ONLY,
        kind="model",
        out_of_scope=400,
        body={"model_version": "{version_pk}", "environment": "test", "reason": "matrix"},
    ),
    ("GET", "/approvals/emergency/"): R({"risk_officer"}, PERSON_ONLY),
    ("POST", "/approvals/emergency/"): R(
        {"risk_officer"},
        PERSON_ONLY,
        kind="model",
        role_first=True,
        out_of_scope=400,
        body={
            "model_version": "{version_pk}",
            "environment": "test",
            "reason": "matrix",
            "password": "{password}",
        },
    ),
    ("GET", "/approvals/<int:request_id>/"): R(PEOPLE, PERSON_ONLY, kind="request"),
    ("GET", "/approvals/<int:request_id>/sign/"): R(PEOPLE, PERSON_ONLY, kind="request"),
    ("POST", "/approvals/<int:request_id>/sign/"): R(
        {"validator"},
        PERSON_ONLY,
        kind="request",
        body={
            "decision": "approve",
            "meaning": "review",
            "password": "{password}",
            "shown_content": "{shown_content}",
        },
    ),
    ("GET", "/approvals/<int:request_id>/withdraw/"): R(PEOPLE, PERSON_ONLY, kind="request"),
    ("POST", "/approvals/<int:request_id>/withdraw/"): R(
        {"owner"}, PERSON_ONLY, kind="request", body=REASON
    ),
    ("GET", "/approvals/<int:request_id>/revoke/"): R(PEOPLE, PERSON_ONLY, kind="approved"),
    ("POST", "/approvals/<int:request_id>/revoke/"): R(
        {"risk_officer", "compliance_officer"}, PERSON_ONLY, kind="approved", body=REASON
    ),
    ("GET", "/approvals/<int:request_id>/retrospective/"): R(PEOPLE, PERSON_ONLY, kind="emergency"),
    ("POST", "/approvals/<int:request_id>/retrospective/"): R(
        {"validator", "compliance_officer"},
        PERSON_ONLY,
        kind="emergency",
        body={"decision": "approve", "password": "{password}"},
    ),
    ("GET", "/accounts/login/"): R(EVERYONE, PERSON_ONLY, public=True),
    ("GET", "/approvals/findings/<str:name>/<int:version>/new/"): R(
        FINDING_ROLES, PERSON_ONLY, kind="model"
    ),
    # The workspace: a person's home, a model's page (404 outside the caller's scope), and
    # their own API tokens.
    ("GET", "/"): R(PEOPLE, PERSON_ONLY),
    ("GET", "/models/<str:name>/"): R(PEOPLE, PERSON_ONLY, kind="model"),
    ("GET", "/tokens/"): R(PEOPLE, PERSON_ONLY),
    # Report pages: the request form for the roles that may request reports, a report and its
    # PDF for everyone who sees its model.
    ("GET", "/reports/new/"): R(
        REPORT_REQUESTERS,
        PERSON_ONLY,
        kind="model",
        query={"model": "{model}", "version": 1},
    ),
    ("GET", "/reports/<uuid:report_id>/"): R(PEOPLE, PERSON_ONLY, kind="report"),
    ("GET", "/reports/<uuid:report_id>/pdf/"): R(PEOPLE, PERSON_ONLY, kind="report"),
    # The regulator's package of a model: for those who see it and may read the log.
    ("GET", "/reports/package/new/"): R(
        AUDIT_READERS, PERSON_ONLY, kind="model", query={"model": "{model}"}
    ),
    ("POST", "/tokens/"): R(
        PEOPLE,
        PERSON_ONLY,
        body={"name": "matrix", "scopes": ["registry:read"], "expires_in_days": 30},
    ),
}
# The admin: staff only (the cast's administrator); anyone else, signed in or not, is sent to
# the admin's login (302), as Django's admin does.
ADMIN_STAFF = frozenset({"admin"})
