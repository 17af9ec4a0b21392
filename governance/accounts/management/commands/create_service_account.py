"""``manage.py create_service_account NAME --scopes a,b [--group G] [--rate-limit N]``: prints
the key once."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.accounts.callers import Caller
from core.accounts.models import User
from core.errors import DomainError
from governance.accounts.services import service_account_create


class Command(BaseCommand):
    help = "Create a service account and print its API key (alone on stdout, shown only once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--scopes", required=True, help="comma-separated, e.g. gate:read")
        parser.add_argument(
            "--group", action="append", default=[], help="team or role group (repeatable)"
        )
        parser.add_argument(
            "--rate-limit",
            type=int,
            default=None,
            help="requests a minute for the key (default: API_KEY_RATE_LIMIT_PER_MINUTE)",
        )
        parser.add_argument(
            "--as",
            dest="operator",
            default=None,
            help="administrator acting (default: the first superuser)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        operator = self._operator(options["operator"])
        scopes = [s.strip() for s in options["scopes"].split(",") if s.strip()]
        try:
            key, _ = service_account_create(
                caller=Caller(user=operator, auth="cli"),
                name=options["name"],
                scopes=scopes,
                groups=options["group"],
                rate_limit=options["rate_limit"],
            )
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(key)

    def _operator(self, username: str | None) -> User:
        users = User.objects.filter(is_active=True)
        user = (
            users.filter(username=username).first()
            if username
            else users.filter(is_superuser=True).order_by("pk").first()
        )
        if user is None:
            raise CommandError(
                f"no active user {username!r}"
                if username
                else "create a superuser first, or pass --as"
            )
        return user
