"""Per-model signing grants: granting and revoking the right to sign in a role."""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.db import transaction
from guardian.shortcuts import assign_perm, remove_perm

from audit.actions import AuditAction
from audit.services import Subject, audit_record
from core.accounts.callers import Caller
from core.accounts.models import User
from core.errors import Conflict, Forbidden, InvalidInput, NotFound, SeparationOfDutiesViolation
from core.reasons import reason_required
from core.roles import signing_codename
from governance.approvals.services._common import group_grants, recording_refusals
from registry.models import RegisteredModel
from registry.selectors import SigningGrant, signing_grant_list

GRANT_SIGNING = "approvals.grant_signing"


def _grantee(user: User | None, group: Group | None) -> tuple[User | Group, dict[str, str]]:
    """The one user or group a grant names, and how the audit record names it."""
    if user is not None and group is None:
        if not user.is_active or user.is_service_account:
            raise InvalidInput(
                f"{user.get_username()} cannot sign: only an active person can",
                fields={"user": ["Only an active person (not a service account) can sign."]},
            )
        return user, {"type": "user", "id": str(user.pk), "name": user.get_username()}
    if group is not None and user is None:
        return group, {"type": "group", "id": str(group.pk), "name": group.name}
    raise InvalidInput(
        "name exactly one of user or group",
        fields={"user": ["Name a user or a group, not both."]},
    )


def signing_change_authorize(*, caller: Caller, model: RegisteredModel) -> None:
    """``Forbidden`` (recorded as ``signing.refused``) unless the caller may grant or revoke
    signing rights (``approvals.grant_signing`` through a role)."""
    subject = Subject(type="registered_model", id=str(model.pk), label=model.name)
    with recording_refusals(
        caller, action=AuditAction.SIGNING_REFUSED, subject=subject, scope={"model": model.name}
    ):
        if not group_grants(caller.user, GRANT_SIGNING):
            raise Forbidden(
                "granting or revoking signing rights needs the grant_signing permission "
                "(risk officers and administrators)"
            )


def _signing_change(
    *,
    caller: Caller,
    model: RegisteredModel,
    role: str,
    reason: str,
    user: User | None,
    group: Group | None,
    grant: bool,
) -> SigningGrant:
    signing_change_authorize(caller=caller, model=model)
    text = reason_required(reason)
    grantee, named = _grantee(user, group)
    perm = f"registry.{signing_codename(role)}"
    subject = Subject(type="registered_model", id=str(model.pk), label=model.name)
    scope = {"model": model.name}
    action = AuditAction.SIGNING_GRANTED if grant else AuditAction.SIGNING_REVOKED
    with recording_refusals(
        caller, action=AuditAction.SIGNING_REFUSED, subject=subject, scope=scope
    ):
        if grant and (
            caller.user.pk == getattr(user, "pk", None)
            or (group is not None and caller.user.groups.filter(pk=group.pk).exists())
        ):
            raise SeparationOfDutiesViolation(
                "nobody grants signing rights to themselves or to a group they belong to",
                rule="grant_needs_another_person",
            )
        with transaction.atomic(durable=True):
            # The model's row lock orders concurrent grants and revocations of one model.
            model = RegisteredModel.objects.select_for_update().get(pk=model.pk)
            held = any(
                g.role == role and (g.user == user if user else g.group == group)
                for g in signing_grant_list(model=model)
            )
            if grant and held:
                raise Conflict(f"{named['name']} may already sign for {model.name} as {role}")
            if not grant and not held:
                raise NotFound(f"{named['name']} has no grant to sign for {model.name} as {role}")
            if grant:
                assign_perm(perm, grantee, model)
            else:
                remove_perm(perm, grantee, model)
            audit_record(
                action=action,
                actor=caller.actor,
                object=subject,
                scope=scope,
                data={"role": role, "grantee": named},
                reason=text,
            )
    return SigningGrant(role=role, user=user, group=group)


def signing_grant(
    *,
    caller: Caller,
    model: RegisteredModel,
    role: str,
    reason: str,
    user: User | None = None,
    group: Group | None = None,
) -> SigningGrant:
    """Let one person, or the members of one group, sign ``model``'s requests in ``role``
    (``signing.granted``): DESIGN's per-model grant, a guardian object permission. Holders
    of ``approvals.grant_signing`` through their role grant it, never to themselves or to a
    group of theirs; separation of duties still applies when the grantee signs."""
    return _signing_change(
        caller=caller, model=model, role=role, reason=reason, user=user, group=group, grant=True
    )


def signing_revoke(
    *,
    caller: Caller,
    model: RegisteredModel,
    role: str,
    reason: str,
    user: User | None = None,
    group: Group | None = None,
) -> SigningGrant:
    """Withdraw a per-model signing grant (``signing.revoked``). Signatures already given
    stand; the grantee signs no further step in that role for the model."""
    return _signing_change(
        caller=caller, model=model, role=role, reason=reason, user=user, group=group, grant=False
    )
