"""Who may call an API view: authenticated callers whose API key holds the view's scope.

A request authenticated with an API key (``request.auth`` is an ``ApiKey``) may use a view
only when the key holds one of the scopes the view names for the request's method; a session
user is not scope-limited. A scope never grants anything by itself: the key's user must still
hold the role or per-object grant the service or selector checks (what they may see is 404
when out of scope, what they may do is 403 from the service).

A view that names no scope for a method is a person's act (signing, rejecting, revoking,
retiring, granting, resolving a finding, break-glass...): every key is refused with 403
``person_required``, whatever its scopes. :class:`PersonOnly` is that rule for a whole view.

Every view names its permission classes; nothing falls back to a default. An unauthenticated
request is refused before any scope is looked at, and DRF answers it with 401 and the first
authentication class's ``WWW-Authenticate: Bearer realm="warden"``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request

from core.accounts.callers import request_api_key
from core.accounts.models import ApiKeyScope

PERSON_REQUIRED = "person_required"
PERSON_REQUIRED_MESSAGE = "this action cannot be done with an API key"


class ScopedPermission(BasePermission):
    """Authenticated; an API key must hold one of ``read_scopes`` (safe methods) or
    ``write_scopes`` (the others). An empty tuple means no key may do it."""

    read_scopes: ClassVar[tuple[str, ...]] = ()
    write_scopes: ClassVar[tuple[str, ...]] = ()
    message = "You do not have permission to perform this action."
    code: str | None = None

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if user is None or not user.is_authenticated or not user.is_active:
            return False
        if request.auth is None:
            return True  # a session: permissions come from the user alone
        needed = self.read_scopes if request.method in SAFE_METHODS else self.write_scopes
        if not needed:
            self.message, self.code = PERSON_REQUIRED_MESSAGE, PERSON_REQUIRED
            return False
        key = request_api_key(request)
        if key is None:
            return False  # a credential we cannot scope-check is refused
        if any(key.has_scope(scope) for scope in needed):
            return True
        self.message = f"this API key lacks the scope {' or '.join(needed)}"
        return False


class PersonOnly(ScopedPermission):
    """A person's act, in a session (re-entering their password where the service asks for
    it): no API key may call the view, whatever its scopes (403 ``person_required``)."""

    read_scopes = ()
    write_scopes = ()


class RegistryAccess(ScopedPermission):
    """The registry: reading needs ``registry:read`` (or ``registry:write``), writing
    ``registry:write``."""

    read_scopes = (ApiKeyScope.REGISTRY_READ.value, ApiKeyScope.REGISTRY_WRITE.value)
    write_scopes = (ApiKeyScope.REGISTRY_WRITE.value,)


class AuditLogAccess(ScopedPermission):
    """The audit log, read-only: ``audit:read`` for keys, and for everyone the global
    ``audit.view_auditrecord`` permission (validators, officers, auditors, administrators).

    Holders of a role are decided by group permissions; a data scientist has none here, so
    records of their own models are not listed to them through this API.
    """

    read_scopes = (ApiKeyScope.AUDIT_READ.value,)
    write_scopes = ()

    def has_permission(self, request: Request, view: Any) -> bool:
        if not super().has_permission(request, view):
            return False
        if not request.user.has_perm("audit.view_auditrecord"):
            self.message = "reading the audit log needs the audit.view_auditrecord permission"
            return False
        return True


class GateAccess(ScopedPermission):
    """The deployment gate: ``gate:read``."""

    read_scopes = (ApiKeyScope.GATE_READ.value,)
    write_scopes = (ApiKeyScope.GATE_READ.value,)


class DeploymentsAccess(ScopedPermission):
    """Deployment reports from CI: ``deployments:write`` (reading them needs it too)."""

    read_scopes = (ApiKeyScope.DEPLOYMENTS_WRITE.value,)
    write_scopes = (ApiKeyScope.DEPLOYMENTS_WRITE.value,)


class DeploymentRequestAccess(ScopedPermission):
    """Deployment requests, environments, policies and the deployments timeline: any key of
    the pipeline may read them; requesting a deployment or withdrawing one's own pending
    request through a key needs ``deployments:write``. Revoking is :class:`PersonOnly`."""

    read_scopes = (
        ApiKeyScope.GATE_READ.value,
        ApiKeyScope.DEPLOYMENTS_WRITE.value,
        ApiKeyScope.REGISTRY_READ.value,
        ApiKeyScope.REGISTRY_WRITE.value,
    )
    write_scopes = (ApiKeyScope.DEPLOYMENTS_WRITE.value,)


class SigningAccess(PersonOnly):
    """Electronic signatures: a person in a session re-entering their password; no API key
    may sign, whatever its scopes."""
