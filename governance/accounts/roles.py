"""Keeps the role groups' global permissions equal to ``ROLE_PERMISSIONS`` after migrate."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group, Permission

from governance.common.roles import ROLE_PERMISSIONS, Role


def sync_role_permissions(*args: Any, using: str = "default", **kwargs: Any) -> None:
    """Create missing role groups and set each one's permissions (idempotent)."""
    for role in Role:
        group, _ = Group.objects.using(using).get_or_create(name=role.value)
        wanted = ROLE_PERMISSIONS.get(role, [])
        perms = []
        for dotted in wanted:
            app_label, codename = dotted.split(".", 1)
            perm = (
                Permission.objects.using(using)
                .filter(content_type__app_label=app_label, codename=codename)
                .first()
            )
            if perm is not None:
                perms.append(perm)
        group.permissions.set(perms)
