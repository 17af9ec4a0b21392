"""``manage.py seed_demo``: a user for every role and a COMPAS-based model with lineage.

Development only. Every change goes through the services, acted by the demo's own people and
CI account (the administrator is created by Warden itself), so the demo's audit log reads like
a real one. Running it again resets the demo passwords and leaves the registry as it is.
"""

from __future__ import annotations

import csv
import hashlib
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.accounts.callers import Caller
from core.accounts.models import ApiKey, User
from core.roles import Role
from governance.accounts.roles import sync_role_permissions
from governance.accounts.services import (
    api_key_create,
    service_account_create,
    user_change,
    user_create,
)
from registry import services
from registry.datafiles import describe_file
from registry.models import Dataset, RegisteredModel

DATA_DIR = Path(settings.BASE_DIR) / "data"
TEAM = "recidivism-team"
MODEL = "recidivism-risk"
CI_ACCOUNT = "ci-recidivism"

PEOPLE = [
    ("dana", "Dana Scully", [Role.DATA_SCIENTIST], True),
    ("eli", "Eli Moss", [Role.ML_ENGINEER], True),
    ("vera", "Vera Valdez", [Role.VALIDATOR], False),
    ("val", "Val Okafor", [Role.VALIDATOR], False),
    ("rory", "Rory Quinn", [Role.RISK_OFFICER], False),
    ("cora", "Cora Lindqvist", [Role.COMPLIANCE_OFFICER], False),
    ("abe", "Abe Kowalski", [Role.AUDITOR], False),
    ("admin", "Ada Admin", [Role.ADMIN], False),
]


def _artifact_digest(label: str) -> str:
    return "sha256:" + hashlib.sha256(label.encode()).hexdigest()


class Command(BaseCommand):
    help = "Load the demo: users for every role (passwords printed), the recidivism-risk model."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--force", action="store_true", help="run even when DEBUG is off (never in production)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG and not options["force"]:
            raise CommandError("seed_demo is for development only (DEBUG is off)")
        sync_role_permissions()
        team, _ = Group.objects.get_or_create(name=TEAM)
        people = self._people(team)
        admin = people["admin"]
        if RegisteredModel.objects.filter(name=MODEL).exists():
            self.stdout.write(f"The demo registry is already loaded ({MODEL}).")
            return
        ci_key = self._ci_account(admin)
        self._registry(people, team)
        # A person's own token, for the report requests of the README (a service account
        # asks the gate and registers; requesting a report is a person's act).
        dana_key, _ = api_key_create(
            caller=Caller(user=people["dana"], auth="cli"),
            user=people["dana"],
            name="dana's reports token",
            scopes=["registry:read", "reports:write"],
        )
        self.stdout.write(f"\nCI service account {CI_ACCOUNT}, key (shown once): {ci_key}")
        self.stdout.write(f"dana's token for reports, 90 days (shown once): {dana_key}")
        self.stdout.write(f"Demo loaded: model {MODEL} v1 and v2 with their datasets and lineage.")

    def _people(self, team: Group) -> dict[str, User]:
        """The demo's people with their roles, made by Warden's own administrator: the
        administrator is created by Warden itself, everyone else by the administrator, and
        each grant is recorded. A rerun sets new passwords and records only what differs."""
        people: dict[str, User] = {}
        self.stdout.write("Demo users (development only; passwords are new on every run):")
        admin_caller: Caller | None = None
        passwords: dict[str, str] = {}
        for username, full_name, roles, on_team in sorted(PEOPLE, key=lambda p: p[0] != "admin"):
            first, _, last = full_name.partition(" ")
            groups = [Group.objects.get(name=role) for role in roles]
            if on_team:
                groups.append(team)
            flags: dict[str, Any] = {"is_staff": True, "is_superuser": username == "admin"}
            password = passwords[username] = secrets.token_urlsafe(9)
            user = User.objects.filter(username=username).first()
            if user is None:
                user = user_create(
                    caller=admin_caller,
                    username=username,
                    password=password,
                    first_name=first,
                    last_name=last,
                    groups=groups,
                    reason="demo user",
                    **flags,
                )
            else:
                user.set_password(password)
                user.save(update_fields=["password"])
                user = user_change(
                    caller=admin_caller if username != "admin" else None,
                    user=user,
                    groups=groups,
                    reason="demo user",
                    **flags,
                )
            if username == "admin":
                admin_caller = Caller(user=user, auth="cli")
            people[username] = user
        for username, _, roles, _ in PEOPLE:
            self.stdout.write(f"  {username:<6} {passwords[username]:<14} {', '.join(roles)}")
        return people

    def _ci_account(self, admin: User) -> str:
        if User.objects.filter(username=CI_ACCOUNT).exists():
            return "(already created; make a new key with create_service_account)"
        key, _ = service_account_create(
            caller=Caller(user=admin, auth="cli"),
            name=CI_ACCOUNT,
            scopes=["registry:write", "gate:read", "deployments:write"],
            groups=[TEAM],
        )
        return key

    def _split_compas(self) -> tuple[Path, Path]:
        """Deterministic training/validation split of the COMPAS file (id mod 3)."""
        target = Path(settings.MEDIA_ROOT) / "datasets"
        target.mkdir(parents=True, exist_ok=True)
        train, valid = target / "compas-train.csv", target / "compas-validation.csv"
        source = DATA_DIR / "compas-scores-two-years.csv"
        with (
            source.open(newline="", encoding="utf-8") as src,
            train.open("w", newline="", encoding="utf-8") as out_train,
            valid.open("w", newline="", encoding="utf-8") as out_valid,
        ):
            reader = csv.reader(src)
            header = next(reader)
            writers = (csv.writer(out_train), csv.writer(out_valid))
            for writer in writers:
                writer.writerow(header)
            id_index = header.index("id")
            for row in reader:
                writers[1 if int(row[id_index]) % 3 == 0 else 0].writerow(row)
        return train, valid

    def _dataset(self, caller: Caller, name: str, path: Path, **fields: Any) -> Dataset:
        dataset = services.dataset_create(caller=caller, name=name, **fields)
        description = describe_file(path)
        services.dataset_version_register(
            caller=caller,
            dataset=dataset,
            content_digest=description.content_digest,
            row_count=description.row_count,
            schema=description.schema,
            source_uri=f"file://{path}",
        )
        return dataset

    def _registry(self, people: dict[str, User], team: Group) -> None:
        dana = Caller(user=people["dana"])
        train, valid = self._split_compas()
        basis = "Public research data released by ProPublica; retained for model validation."
        self._dataset(
            dana,
            "compas-train",
            train,
            pii=True,
            legal_basis=basis,
            description="COMPAS two-year recidivism, training split (id mod 3 != 0).",
        )
        self._dataset(
            dana,
            "compas-validation",
            valid,
            pii=True,
            legal_basis=basis,
            description="COMPAS two-year recidivism, validation split (id mod 3 == 0).",
        )
        self._dataset(
            Caller(user=people["eli"]),
            "bike-sharing-hourly",
            DATA_DIR / "bike-sharing-hour.csv",
            description="UCI bike sharing, hourly counts 2011-2012 (drift demonstrations).",
            legal_basis="Public data (UCI ML Repository, CC BY 4.0).",
        )
        model = services.model_create(
            caller=dana,
            name=MODEL,
            risk_tier="high",
            team=team,
            description="Predicts two-year recidivism risk from the COMPAS screening record.",
            intended_use="Decision support for pre-trial risk review; never the sole basis.",
            limitations="Trained on Broward County 2013-2014 data; known disparities by race.",
            sensitive_attributes=["race", "sex", "age_cat"],
        )
        lineage = [
            services.DatasetRef("compas-train", 1, "training"),
            services.DatasetRef("compas-validation", 1, "validation"),
        ]
        services.model_version_register(
            caller=dana,
            model=model,
            artifact_uri=f"s3://warden-demo-models/{MODEL}/1/model.joblib",
            artifact_digest=_artifact_digest(f"{MODEL} v1"),
            framework="scikit-learn 1.5",
            parameters={"C": 1.0, "penalty": "l2", "max_iter": 200},
            metrics={"auc": 0.712, "accuracy": 0.664},
            source_commit="3f1c2a9",
            training_run_id="run-2026-09-01-01",
            environment_digest=_artifact_digest("requirements.lock v1"),
            random_seed=42,
            datasets=lineage,
        )
        ci = ApiKey.objects.filter(user__username=CI_ACCOUNT).first()
        services.model_version_register(
            caller=Caller(user=ci.user, api_key=ci, auth="api_key") if ci else dana,
            model=model,
            artifact_uri=f"s3://warden-demo-models/{MODEL}/2/model.joblib",
            artifact_digest=_artifact_digest(f"{MODEL} v2"),
            framework="scikit-learn 1.5",
            parameters={"C": 0.5, "penalty": "l2", "max_iter": 300},
            metrics={"auc": 0.724, "accuracy": 0.671},
            source_commit="8be04d1",
            training_run_id="run-2026-10-14-03",
            environment_digest=_artifact_digest("requirements.lock v2"),
            random_seed=42,
            parent_version=1,
            datasets=lineage,
            author=people["dana"] if ci else None,
        )
