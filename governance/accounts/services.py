"""People, groups, service accounts and API keys: who holds which power, each change recorded.

Keys are shown once; records never hold them or their hashes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.actions import AuditAction
from audit.services import AuditEvent, Subject, audit_append, audit_record
from core.accounts.callers import Caller
from core.accounts.keys import new_key
from core.accounts.models import ApiKey, ApiKeyScope, User
from core.actors import SYSTEM_ACTOR, Actor
from core.errors import Conflict, Forbidden, InvalidInput, TransitionNotAllowed
from core.reasons import reason_required
from core.roles import Role, has_role


def _require_admin(caller: Caller) -> None:
    if not (caller.user.is_superuser or has_role(caller.user, Role.ADMIN)):
        raise Forbidden("only an administrator manages service accounts and keys")


def _check_scopes(scopes: Sequence[str]) -> list[str]:
    unknown = [scope for scope in scopes if scope not in ApiKeyScope.values]
    if unknown or not scopes:
        raise InvalidInput(
            f"unknown scope(s) {', '.join(unknown)}; choose from {', '.join(ApiKeyScope.values)}"
            if unknown
            else "at least one scope is required",
            fields={"scopes": ["Unknown or missing scope."]},
        )
    return sorted(set(scopes))


def _check_expiry(user: User, expires_at: dt.datetime | None) -> dt.datetime | None:
    """A key never starts expired. A person's token lives at most ``API_TOKEN_MAX_AGE_DAYS``
    (and that long when no expiry is given); a service account's key may have none: it is
    made, rotated and revoked by administrators."""
    now = timezone.now()
    if expires_at is not None and expires_at <= now:
        raise InvalidInput(
            "expires_at must be in the future", fields={"expires_at": ["Must be in the future."]}
        )
    if user.is_service_account:
        return expires_at
    days = settings.API_TOKEN_MAX_AGE_DAYS
    latest = now + dt.timedelta(days=days)
    if expires_at is None:
        return latest
    if expires_at > latest:
        raise InvalidInput(
            f"a personal token expires within {days} days (API_TOKEN_MAX_AGE_DAYS)",
            fields={"expires_at": [f"At most {days} days from now."]},
        )
    return expires_at


MAX_RATE_LIMIT = 1_000_000


def _check_rate_limit(rate_limit: int | None) -> int | None:
    """A key's own limit is a whole number of requests a minute, at least 1; ``None`` leaves
    it to ``API_KEY_RATE_LIMIT_PER_MINUTE``."""
    if rate_limit is None:
        return None
    if isinstance(rate_limit, bool) or not isinstance(rate_limit, int):
        raise InvalidInput(
            "rate_limit must be a whole number of requests a minute",
            fields={"rate_limit": ["A whole number."]},
        )
    if not 1 <= rate_limit <= MAX_RATE_LIMIT:
        raise InvalidInput(
            f"rate_limit must be between 1 and {MAX_RATE_LIMIT:,} requests a minute",
            fields={"rate_limit": [f"Between 1 and {MAX_RATE_LIMIT}."]},
        )
    return rate_limit


def _key_subject(key: ApiKey) -> Subject:
    return Subject(type="api_key", id=str(key.pk), label=f"{key.name} ({key.prefix})")


def _issue_key(
    *,
    user: User,
    name: str,
    scopes: list[str],
    expires_at: dt.datetime | None,
    rate_limit: int | None,
) -> tuple[str, ApiKey, dict[str, object]]:
    if not name.strip() or len(name) > 100:
        raise InvalidInput("name must be 1-100 characters", fields={"name": ["1-100 characters."]})
    key, prefix, hashed = new_key()
    row = ApiKey.objects.create(
        user=user,
        name=name.strip(),
        prefix=prefix,
        hashed_key=hashed,
        scopes=scopes,
        expires_at=expires_at,
        rate_limit=rate_limit,
    )
    data: dict[str, object] = {
        "user": str(user.pk),
        "username": user.username,
        "name": row.name,
        "prefix": prefix,
        "scopes": scopes,
        "expires_at": expires_at,
        "rate_limit": rate_limit,
    }
    return key, row, data


def api_key_create(
    *,
    caller: Caller,
    user: User,
    name: str,
    scopes: Sequence[str],
    expires_at: dt.datetime | None = None,
    rate_limit: int | None = None,
) -> tuple[str, ApiKey]:
    """Make a key for ``user``; returns ``(key, row)``. The key is not stored, only its hash.

    A person may make personal tokens for themselves; keys of service accounts are made by
    an administrator. A person's token expires within ``API_TOKEN_MAX_AGE_DAYS`` (at that
    age when ``expires_at`` is not given); a service account's key may never expire.
    ``rate_limit`` (requests a minute, at least 1) overrides ``API_KEY_RATE_LIMIT_PER_MINUTE``
    for this key.
    """
    if user.pk != caller.user.pk or user.is_service_account:
        _require_admin(caller)
    checked = _check_scopes(scopes)
    expires_at = _check_expiry(user, expires_at)
    limit = _check_rate_limit(rate_limit)
    with transaction.atomic(durable=True):
        key, row, data = _issue_key(
            user=user, name=name, scopes=checked, expires_at=expires_at, rate_limit=limit
        )
        audit_record(
            action=AuditAction.API_KEY_CREATED,
            actor=caller.actor,
            object=_key_subject(row),
            data=data,
        )
    return key, row


def api_key_revoke(*, caller: Caller, key: ApiKey, reason: str) -> ApiKey:
    """Revoke a key at once; its later requests are 401."""
    if key.user_id != caller.user.pk:
        _require_admin(caller)
    if not reason.strip():
        raise InvalidInput("a reason is required", fields={"reason": ["This field is required."]})
    with transaction.atomic(durable=True):
        key = ApiKey.objects.select_for_update().get(pk=key.pk)
        if key.revoked_at is not None:
            raise TransitionNotAllowed(f"key {key.prefix} is already revoked")
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
        audit_record(
            action=AuditAction.API_KEY_REVOKED,
            actor=caller.actor,
            object=_key_subject(key),
            data={"prefix": key.prefix, "revoked_at": key.revoked_at},
            reason=reason.strip(),
        )
    return key


def service_account_create(
    *,
    caller: Caller,
    name: str,
    scopes: Sequence[str],
    groups: Sequence[str] = (),
    rate_limit: int | None = None,
) -> tuple[str, ApiKey]:
    """Create a service account (a user that cannot log in) and its first key (with
    ``rate_limit`` requests a minute, or the default), recorded together:
    ``service_account.created`` then ``api_key.created``."""
    _require_admin(caller)
    checked = _check_scopes(scopes)
    limit = _check_rate_limit(rate_limit)
    found = list(Group.objects.filter(name__in=groups))
    missing = sorted(set(groups) - {group.name for group in found})
    if missing:
        raise InvalidInput(f"unknown group(s): {', '.join(missing)}", fields={"groups": missing})
    account = User(username=name, kind=User.Kind.SERVICE)
    try:
        account.full_clean(exclude=["password"], validate_unique=False)
    except ValidationError as exc:
        raise InvalidInput(f"invalid account name {name!r}", fields=exc.message_dict) from exc
    account.set_unusable_password()
    with transaction.atomic(durable=True):
        if User.objects.filter(username=name).exists():
            raise Conflict(f"an account named {name!r} already exists")
        account.save()
        account.groups.set(found)
        key, row, data = _issue_key(
            user=account, name=f"{name} key", scopes=checked, expires_at=None, rate_limit=limit
        )
        audit_append(
            events=[
                AuditEvent(
                    action=AuditAction.SERVICE_ACCOUNT_CREATED,
                    actor=caller.actor,
                    object=Subject(type="user", id=str(account.pk), label=name),
                    data={
                        "username": name,
                        "kind": account.kind,
                        "groups": sorted(g.name for g in found),
                    },
                ),
                AuditEvent(
                    action=AuditAction.API_KEY_CREATED,
                    actor=caller.actor,
                    object=_key_subject(row),
                    data=data,
                ),
            ]
        )
    return key, row


#
# Group membership (roles and teams), permissions and the account flags decide who may sign,
# approve and administer (21 CFR 11.10(e)): each change is recorded with its reason and the
# before/after of what changed, in the transaction that makes it.

USER_FLAGS = ("is_active", "is_staff", "is_superuser")
USER_PROFILE_FIELDS = ("username", "first_name", "last_name", "email", "kind")


def _actor(caller: Caller | None) -> Actor:
    return caller.actor if caller is not None else SYSTEM_ACTOR


def _require_power_admin(caller: Caller | None) -> None:
    if caller is not None:
        _require_admin(caller)


def _dotted(permissions: Iterable[Permission]) -> list[str]:
    return sorted(f"{p.content_type.app_label}.{p.codename}" for p in permissions)


def _user_subject(user: User) -> Subject:
    return Subject(type="user", id=str(user.pk), label=user.username)


def _group_subject(group: Group) -> Subject:
    return Subject(type="group", id=str(group.pk), label=group.name)


def user_power_snapshot(user: User) -> dict[str, Any]:
    """What a user's record shows: identity, flags, groups (roles and teams), permissions."""
    return {
        **{name: getattr(user, name) for name in USER_PROFILE_FIELDS},
        **{name: getattr(user, name) for name in USER_FLAGS},
        "groups": sorted(g.name for g in user.groups.all()),
        "user_permissions": _dotted(user.user_permissions.select_related("content_type")),
    }


def group_snapshot(group: Group) -> dict[str, Any]:
    """What a group's record shows: its name, permissions and members."""
    return {
        "name": group.name,
        "permissions": _dotted(group.permissions.select_related("content_type")),
        "members": sorted(group.user_set.values_list("username", flat=True)),
    }


def _diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    keys = [key for key in after if before.get(key) != after[key]]
    return {"before": {k: before.get(k) for k in keys}, "after": {k: after[k] for k in keys}}


def _check_user_fields(fields: Mapping[str, Any]) -> None:
    unknown = sorted(set(fields) - set(USER_PROFILE_FIELDS) - set(USER_FLAGS))
    if unknown:
        raise InvalidInput(
            f"{unknown[0]} cannot be changed here",
            fields={unknown[0]: ["This field cannot be changed here."]},
        )
    if "kind" in fields and fields["kind"] not in User.Kind.values:
        raise InvalidInput(f"unknown kind {fields['kind']!r}", fields={"kind": ["Unknown kind."]})


def user_create(
    *,
    caller: Caller | None,
    username: str,
    reason: str,
    password: str | None = None,
    groups: Iterable[Group] = (),
    user_permissions: Iterable[Permission] = (),
    **fields: Any,
) -> User:
    """Create a user with their groups, permissions and flags, recorded as ``user.created``.

    An administrator acts; ``caller=None`` is Warden itself, for an installation's first
    accounts (bootstrap and demo seeding). Without ``password`` the account cannot log in
    with one. ``fields`` are profile fields and flags (``USER_PROFILE_FIELDS``, ``USER_FLAGS``).
    """
    _require_power_admin(caller)
    note = reason_required(reason)
    _check_user_fields(fields)
    if fields.get("is_superuser") and caller is not None and not caller.user.is_superuser:
        raise Forbidden("only a superuser makes superusers")
    user = User(username=username, **fields)
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    try:
        user.full_clean(exclude=["password"], validate_unique=False)
    except ValidationError as exc:
        raise InvalidInput(f"invalid user {username!r}", fields=exc.message_dict) from exc
    with transaction.atomic(durable=True):
        if User.objects.filter(username=username).exists():
            raise Conflict(f"a user named {username!r} already exists")
        user.save()
        user.groups.set(list(groups))
        user.user_permissions.set(list(user_permissions))
        audit_record(
            action=AuditAction.USER_CREATED,
            actor=_actor(caller),
            object=_user_subject(user),
            data=user_power_snapshot(user),
            reason=note,
        )
    return user


def user_change(
    *,
    caller: Caller | None,
    user: User,
    reason: str,
    groups: Iterable[Group] | None = None,
    user_permissions: Iterable[Permission] | None = None,
    **fields: Any,
) -> User:
    """Change a user's groups (roles and teams), permissions, flags or profile at once,
    recorded as one ``user.changed`` with the before/after of what changed (nothing changed:
    nothing written, nothing recorded).

    An administrator acts, never on their own groups, permissions or flags; only a
    superuser grants or withdraws superuser status. ``None`` leaves a part as it is.
    """
    _require_power_admin(caller)
    note = reason_required(reason)
    _check_user_fields(fields)
    with transaction.atomic(durable=True):
        user = User.objects.select_for_update().get(pk=user.pk)
        before = user_power_snapshot(user)
        for name, value in fields.items():
            setattr(user, name, value)
        try:
            user.full_clean(exclude=["password"], validate_unique=False)
        except ValidationError as exc:
            raise InvalidInput(f"invalid user {user.username!r}", fields=exc.message_dict) from exc
        if (
            "username" in fields
            and User.objects.filter(username=user.username).exclude(pk=user.pk).exists()
        ):
            raise Conflict(f"a user named {user.username!r} already exists")
        user.save()
        if groups is not None:
            user.groups.set(list(groups))
        if user_permissions is not None:
            user.user_permissions.set(list(user_permissions))
        diff = _diff(before, user_power_snapshot(user))
        if not diff["after"]:
            transaction.set_rollback(True)
            return user
        power = set(diff["after"]) - {"first_name", "last_name", "email", "username"}
        if caller is not None and caller.user.pk == user.pk and power:
            raise Forbidden("nobody changes their own groups, permissions or account flags")
        if "is_superuser" in diff["after"] and caller is not None and not caller.user.is_superuser:
            raise Forbidden("only a superuser grants or withdraws superuser status")
        audit_record(
            action=AuditAction.USER_CHANGED,
            actor=_actor(caller),
            object=_user_subject(user),
            data=diff,
            reason=note,
        )
    return user


def user_roles_change(
    *, caller: Caller | None, user: User, groups: Iterable[Group], reason: str
) -> User:
    """Set the groups (roles and teams) ``user`` belongs to; see ``user_change``."""
    return user_change(caller=caller, user=user, groups=groups, reason=reason)


def user_permissions_change(
    *, caller: Caller | None, user: User, permissions: Iterable[Permission], reason: str
) -> User:
    """Set the permissions granted to ``user`` directly; see ``user_change``."""
    return user_change(caller=caller, user=user, user_permissions=permissions, reason=reason)


def user_flags_change(
    *,
    caller: Caller | None,
    user: User,
    reason: str,
    is_active: bool | None = None,
    is_staff: bool | None = None,
    is_superuser: bool | None = None,
) -> User:
    """Activate or deactivate ``user``, or change their admin or superuser status; see
    ``user_change``."""
    flags: dict[str, Any] = {
        name: value
        for name, value in (
            ("is_active", is_active),
            ("is_staff", is_staff),
            ("is_superuser", is_superuser),
        )
        if value is not None
    }
    return user_change(caller=caller, user=user, reason=reason, **flags)


def _role_permissions_fixed(group: Group, permissions: Iterable[Permission] | None) -> None:
    if permissions is None or group.name not in Role.values:
        return
    if _dotted(permissions) != _dotted(group.permissions.select_related("content_type")):
        raise InvalidInput(
            f"{group.name!r} is a role: its permissions are Warden's (ROLE_PERMISSIONS)",
            fields={"permissions": ["A role's permissions cannot be changed here."]},
        )


def group_create(
    *,
    caller: Caller | None,
    name: str,
    reason: str,
    permissions: Iterable[Permission] = (),
    members: Iterable[User] = (),
) -> Group:
    """Create a group (a team) with its permissions and members: ``group.created``."""
    _require_power_admin(caller)
    note = reason_required(reason)
    if not name.strip() or len(name) > 150:
        raise InvalidInput("name must be 1-150 characters", fields={"name": ["1-150 characters."]})
    member_list = list(members)
    if caller is not None and any(m.pk == caller.user.pk for m in member_list):
        raise Forbidden("nobody adds themselves to a group")
    with transaction.atomic(durable=True):
        if Group.objects.filter(name=name).exists():
            raise Conflict(f"a group named {name!r} already exists")
        group = Group.objects.create(name=name)
        group.permissions.set(list(permissions))
        group.user_set.set(member_list)
        audit_record(
            action=AuditAction.GROUP_CREATED,
            actor=_actor(caller),
            object=_group_subject(group),
            data=group_snapshot(group),
            reason=note,
        )
    return group


def group_change(
    *,
    caller: Caller | None,
    group: Group,
    reason: str,
    name: str | None = None,
    permissions: Iterable[Permission] | None = None,
    members: Iterable[User] | None = None,
) -> Group:
    """Rename a group, set its permissions or its members, recorded as one
    ``group.changed`` with the before/after of what changed.

    A role group's name and permissions are Warden's own (``ROLE_PERMISSIONS``); its members
    change here. Nobody adds or removes themselves.
    """
    _require_power_admin(caller)
    note = reason_required(reason)
    perms = list(permissions) if permissions is not None else None
    with transaction.atomic(durable=True):
        group = Group.objects.select_for_update().get(pk=group.pk)
        before = group_snapshot(group)
        _role_permissions_fixed(group, perms)
        if name is not None and name != group.name:
            if group.name in Role.values:
                raise InvalidInput(
                    f"{group.name!r} is a role and keeps its name",
                    fields={"name": ["A role cannot be renamed."]},
                )
            if not name.strip() or len(name) > 150:
                raise InvalidInput(
                    "name must be 1-150 characters", fields={"name": ["1-150 characters."]}
                )
            if Group.objects.filter(name=name).exclude(pk=group.pk).exists():
                raise Conflict(f"a group named {name!r} already exists")
            group.name = name
            group.save(update_fields=["name"])
        if perms is not None:
            group.permissions.set(perms)
        if members is not None:
            group.user_set.set(list(members))
        diff = _diff(before, group_snapshot(group))
        if not diff["after"]:
            transaction.set_rollback(True)
            return group
        if caller is not None and "members" in diff["after"]:
            me = caller.user.username
            if (me in diff["before"]["members"]) != (me in diff["after"]["members"]):
                raise Forbidden("nobody adds themselves to a group or removes themselves")
        audit_record(
            action=AuditAction.GROUP_CHANGED,
            actor=_actor(caller),
            object=_group_subject(group),
            data=diff,
            reason=note,
        )
    return group


def group_permissions_change(
    *, caller: Caller | None, group: Group, permissions: Iterable[Permission], reason: str
) -> Group:
    """Set a (team) group's permissions; see ``group_change``."""
    return group_change(caller=caller, group=group, permissions=permissions, reason=reason)


def group_members_change(
    *, caller: Caller | None, group: Group, members: Iterable[User], reason: str
) -> Group:
    """Set who belongs to a group (a role or a team); see ``group_change``."""
    return group_change(caller=caller, group=group, members=members, reason=reason)


def _key_state(key: ApiKey) -> dict[str, Any]:
    return {
        "name": key.name,
        "scopes": sorted(key.scopes),
        "expires_at": key.expires_at,
        "rate_limit": key.rate_limit,
    }


def api_key_change(
    *,
    caller: Caller,
    key: ApiKey,
    reason: str,
    name: str | None = None,
    scopes: Sequence[str] | None = None,
    expires_at: dt.datetime | Literal["keep"] | None = "keep",
    rate_limit: int | Literal["keep"] | None = "keep",
) -> ApiKey:
    """Rename a key, set its scopes, its expiry or its rate limit (``None``: the default),
    recorded as ``api_key.changed`` with the before/after (revocation is ``api_key_revoke``).
    A revoked key does not change."""
    if key.user_id != caller.user.pk:
        _require_admin(caller)
    note = reason_required(reason)
    checked = _check_scopes(scopes) if scopes is not None else None
    limit = _check_rate_limit(rate_limit) if rate_limit != "keep" else "keep"
    if name is not None and (not name.strip() or len(name) > 100):
        raise InvalidInput("name must be 1-100 characters", fields={"name": ["1-100 characters."]})
    with transaction.atomic(durable=True):
        key = ApiKey.objects.select_for_update().get(pk=key.pk)
        if key.revoked_at is not None:
            raise TransitionNotAllowed(f"key {key.prefix} is revoked")
        before = _key_state(key)
        if name is not None:
            key.name = name.strip()
        if checked is not None:
            key.scopes = checked
        if expires_at != "keep":
            key.expires_at = expires_at
        if limit != "keep":
            key.rate_limit = limit
        diff = _diff(before, _key_state(key))
        if not diff["after"]:
            return key
        key.save(update_fields=["name", "scopes", "expires_at", "rate_limit"])
        audit_record(
            action=AuditAction.API_KEY_CHANGED,
            actor=caller.actor,
            object=_key_subject(key),
            data={"prefix": key.prefix, **diff},
            reason=note,
        )
    return key


def api_key_scopes_change(
    *, caller: Caller, key: ApiKey, scopes: Sequence[str], reason: str
) -> ApiKey:
    """Set what a key may be used for; see ``api_key_change``."""
    return api_key_change(caller=caller, key=key, scopes=scopes, reason=reason)
