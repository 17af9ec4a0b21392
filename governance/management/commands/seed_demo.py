"""``manage.py seed_demo``: the demo's people, two models and their story
(``governance.management.demo``).

Development only. Every change goes through the services, acted by the demo's own people and
CI accounts (the administrator is created by Warden itself), so the demo's audit log reads
like a real one. Each step is taken only when it is missing: a second run changes nothing
and says so. The people's password is ``--password``, else ``WARDEN_DEMO_PASSWORD``, else
the demo's stable default.
"""

from __future__ import annotations

import os
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.errors import DomainError
from governance.accounts.roles import sync_role_permissions
from governance.management import demo


class Command(BaseCommand):
    help = (
        "Load the demo: a user for every role, recidivism-risk and bike-demand with their "
        "reports, sign-offs and deployments. Idempotent."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--password",
            default=None,
            help=f"the demo users' password (default: ${demo.PASSWORD_ENV}, else "
            f"{demo.DEFAULT_PASSWORD!r})",
        )
        parser.add_argument(
            "--new-ci-key",
            action="store_true",
            help="make and print a new key for each demo CI account that already exists",
        )
        parser.add_argument(
            "--force", action="store_true", help="run even when DEBUG is off (never in production)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG and not options["force"]:
            raise CommandError("seed_demo is for development only (DEBUG is off)")
        password, source = self._password(options["password"])
        started = time.monotonic()
        sync_role_permissions()
        try:
            outcome = demo.Demo(password=password, new_ci_key=options["new_ci_key"]).run()
        except DomainError as exc:
            raise CommandError(f"the demo could not be loaded: {exc.message}") from exc
        except RuntimeError as exc:
            raise CommandError(f"the demo could not be loaded: {exc}") from exc
        elapsed = time.monotonic() - started
        if options["verbosity"] == 0:
            return
        out = self.stdout
        out.write(f"Demo users (development only), password {source}:")
        for username, _, roles, teams in demo.PEOPLE:
            out.write(f"  {username:<6} {', '.join([*roles, *teams])}")
        for line in outcome.keys:
            out.write(line)
        for line in outcome.notes:
            out.write(line)
        if outcome.changes:
            noun = "step" if len(outcome.changes) == 1 else "steps"
            out.write(f"Demo loaded in {elapsed:.1f} s ({len(outcome.changes)} {noun}):")
            for line in outcome.changes:
                out.write(f"  {line}")
        else:
            out.write("The demo is already loaded: nothing changed.")

    def _password(self, given: str | None) -> tuple[str, str]:
        """The password and how it is shown: the default is printed, a chosen one is not."""
        if given is not None:
            if not given:
                raise CommandError("--password must not be empty")
            return given, "from --password"
        from_env = os.environ.get(demo.PASSWORD_ENV)
        if from_env:
            return from_env, f"from ${demo.PASSWORD_ENV}"
        return demo.DEFAULT_PASSWORD, (
            f"{demo.DEFAULT_PASSWORD!r} (the demo's default; set ${demo.PASSWORD_ENV} "
            "or --password for another)"
        )
