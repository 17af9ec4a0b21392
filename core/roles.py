"""The roles Warden knows, as Django groups, and the model permissions each holds globally.

Per-object rights (a team's own models, and the right to sign for one model in a role the
signer does not hold globally) come from django-guardian grants, never from these global
permissions. Role checks name groups explicitly: a superuser passes every ``has_perm``,
so membership, not ``has_perm``, decides who holds a role.
"""

from __future__ import annotations

from django.db import models


class Role(models.TextChoices):
    DATA_SCIENTIST = "data_scientist", "Data scientist"
    ML_ENGINEER = "ml_engineer", "ML engineer"
    VALIDATOR = "validator", "Validator"
    RISK_OFFICER = "risk_officer", "Risk officer"
    COMPLIANCE_OFFICER = "compliance_officer", "Compliance officer"
    AUDITOR = "auditor", "Auditor"
    ADMIN = "admin", "Administrator"


# Roles a per-model grant may confer for signing (DESIGN 3): the roles sign-off steps are made
# of. Auditors only read and administrators configure; neither is ever granted per model.
SIGNING_ROLES = (
    Role.DATA_SCIENTIST,
    Role.ML_ENGINEER,
    Role.VALIDATOR,
    Role.RISK_OFFICER,
    Role.COMPLIANCE_OFFICER,
)


def signing_codename(role: str) -> str:
    """The codename of the per-model permission (on ``registry.RegisteredModel``) that lets
    its holder sign the model's requests in ``role``."""
    return f"sign_as_{role}"


def signing_permissions() -> list[tuple[str, str]]:
    """``Meta.permissions`` entries of the per-model signing grants."""
    return [
        (signing_codename(role), f"Can sign for the model in the {role.label} role")
        for role in SIGNING_ROLES
    ]


# Roles that may request a fairness, drift or lineage report on a version they can see.
REPORT_REQUESTING_ROLES = (
    Role.DATA_SCIENTIST,
    Role.ML_ENGINEER,
    Role.VALIDATOR,
    Role.RISK_OFFICER,
    Role.COMPLIANCE_OFFICER,
    Role.ADMIN,
)

_VIEW_ALL = [
    "registry.view_registeredmodel",
    "registry.view_modelversion",
    "registry.view_dataset",
    "registry.view_datasetversion",
    "audit.view_auditrecord",
    "approvals.view_environment",
    "approvals.view_signoffpolicy",
    "approvals.view_deploymentrequest",
    "approvals.view_signoff",
    "approvals.view_deployment",
    "approvals.view_gatecheck",
    "approvals.view_finding",
]
# Everyone who builds models reads the environments and the policies that will apply.
_DEPLOY_READ = ["approvals.view_environment", "approvals.view_signoffpolicy"]
# Who sends Warden's events where is security relevant: managed by officers and administrators.
_WEBHOOKS = [
    "webhooks.view_webhooksubscription",
    "webhooks.view_webhookdelivery",
    "webhooks.manage_webhooksubscription",
]
_BUILD = [
    "registry.add_registeredmodel",
    "registry.add_dataset",
    "registry.view_dataset",
    "registry.view_datasetversion",
    *_DEPLOY_READ,
]

ROLE_PERMISSIONS: dict[str, list[str]] = {
    Role.DATA_SCIENTIST: _BUILD,
    Role.ML_ENGINEER: _BUILD,
    Role.VALIDATOR: _VIEW_ALL,
    Role.RISK_OFFICER: [
        *_VIEW_ALL,
        "registry.change_risk_registeredmodel",
        "approvals.break_glass",
        "approvals.revoke_deploymentrequest",
        "approvals.grant_signing",
        *_WEBHOOKS,
    ],
    Role.COMPLIANCE_OFFICER: [*_VIEW_ALL, "approvals.revoke_deploymentrequest", *_WEBHOOKS],
    Role.AUDITOR: [*_VIEW_ALL, "audit.export_auditrecord"],
    Role.ADMIN: [
        *_VIEW_ALL,
        *_BUILD,
        "registry.change_registeredmodel",
        "registry.register_version_registeredmodel",
        "registry.retire_registeredmodel",
        "registry.change_risk_registeredmodel",
        "registry.change_dataset",
        "registry.register_version_dataset",
        "audit.export_auditrecord",
        "approvals.publish_signoffpolicy",
        "approvals.grant_signing",
        *_WEBHOOKS,
    ],
}


def has_role(user: object, role: str) -> bool:
    """Whether ``user`` belongs to the role's group (superuser status does not count)."""
    groups = getattr(user, "groups", None)
    if groups is None or not getattr(user, "is_active", False):
        return False
    return bool(groups.filter(name=role).exists())


def may_request_reports(user: object) -> bool:
    """Whether ``user`` holds one of ``REPORT_REQUESTING_ROLES`` (in one query)."""
    groups = getattr(user, "groups", None)
    if groups is None or not getattr(user, "is_active", False):
        return False
    return bool(groups.filter(name__in=REPORT_REQUESTING_ROLES).exists())
