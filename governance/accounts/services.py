"""Service accounts and API keys. Keys are shown once; records never hold them or hashes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit.services import AuditEvent, Subject, audit_append
from governance.accounts.callers import Caller
from governance.accounts.keys import new_key
from governance.accounts.models import ApiKey, ApiKeyScope, User
from governance.common.errors import Conflict, Forbidden, InvalidInput, TransitionNotAllowed
from governance.common.roles import Role, has_role


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


def _key_subject(key: ApiKey) -> Subject:
    return Subject(type="api_key", id=str(key.pk), label=f"{key.name} ({key.prefix})")


def _issue_key(
    *, user: User, name: str, scopes: list[str], expires_at: dt.datetime | None
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
    )
    data: dict[str, object] = {
        "user": str(user.pk),
        "username": user.username,
        "name": row.name,
        "prefix": prefix,
        "scopes": scopes,
        "expires_at": expires_at,
    }
    return key, row, data


def api_key_create(
    *,
    caller: Caller,
    user: User,
    name: str,
    scopes: Sequence[str],
    expires_at: dt.datetime | None = None,
) -> tuple[str, ApiKey]:
    """Make a key for ``user``; returns ``(key, row)``. The key is not stored, only its hash.

    A person may make personal tokens for themselves; keys of service accounts are made by
    an administrator. A person's token expires within ``API_TOKEN_MAX_AGE_DAYS`` (at that
    age when ``expires_at`` is not given); a service account's key may never expire.
    """
    if user.pk != caller.user.pk or user.is_service_account:
        _require_admin(caller)
    checked = _check_scopes(scopes)
    expires_at = _check_expiry(user, expires_at)
    with transaction.atomic(durable=True):
        key, row, data = _issue_key(user=user, name=name, scopes=checked, expires_at=expires_at)
        audit_append(
            events=[
                AuditEvent(
                    action="api_key.created",
                    actor=caller.actor,
                    object=_key_subject(row),
                    data=data,
                )
            ]
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
        audit_append(
            events=[
                AuditEvent(
                    action="api_key.revoked",
                    actor=caller.actor,
                    object=_key_subject(key),
                    data={"prefix": key.prefix, "revoked_at": key.revoked_at},
                    reason=reason.strip(),
                )
            ]
        )
    return key


def service_account_create(
    *, caller: Caller, name: str, scopes: Sequence[str], groups: Sequence[str] = ()
) -> tuple[str, ApiKey]:
    """Create a service account (a user that cannot log in) and its first key, recorded
    together: ``service_account.created`` then ``api_key.created``."""
    _require_admin(caller)
    checked = _check_scopes(scopes)
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
            user=account, name=f"{name} key", scopes=checked, expires_at=None
        )
        audit_append(
            events=[
                AuditEvent(
                    action="service_account.created",
                    actor=caller.actor,
                    object=Subject(type="user", id=str(account.pk), label=name),
                    data={
                        "username": name,
                        "kind": account.kind,
                        "groups": sorted(g.name for g in found),
                    },
                ),
                AuditEvent(
                    action="api_key.created",
                    actor=caller.actor,
                    object=_key_subject(row),
                    data=data,
                ),
            ]
        )
    return key, row
