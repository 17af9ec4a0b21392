"""Every action name the audit log records, in one catalogue.

A record's ``action`` is hashed into its body, so a value here never changes once records
carry it; a new kind of event gets a new member. The label says what the record means;
``docs/audit-actions.md`` lists them all (a test keeps it in step with this class).
"""

from django.db import models


class AuditAction(models.TextChoices):
    """The action of an audit record: ``<noun>.<past participle>``."""

    API_KEY_CREATED = "api_key.created", "An API key was created"
    API_KEY_CHANGED = (
        "api_key.changed",
        "An API key was renamed, or its scopes or expiry were changed",
    )
    API_KEY_REVOKED = "api_key.revoked", "An API key was revoked"
    SERVICE_ACCOUNT_CREATED = "service_account.created", "A service account was created"
    USER_CREATED = "user.created", "A user account was created"
    USER_CHANGED = "user.changed", "A user's groups, permissions, flags or profile were changed"
    USER_LOGGED_IN = "user.logged_in", "A person signed in"
    USER_LOGIN_FAILED = "user.login_failed", "A sign-in failed (security event)"
    GROUP_CREATED = "group.created", "A group was created"
    GROUP_CHANGED = "group.changed", "A group's name, permissions or members were changed"
    ROLE_PERMISSIONS_SYNCED = (
        "role.permissions_synced",
        "The permissions of the role groups were brought in line with Warden's roles",
    )

    AUDIT_CHANGE_REFUSED = (
        "audit.change_refused",
        "A change to an append-only audit table was refused (security event, alert)",
    )
    AUDIT_EXPORT_REQUESTED = "audit.export_requested", "An export bundle was requested"
    AUDIT_EXPORTED = "audit.exported", "An export bundle was written"
    AUDIT_EXPORT_FAILED = "audit.export_failed", "A requested export bundle could not be written"
    AUDIT_KEY_ROTATED = "audit.key_rotated", "The checkpoint signing key was rotated"
    AUDIT_VERIFIED = "audit.verified", "The whole log was verified (a failure is an alert)"

    REGISTERED_MODEL_CREATED = "registered_model.created", "A model was registered"
    REGISTERED_MODEL_UPDATED = (
        "registered_model.updated",
        "A model's descriptive fields were changed",
    )
    REGISTERED_MODEL_RISK_CHANGED = "registered_model.risk_changed", "A model's risk tier changed"
    REGISTERED_MODEL_RETIRED = "registered_model.retired", "A model was retired"
    MODEL_VERSION_REGISTERED = "model_version.registered", "A model version was registered"
    MODEL_VERSION_STATUS_CHANGED = (
        "model_version.status_changed",
        "A model version was deprecated or retired",
    )
    DATASET_CREATED = "dataset.created", "A dataset was registered"
    DATASET_UPDATED = "dataset.updated", "A dataset's descriptive fields were changed"
    DATASET_RETIRED = "dataset.retired", "A dataset was retired"
    DATASET_VERSION_REGISTERED = "dataset_version.registered", "A dataset version was registered"

    DEPLOYMENT_REQUEST_SUBMITTED = "deployment_request.submitted", "A deployment was requested"
    DEPLOYMENT_REQUEST_WITHDRAWN = (
        "deployment_request.withdrawn",
        "The requester withdrew a deployment request",
    )
    DEPLOYMENT_REQUEST_REVOKED = "deployment_request.revoked", "An approval was revoked"
    DEPLOYMENT_REQUEST_EXPIRED = "deployment_request.expired", "An approval expired"
    DEPLOYMENT_REQUEST_EMERGENCY_OPENED = (
        "deployment_request.emergency_opened",
        "A break-glass deployment was allowed without sign-off",
    )
    DEPLOYMENT_REQUEST_RETROSPECTIVE_OVERDUE = (
        "deployment_request.retrospective_overdue",
        "A break-glass retrospective review was not signed in time (alert)",
    )
    DEPLOYMENT_REQUEST_REFUSED = (
        "deployment_request.refused",
        "A deployment request, or a change to one, was refused (security event)",
    )
    SIGNOFF_SIGNED = "signoff.signed", "A step of a deployment request was signed"
    SIGNOFF_REFUSED = "signoff.refused", "A signature was refused (security event)"
    SIGNOFF_REAUTHENTICATION_FAILED = (
        "signoff.reauthentication_failed",
        "A signer's re-authentication failed (security event; the last one locks signing)",
    )
    SIGNOFF_POLICY_PUBLISHED = "signoff_policy.published", "A sign-off policy version was published"
    SIGNOFF_POLICY_REFUSED = (
        "signoff_policy.refused",
        "Publishing a sign-off policy was refused (security event)",
    )
    FINDING_OPENED = "finding.opened", "A finding was raised against a model version"
    FINDING_RESOLVED = "finding.resolved", "A finding was resolved"
    FINDING_REFUSED = (
        "finding.refused",
        "Raising or resolving a finding was refused (security event)",
    )
    SIGNING_GRANTED = "signing.granted", "A per-model signing grant was given"
    SIGNING_REVOKED = "signing.revoked", "A per-model signing grant was withdrawn"
    SIGNING_REFUSED = "signing.refused", "Changing a signing grant was refused (security event)"
    GATE_CHECKED = "gate.checked", "The gate answered whether an artifact may be deployed"
    DEPLOYMENT_DEPLOYED = "deployment.deployed", "CI reported a deployment"
    DEPLOYMENT_ROLLED_BACK = "deployment.rolled_back", "CI reported a rollback"
    DEPLOYMENT_RETIRED = "deployment.retired", "CI reported a retirement from an environment"
    DEPLOYMENT_REFUSED = "deployment.refused", "A deployment report was refused (security event)"

    REPORT_REQUESTED = "report.requested", "A report was requested"
    REPORT_STARTED = "report.started", "A report job started"
    REPORT_COMPLETED = "report.completed", "A report was completed and stored"
    REPORT_FAILED = "report.failed", "A report job failed"
    REGULATOR_PACKAGE_EXPORTED = (
        "regulator_package.exported",
        "A regulator's package (PDF/A-3b with its export bundle embedded) was written",
    )

    WEBHOOK_SUBSCRIPTION_CREATED = (
        "webhook_subscription.created",
        "A webhook subscription was created",
    )
    WEBHOOK_SUBSCRIPTION_UPDATED = (
        "webhook_subscription.updated",
        "A webhook subscription was changed or deactivated",
    )
    WEBHOOK_SUBSCRIPTION_SECRET_ROTATED = (
        "webhook_subscription.secret_rotated",
        "A webhook subscription's signing secret was rotated",
    )
    WEBHOOK_SUBSCRIPTION_REFUSED = (
        "webhook_subscription.refused",
        "A change to a webhook subscription was refused (security event)",
    )
    WEBHOOK_DELIVERY_REDELIVERED = (
        "webhook_delivery.redelivered",
        "A webhook delivery was queued again by hand",
    )


def catalogue_markdown() -> str:
    """``docs/audit-actions.md``: a table of every action and what its record means."""
    rows = "\n".join(f"| `{action.value}` | {action.label} |" for action in AuditAction)
    return (
        "# Audit actions\n\n"
        "Every `action` an audit record of Warden carries, from `audit.actions.AuditAction`.\n"
        "A refusal (`*.refused`, `user.login_failed`, `signoff.reauthentication_failed`) is\n"
        "a security event, recorded in a transaction of its own after the refused change\n"
        "rolled back. This page is generated:\n"
        "`python -m audit.actions > docs/audit-actions.md`.\n\n"
        "| action | meaning |\n| --- | --- |\n" + rows + "\n"
    )


if __name__ == "__main__":
    import sys

    sys.stdout.write(catalogue_markdown())
