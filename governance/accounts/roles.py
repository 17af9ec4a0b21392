"""Keeps the role groups' global permissions equal to ``ROLE_PERMISSIONS`` after migrate."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig, apps
from django.contrib.auth.models import Group, Permission
from django.db import transaction

from audit import selectors as audit_selectors
from audit.actions import AuditAction
from audit.services import AuditEvent, Subject, audit_append
from core.actors import SYSTEM_ACTOR
from core.roles import ROLE_PERMISSIONS, Role


def _dotted(group: Group) -> list[str]:
    return sorted(
        f"{p.content_type.app_label}.{p.codename}"
        for p in group.permissions.select_related("content_type")
    )


def _last_app_with_models() -> AppConfig | None:
    configs = [config for config in apps.get_app_configs() if config.models_module is not None]
    return configs[-1] if configs else None


def sync_role_permissions(*args: Any, using: str = "default", **kwargs: Any) -> None:
    """Create missing role groups and set each one's permissions (idempotent).

    What a role may do is who holds power: on an installation whose log has begun, a group
    whose permissions this changes (an upgrade, a restored database) gets a
    ``role.permissions_synced`` record (acted by Warden) in the same transaction. A new
    installation's first ``migrate`` grants what the code says and its log starts empty.
    After ``migrate`` it runs once, when the last app's permissions exist.
    """
    sender = kwargs.get("sender")
    if sender is not None and sender is not _last_app_with_models():
        return
    record = audit_selectors.any_record_exists(using=using)
    with transaction.atomic(using=using):
        events = []
        for role in Role:
            group, _ = Group.objects.using(using).get_or_create(name=role.value)
            before = _dotted(group)
            wanted = ROLE_PERMISSIONS.get(role, [])
            perms: dict[int, Permission] = {}
            # A permission may be listed twice for a role (admin builds and reads);
            # set() would insert the repeat again.
            for dotted in wanted:
                app_label, codename = dotted.split(".", 1)
                perm = (
                    Permission.objects.using(using)
                    .filter(content_type__app_label=app_label, codename=codename)
                    .first()
                )
                if perm is not None:
                    perms[perm.pk] = perm
            group.permissions.set(list(perms.values()))
            after = _dotted(group)
            if record and after != before:
                events.append(
                    AuditEvent(
                        action=AuditAction.ROLE_PERMISSIONS_SYNCED,
                        actor=SYSTEM_ACTOR,
                        object=Subject(type="group", id=str(group.pk), label=group.name),
                        data={"before": {"permissions": before}, "after": {"permissions": after}},
                    )
                )
        audit_append(events=events, using=using)
