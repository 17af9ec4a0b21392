"""The soak benchmark's server-side steps, run in a process of their own with Django set up
(``python -m bench._soak_cast cast|counts``), so that the load generator stays on the
standard library.

``cast`` creates the people and keys of a soak run through the project's services and prints
them as one JSON line: two data scientists of one team (the models' owners), a teammate who
reviews, two validators, a risk officer, an administrator, and a CI service account of the
team with a ``registry:write`` + ``deployments:write`` key and a ``gate:read`` key; every
person has the same password, new for each run.
``counts`` prints the audit log's number of records per action as one JSON line.
"""

from __future__ import annotations

import json
import os
import secrets
import sys

TEAM = "soak-team"
PEOPLE = {
    # username: (role, on the team, printed name)
    "olive": ("data_scientist", True, "Olive Owner"),
    "oscar": ("data_scientist", True, "Oscar Owner"),
    "tessa": ("data_scientist", True, "Tessa Teammate"),
    "vince": ("validator", False, "Vince Validator"),
    "vera": ("validator", False, "Vera Validator"),
    "rosa": ("risk_officer", False, "Rosa Risk"),
}


# The soak measures memory and errors over time, not the rate limit: its keys allow far more.
SOAK_KEY_LIMIT = 1_000_000


def cast() -> dict[str, object]:
    """Create the cast; what the load generator needs to act as each of them."""
    from django.contrib.auth.models import Group

    from core.accounts.callers import Caller
    from core.accounts.models import User
    from governance.accounts.roles import sync_role_permissions
    from governance.accounts.services import api_key_create

    password = secrets.token_urlsafe(18)
    sync_role_permissions()
    team = Group.objects.create(name=TEAM)
    admin = User.objects.create_user(
        username="soak-admin", password=password, is_staff=True, is_superuser=True
    )
    admin.groups.add(Group.objects.get(name="admin"))
    for username, (role, on_team, name) in PEOPLE.items():
        first, _, last = name.partition(" ")
        person = User.objects.create_user(
            username=username, password=password, first_name=first, last_name=last
        )
        person.groups.add(Group.objects.get(name=role))
        if on_team:
            person.groups.add(team)
    ci = User.objects.create_user(username="soak-ci", kind=User.Kind.SERVICE)
    ci.set_unusable_password()
    ci.save()
    # A pipeline registers models for the team's data scientists, so it holds their role.
    ci.groups.add(team, Group.objects.get(name="data_scientist"))
    as_admin = Caller(user=admin, auth="cli")
    registry_key, _ = api_key_create(
        caller=as_admin,
        user=ci,
        name="soak pipeline",
        scopes=["registry:write", "deployments:write", "reports:write"],
        rate_limit=SOAK_KEY_LIMIT,
    )
    gate_key, _ = api_key_create(
        caller=as_admin, user=ci, name="soak gate", scopes=["gate:read"], rate_limit=SOAK_KEY_LIMIT
    )
    return {
        "password": password,
        "team": TEAM,
        "people": sorted(PEOPLE),
        "registry_key": registry_key,
        "gate_key": gate_key,
    }


def counts() -> dict[str, int]:
    """Audit records per action."""
    from django.db.models import Count

    from audit.models import AuditRecord

    rows = AuditRecord.objects.values_list("action").annotate(n=Count("seq"))
    return dict(rows)


def main(argv: list[str]) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings.test")
    import django

    django.setup()
    steps = {"cast": cast, "counts": counts}
    if len(argv) != 1 or argv[0] not in steps:
        print(f"usage: python -m bench._soak_cast {'|'.join(steps)}", file=sys.stderr)
        return 2
    print(json.dumps(steps[argv[0]]()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
