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
    wanted_names = {dotted for role in Role for dotted in ROLE_PERMISSIONS.get(role, [])}
    with transaction.atomic(using=using):
        # Every permission a role names, read at once (the first of a name in the model's
        # order, as a lookup of that name would find it).
        by_name: dict[str, Permission] = {}
        for perm in (
            Permission.objects.using(using)
            .select_related("content_type")
            .filter(codename__in={dotted.split(".", 1)[1] for dotted in wanted_names})
        ):
            by_name.setdefault(f"{perm.content_type.app_label}.{perm.codename}", perm)
        groups = {g.name: g for g in Group.objects.using(using).filter(name__in=Role.values)}
        held: dict[int, dict[int, str]] = {}
        through = Group.permissions.through.objects.using(using).filter(
            group_id__in=[g.pk for g in groups.values()]
        )
        for group_id, perm_id, app_label, codename in through.values_list(
            "group_id",
            "permission_id",
            "permission__content_type__app_label",
            "permission__codename",
        ):
            held.setdefault(group_id, {})[perm_id] = f"{app_label}.{codename}"
        events = []
        for role in Role:
            group = groups.get(role.value)
            if group is None:
                group = Group.objects.using(using).create(name=role.value)
            current = held.get(group.pk, {})
            # A permission may be listed twice for a role (admin builds and reads).
            perms = {
                by_name[dotted].pk: by_name[dotted]
                for dotted in ROLE_PERMISSIONS.get(role, [])
                if dotted in by_name
            }
            if set(perms) == set(current):
                continue
            before = sorted(current.values())
            group.permissions.set(list(perms.values()))
            after = sorted(f"{p.content_type.app_label}.{p.codename}" for p in perms.values())
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
