"""The only code that changes deployment requests, sign-offs, findings, signing grants,
policies, gate checks and deployments: one module per use case, re-exported here so that
``from governance.approvals.services import X`` names any of them. How the services lock,
record and refuse is in ``docs/approvals.md``."""

from django.utils import timezone

from core.accounts.callers import Caller
from core.errors import ReauthenticationFailed
from core.reasons import MAX_REASON
from governance.approvals import evidence as evidence_module
from governance.approvals.services._common import (
    REAUTH_MAX_FAILURES,
    REAUTH_WINDOW,
    request_snapshot,
)
from governance.approvals.services.deployments import FUTURE_SKEW, deployment_report
from governance.approvals.services.emergency import (
    RETROSPECTIVE_DUE,
    RETROSPECTIVE_ROLES,
    deployment_emergency,
    retrospective_flag_overdue,
    retrospectives_flag_overdue,
    signoff_retrospective,
)
from governance.approvals.services.findings import (
    FINDING_ROLES,
    finding_open,
    finding_open_authorize,
    finding_resolve,
    finding_resolve_authorize,
    finding_snapshot,
)
from governance.approvals.services.gate import GateAnswer, gate_check, gate_record
from governance.approvals.services.grants import (
    GRANT_SIGNING,
    signing_change_authorize,
    signing_grant,
    signing_revoke,
)
from governance.approvals.services.policies import signoff_policy_publish
from governance.approvals.services.requests import (
    deployment_request_expire,
    deployment_request_revoke,
    deployment_request_revoke_authorize,
    deployment_request_submit,
    deployment_request_withdraw,
    deployment_request_withdraw_authorize,
    deployment_requests_expire_due,
)
from governance.approvals.services.signoffs import (
    SignOffPreview,
    signed_sha256,
    signoff_preview,
    signoff_sign,
)

# ``Caller``, ``ReauthenticationFailed``, ``evidence_module``, ``timezone`` and ``MAX_REASON``
# were reachable through the single module these services once were; callers still name them.
__all__ = [
    "FINDING_ROLES",
    "FUTURE_SKEW",
    "GRANT_SIGNING",
    "MAX_REASON",
    "REAUTH_MAX_FAILURES",
    "REAUTH_WINDOW",
    "RETROSPECTIVE_DUE",
    "RETROSPECTIVE_ROLES",
    "Caller",
    "GateAnswer",
    "ReauthenticationFailed",
    "SignOffPreview",
    "deployment_emergency",
    "deployment_report",
    "deployment_request_expire",
    "deployment_request_revoke",
    "deployment_request_revoke_authorize",
    "deployment_request_submit",
    "deployment_request_withdraw",
    "deployment_request_withdraw_authorize",
    "deployment_requests_expire_due",
    "evidence_module",
    "finding_open",
    "finding_open_authorize",
    "finding_resolve",
    "finding_resolve_authorize",
    "finding_snapshot",
    "gate_check",
    "gate_record",
    "request_snapshot",
    "retrospective_flag_overdue",
    "retrospectives_flag_overdue",
    "signed_sha256",
    "signing_change_authorize",
    "signing_grant",
    "signing_revoke",
    "signoff_policy_publish",
    "signoff_preview",
    "signoff_retrospective",
    "signoff_sign",
    "timezone",
]
