"""The demo's story, told through the services: every step checks whether it is already
told and tells it only if not, so a second run changes nothing.

Two models. ``recidivism-risk`` (COMPAS, high risk) honestly fails fairness: its fairness
report fails, a validator's high finding is open, and it reached prod only by break-glass,
with its retrospective review signed. ``bike-demand`` (bike sharing, medium risk) has
version 1 in prod through the full sign-off (dev, test, prod); under prod policy version 2
for its tier (a passing drift report under 30 days old), version 2's prod request carries the
validator's signature and waits for the risk officer's, with its passing drift report as
evidence.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.utils import timezone

from core.accounts.callers import Caller
from core.accounts.models import ApiKey, User
from core.roles import Role
from governance.accounts.services import (
    api_key_create,
    service_account_create,
    user_change,
    user_create,
)
from governance.approvals import selectors as approval_selectors
from governance.approvals.models import (
    Deployment,
    DeploymentRequest,
    Environment,
    Finding,
    SignOff,
    SignOffPolicy,
)
from governance.approvals.services.deployments import deployment_report
from governance.approvals.services.emergency import deployment_emergency, signoff_retrospective
from governance.approvals.services.findings import finding_open
from governance.approvals.services.gate import gate_check
from governance.approvals.services.policies import signoff_policy_publish
from governance.approvals.services.requests import deployment_request_submit
from governance.approvals.services.signoffs import signoff_sign
from governance.approvals.workflow import RequestState
from registry import services as registry
from registry.datafiles import describe_file
from registry.models import Dataset, DatasetVersion, ModelVersion, RegisteredModel

DEFAULT_PASSWORD = "warden-demo"  # noqa: S105 - the demo's, printed, development only
PASSWORD_ENV = "WARDEN_DEMO_PASSWORD"  # noqa: S105 - a variable's name

RECIDIVISM = "recidivism-risk"
RECIDIVISM_TEAM = "recidivism-team"
BIKE = "bike-demand"
BIKE_TEAM = "mobility-team"
CI_ACCOUNTS = {
    RECIDIVISM_TEAM: "ci-recidivism",
    BIKE_TEAM: "ci-mobility",
}
CI_SCOPES = ["registry:write", "gate:read", "deployments:write"]
DANA_KEY_LABEL = "dana's reports token"
FINDING_TITLE = "Impact ratio below four-fifths by race"
POLICY_NOTE = "Medium-risk models need a passing drift report under 30 days old for prod."

# username, printed name, roles, teams
PEOPLE: list[tuple[str, str, list[str], list[str]]] = [
    ("admin", "Ada Admin", [Role.ADMIN], []),
    ("dana", "Dana Scully", [Role.DATA_SCIENTIST], [RECIDIVISM_TEAM]),
    ("eli", "Eli Moss", [Role.ML_ENGINEER], [RECIDIVISM_TEAM, BIKE_TEAM]),
    ("vera", "Vera Valdez", [Role.VALIDATOR], []),
    ("val", "Val Okafor", [Role.VALIDATOR], []),
    ("rory", "Rory Quinn", [Role.RISK_OFFICER], []),
    ("cora", "Cora Lindqvist", [Role.COMPLIANCE_OFFICER], []),
    ("abe", "Abe Kowalski", [Role.AUDITOR], []),
]

COMPAS_FAIRNESS: dict[str, Any] = {
    "label": "two_year_recid",
    "prediction": "score_text",
    "sensitive": ["race", "sex", "age_cat"],
    "positive_label": None,
    "prediction_positive": ["Medium", "High"],
    "favorable_label": "Low",
    "privileged": {},
}
BIKE_COLUMNS = ["hr", "weekday", "workingday", "weathersit", "temp", "atemp", "hum",
                "windspeed", "casual", "registered", "cnt"]  # fmt: skip
BIKE_DRIFT: dict[str, Any] = {
    "column_types": {
        c: "categorical" if c in ("weekday", "workingday", "weathersit") else "numerical"
        for c in BIKE_COLUMNS
    },
    "columns": BIKE_COLUMNS,
    "exclude": [],
}
# The bike-sharing file's months: (dataset name, years (0: 2011, 1: 2012), months, description)
BIKE_SPLITS = [
    ("bike-hourly-2011", 0, range(1, 13), "Hourly rentals of 2011 (training)."),
    ("bike-hourly-2012-h1", 1, range(1, 7), "Hourly rentals, January to June 2012."),
    ("bike-hourly-2012-07", 1, (7,), "Hourly rentals, July 2012 (drift reference)."),
    ("bike-hourly-2012-08", 1, (8,), "Hourly rentals, August 2012 (production sample)."),
]


def source_dir() -> Path:
    """Where the demo's source files are: the project's ``data/`` directory."""
    return Path(settings.BASE_DIR) / "data"


def derived_dir() -> Path:
    """Where the demo writes the splits it registers: ``MEDIA_ROOT/demo-datasets``."""
    return Path(settings.MEDIA_ROOT) / "demo-datasets"


def reports_can_read() -> bool:
    """Whether reports may read the demo's datasets (``REPORTS_DATASET_ROOTS`` covers the
    directory of its splits, as the dev settings do)."""
    target = derived_dir().resolve()
    return any(
        target.is_relative_to(Path(root).resolve()) for root in settings.REPORTS_DATASET_ROOTS
    )


def digest(label: str) -> str:
    return "sha256:" + hashlib.sha256(label.encode()).hexdigest()


@dataclass
class Outcome:
    """What a run did: the lines to print and whether anything changed."""

    changes: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class Demo:
    """One run of the story; ``run`` tells what is missing and returns what it did."""

    def __init__(self, *, password: str, new_ci_key: bool = False) -> None:
        self.password = password
        self.new_ci_key = new_ci_key
        self.out = Outcome()
        self.people: dict[str, User] = {}

    def caller(self, username: str) -> Caller:
        return Caller(user=self.people[username], auth="cli")

    def changed(self, line: str) -> None:
        self.out.changes.append(line)

    def run(self) -> Outcome:
        self._people()
        self._ci_accounts()
        self._personal_token()
        self._recidivism_registry()
        self._bike_registry()
        self._recidivism_story()
        self._bike_v1_to_prod()
        self._policy_v2()
        self._bike_v2_waiting()
        self._log_evidence()
        return self.out

    def _log_evidence(self) -> None:
        """What the scheduler would have done by now: the whole log verified (recorded as
        the scheduled run records it) and a signed checkpoint over every record, so that the
        pages show a verified log and each record's inclusion. Only after a run that wrote."""
        from audit.checkpoints import checkpoint_create
        from audit.verification import VerificationTrigger, verify_log_full

        if not self.out.changes:
            return
        report, _ = verify_log_full(trigger=VerificationTrigger.SCHEDULE)
        if not report.ok:
            raise RuntimeError(f"the demo's audit log does not verify: {report.first_error}")
        signed = checkpoint_create().checkpoint
        if signed is not None:
            self.changed(f"log verified ({report.records} records) and checkpoint {signed.size}")

    # People and accounts

    def _people(self) -> None:
        """The administrator is created by Warden itself, everyone else by the administrator;
        an unchanged person (groups, flags, password) is left alone and nothing is recorded."""
        admin_caller: Caller | None = None
        for username, full_name, roles, teams in PEOPLE:
            first, _, last = full_name.partition(" ")
            groups = [Group.objects.get(name=role) for role in roles]
            for team in teams:
                groups.append(Group.objects.get_or_create(name=team)[0])
            flags: dict[str, Any] = {"is_staff": True, "is_superuser": username == "admin"}
            user = User.objects.filter(username=username).first()
            if user is None:
                user = user_create(
                    caller=admin_caller,
                    username=username,
                    password=self.password,
                    first_name=first,
                    last_name=last,
                    groups=groups,
                    reason="demo user",
                    **flags,
                )
                self.changed(f"user {username} created")
            else:
                if not user.check_password(self.password):
                    user.set_password(self.password)
                    user.save(update_fields=["password"])
                    self.changed(f"user {username}: password set")
                before = set(user.groups.values_list("name", flat=True))
                user = user_change(
                    caller=admin_caller if username != "admin" else None,
                    user=user,
                    groups=groups,
                    reason="demo user",
                    **flags,
                )
                if before != {group.name for group in groups}:
                    self.changed(f"user {username}: groups set")
            if username == "admin":
                admin_caller = Caller(user=user, auth="cli")
            self.people[username] = user

    def _ci_accounts(self) -> None:
        admin = Caller(user=self.people["admin"], auth="cli")
        for team, name in CI_ACCOUNTS.items():
            account = User.objects.filter(username=name).first()
            if account is None:
                key, _ = service_account_create(
                    caller=admin, name=name, scopes=CI_SCOPES, groups=[team]
                )
                self.changed(f"service account {name} created")
                self.out.keys.append(f"CI service account {name}, key (shown once): {key}")
            elif self.new_ci_key:
                key, _ = api_key_create(
                    caller=admin, user=account, name=f"{name} key", scopes=CI_SCOPES
                )
                self.changed(f"a new key for {name}")
                self.out.keys.append(f"CI service account {name}, new key (shown once): {key}")
            else:
                self.out.notes.append(
                    f"CI service account {name} exists; its key was shown when it was made. "
                    "A new key: manage.py seed_demo --new-ci-key (older keys stay valid "
                    "until revoked in the admin)."
                )

    def _personal_token(self) -> None:
        """dana's own token for the README's report requests (a service account asks the gate
        and registers; requesting a report is a person's act), made once."""
        dana = self.people["dana"]
        if ApiKey.objects.filter(user=dana, name=DANA_KEY_LABEL).exists():
            return
        key, _ = api_key_create(
            caller=self.caller("dana"),
            user=dana,
            name=DANA_KEY_LABEL,
            scopes=["registry:read", "reports:write"],
        )
        self.changed(f"dana's token {DANA_KEY_LABEL!r}")
        self.out.keys.append(f"dana's token for reports, 90 days (shown once): {key}")

    def ci(self, team: str) -> Caller:
        key = (
            ApiKey.objects.filter(user__username=CI_ACCOUNTS[team], revoked_at__isnull=True)
            .select_related("user")
            .order_by("pk")
            .first()
        )
        if key is None:
            raise RuntimeError(f"the demo's CI account {CI_ACCOUNTS[team]} has no usable key")
        return Caller(user=key.user, api_key=key, auth="api_key")

    # Registry

    def _dataset(self, caller: Caller, name: str, path: Path, **fields: Any) -> None:
        dataset = Dataset.objects.filter(name=name).first()
        if dataset is None:
            dataset = registry.dataset_create(caller=caller, name=name, **fields)
            self.changed(f"dataset {name}")
        if dataset.versions.exists():
            return
        description = describe_file(path)
        registry.dataset_version_register(
            caller=caller,
            dataset=dataset,
            content_digest=description.content_digest,
            row_count=description.row_count,
            schema=description.schema,
            source_uri=f"file://{path}",
        )

    def _version(self, model: RegisteredModel, number: int, **fields: Any) -> ModelVersion:
        found = model.versions.filter(version=number).first()
        if found is not None:
            return found
        self.changed(f"{model.name} v{number} registered")
        return registry.model_version_register(model=model, **fields)

    def _recidivism_registry(self) -> None:
        dana = self.caller("dana")
        train, valid = split_compas()
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
        model = RegisteredModel.objects.filter(name=RECIDIVISM).first()
        if model is None:
            model = registry.model_create(
                caller=dana,
                name=RECIDIVISM,
                risk_tier="high",
                team=Group.objects.get(name=RECIDIVISM_TEAM),
                description="Predicts two-year recidivism risk from the COMPAS screening record.",
                intended_use="Decision support for pre-trial risk review; never the sole basis.",
                limitations="Trained on Broward County 2013-2014 data; known disparities by race.",
                sensitive_attributes=["race", "sex", "age_cat"],
            )
            self.changed(f"model {RECIDIVISM}")
        lineage = [
            registry.DatasetRef("compas-train", 1, "training"),
            registry.DatasetRef("compas-validation", 1, "validation"),
        ]
        self._version(
            model,
            1,
            caller=dana,
            artifact_uri=f"s3://warden-demo-models/{RECIDIVISM}/1/model.joblib",
            artifact_digest=digest(f"{RECIDIVISM} v1"),
            framework="scikit-learn 1.5",
            parameters={"C": 1.0, "penalty": "l2", "max_iter": 200},
            metrics={"auc": 0.712, "accuracy": 0.664},
            source_commit="3f1c2a9",
            training_run_id="run-2026-09-01-01",
            environment_digest=digest("requirements.lock v1"),
            random_seed=42,
            datasets=lineage,
        )
        self._version(
            model,
            2,
            caller=self.ci(RECIDIVISM_TEAM),
            artifact_uri=f"s3://warden-demo-models/{RECIDIVISM}/2/model.joblib",
            artifact_digest=digest(f"{RECIDIVISM} v2"),
            framework="scikit-learn 1.5",
            parameters={"C": 0.5, "penalty": "l2", "max_iter": 300},
            metrics={"auc": 0.724, "accuracy": 0.671},
            source_commit="8be04d1",
            training_run_id="run-2026-10-14-03",
            environment_digest=digest("requirements.lock v2"),
            random_seed=42,
            parent_version=1,
            datasets=lineage,
            author=self.people["dana"],
        )

    def _bike_registry(self) -> None:
        eli = self.caller("eli")
        paths = split_bike()
        for name, _, _, description in BIKE_SPLITS:
            self._dataset(
                eli,
                name,
                paths[name],
                description=f"UCI bike sharing: {description}",
                legal_basis="Public data (UCI ML Repository, CC BY 4.0).",
            )
        model = RegisteredModel.objects.filter(name=BIKE).first()
        if model is None:
            model = registry.model_create(
                caller=eli,
                name=BIKE,
                risk_tier="medium",
                team=Group.objects.get(name=BIKE_TEAM),
                description="Forecasts hourly bike rentals (count) from the hour, calendar "
                "and weather.",
                intended_use="Planning of bike redistribution and staffing; hourly horizon.",
                limitations="Trained on Washington D.C. 2011-2012; no special events.",
            )
            self.changed(f"model {BIKE}")
        common: dict[str, Any] = {
            "caller": eli,
            "framework": "lightgbm 4.5",
            "environment_digest": digest("bike requirements.lock"),
            "random_seed": 7,
        }
        self._version(
            model,
            1,
            **common,
            artifact_uri=f"s3://warden-demo-models/{BIKE}/1/model.txt",
            artifact_digest=digest(f"{BIKE} v1"),
            parameters={"num_leaves": 31, "learning_rate": 0.05, "n_estimators": 400},
            metrics={"rmse": 61.2, "mae": 40.8},
            source_commit="a41d7e0",
            training_run_id="bike-2026-08-03-01",
            datasets=[
                registry.DatasetRef("bike-hourly-2011", 1, "training"),
                registry.DatasetRef("bike-hourly-2012-h1", 1, "validation"),
            ],
        )
        self._version(
            model,
            2,
            **common,
            artifact_uri=f"s3://warden-demo-models/{BIKE}/2/model.txt",
            artifact_digest=digest(f"{BIKE} v2"),
            parameters={"num_leaves": 63, "learning_rate": 0.05, "n_estimators": 600},
            metrics={"rmse": 54.9, "mae": 36.1},
            source_commit="c9e2f51",
            training_run_id="bike-2026-11-20-02",
            parent_version=1,
            datasets=[
                registry.DatasetRef("bike-hourly-2011", 1, "training"),
                registry.DatasetRef("bike-hourly-2012-h1", 1, "training"),
                registry.DatasetRef("bike-hourly-2012-07", 1, "reference"),
            ],
        )

    # Reports

    def _report(
        self,
        username: str,
        version: ModelVersion,
        kind: str,
        parameters: dict[str, Any],
        datasets: dict[str, str],
    ) -> None:
        """A report computed in this process (the job run at once, whatever the broker),
        unless one of this kind is already done on the version."""
        from governance.reports.jobs import report_run
        from governance.reports.models import Report, ReportStatus
        from governance.reports.services import report_request

        if Report.objects.filter(
            model_version=version, kind=kind, status=ReportStatus.DONE
        ).exists():
            return
        if not reports_can_read():
            note = (
                f"Reports skipped: the demo's datasets in {derived_dir()} are outside "
                "REPORTS_DATASET_ROOTS (the dev settings include them); run seed_demo again "
                "once they are readable."
            )
            if note not in self.out.notes:
                self.out.notes.append(note)
            return
        inputs = {
            role: DatasetVersion.objects.get(dataset__name=name, version=1)
            for role, name in datasets.items()
        }
        report = report_request(
            caller=self.caller(username),
            version=version,
            kind=kind,
            parameters=parameters,
            uploads={},
            datasets=inputs,
            overrides={},
        )
        # Run here unless the task already ran in-process when the request committed: the
        # demo's story goes on with the report done, broker or not.
        report_run(str(report.pk))
        report.refresh_from_db()
        if report.status != ReportStatus.DONE:
            raise RuntimeError(f"the demo's {kind} report on {version} is {report.status}")
        self.changed(f"{kind} report on {version.model.name} v{version.version}")

    # The stories

    def _deployed(self, version: ModelVersion, environment: str) -> bool:
        return Deployment.objects.filter(
            model_version=version, environment__name=environment, event="deployed"
        ).exists()

    def _ci_deploys(self, version: ModelVersion, environment: str, team: str) -> None:
        """CI asks the gate, then reports the deployment the answer allowed."""
        ci = self.ci(team)
        answer = gate_check(
            caller=ci,
            version=version,
            environment=Environment.objects.get(name=environment),
            digest=version.artifact_digest,
            pipeline_run=f"https://ci.example.org/{version.model.name}/{environment}",
            commit=version.source_commit,
        )
        if not answer.decision.allowed:
            raise RuntimeError(
                f"the gate refuses {version} to {environment}: {answer.decision.reasons}"
            )
        deployment_report(
            caller=ci,
            version=version,
            environment=environment,
            event="deployed",
            pipeline_run=f"https://ci.example.org/{version.model.name}/{environment}",
            commit=version.source_commit,
            check_id=answer.check.check_id,
        )
        self.changed(f"{version.model.name} v{version.version} deployed to {environment}")

    def _request(
        self, version: ModelVersion, environment: str, requester: str
    ) -> DeploymentRequest:
        found = (
            DeploymentRequest.objects.filter(model_version=version, environment__name=environment)
            .exclude(state__in=[RequestState.WITHDRAWN, RequestState.REJECTED])
            .order_by("-pk")
            .first()
        )
        if found is not None:
            return found
        self.changed(f"{version.model.name} v{version.version}: {environment} requested")
        return deployment_request_submit(
            caller=self.caller(requester),
            version=version,
            environment=environment,
            reason=f"Promote {version.model.name} v{version.version} to {environment}.",
        )

    def _sign(self, request: DeploymentRequest, username: str, comment: str) -> None:
        if SignOff.objects.filter(request=request, signer=self.people[username]).exists():
            return
        signoff_sign(
            caller=self.caller(username),
            request=request,
            decision="approve",
            password=self.password,
            comment=comment,
        )
        self.changed(f"{username} signed {request.model_version} for {request.environment}")

    def _through(
        self, version: ModelVersion, environment: str, signers: list[tuple[str, str]]
    ) -> None:
        if self._deployed(version, environment):
            return
        request = self._request(version, environment, "eli")
        for username, comment in signers:
            self._sign(request, username, comment)
        self._ci_deploys(version, environment, BIKE_TEAM)

    def _recidivism_story(self) -> None:
        model = RegisteredModel.objects.get(name=RECIDIVISM)
        v1 = model.versions.get(version=1)
        self._report(
            "vera",
            v1,
            "fairness",
            COMPAS_FAIRNESS,
            {"evaluation": "compas-validation"},
        )
        emergency = DeploymentRequest.objects.filter(
            model_version=v1, environment__name="prod", state=RequestState.EMERGENCY
        ).first()
        if emergency is None:
            emergency = deployment_emergency(
                caller=self.caller("rory"),
                version=v1,
                environment="prod",
                reason="Court scheduling system cut over today; the previous rules engine "
                "is switched off. Deployed pending fairness remediation.",
                password=self.password,
            )
            self.changed(f"{RECIDIVISM} v1: break-glass to prod")
        if not self._deployed(v1, "prod"):
            self._ci_deploys(v1, "prod", RECIDIVISM_TEAM)
        if not SignOff.objects.filter(request=emergency).exists():
            signoff_retrospective(
                caller=self.caller("cora"),
                request=emergency,
                password=self.password,
                comment="Accepted as a temporary measure: the fairness report fails by race; "
                "remediation tracked as a high finding.",
            )
            self.changed(f"{RECIDIVISM} v1: retrospective review signed")
        if not Finding.objects.filter(model_version=v1, title=FINDING_TITLE).exists():
            finding_open(
                caller=self.caller("vera"),
                version=v1,
                title=FINDING_TITLE,
                severity="high",
                owner=self.people["dana"],
                description="The fairness report on the validation split fails: impact "
                "ratios below 0.8 and equalized-odds differences above 0.1 by race.",
                due_date=timezone.localdate() + dt.timedelta(days=30),
            )
            self.changed(f"{RECIDIVISM} v1: high finding opened")

    def _bike_v1_to_prod(self) -> None:
        v1 = ModelVersion.objects.get(model__name=BIKE, version=1)
        self._through(v1, "dev", [])
        self._through(v1, "test", [("val", "Backtest on the first half of 2012 reviewed.")])
        self._through(
            v1,
            "prod",
            [
                ("vera", "Independent validation: error within tolerance on 2012 H1."),
                ("rory", "Approved for production."),
            ],
        )

    def _policy_v2(self) -> None:
        from governance.approvals.defaults import DRIFT, policy_for

        if SignOffPolicy.objects.filter(
            environment__name="prod", risk_tier="medium", version__gte=2
        ).exists():
            return
        current = approval_selectors.policy_current(
            environment=Environment.objects.get(name="prod"), risk_tier="medium"
        )
        signoff_policy_publish(
            caller=self.caller("admin"),
            environment="prod",
            risk_tier="medium",
            steps=current.steps or policy_for("prod", "medium")["steps"],
            evidence=[DRIFT],
            approval_expiry_days=current.approval_expiry_days,
            wait_seconds=current.wait_seconds,
            note=POLICY_NOTE,
        )
        self.changed("prod policy v2 for medium risk published (drift under 30 days)")

    def _bike_v2_waiting(self) -> None:
        v2 = ModelVersion.objects.get(model__name=BIKE, version=2)
        self._through(v2, "dev", [])
        self._through(v2, "test", [("val", "Retrained on 2011 and 2012 H1; backtest reviewed.")])
        self._report(
            "vera",
            v2,
            "drift",
            BIKE_DRIFT,
            {"reference": "bike-hourly-2012-07", "current": "bike-hourly-2012-08"},
        )
        if not reports_can_read():
            # The prod policy asks for the drift report: vera signs once it exists (the run
            # that can read the datasets), never by acknowledging it missing.
            return
        request = self._request(v2, "prod", "eli")
        self._sign(
            request,
            "vera",
            "Independent validation: no dataset drift from July to August 2012.",
        )


def _write_rows(source: Path, targets: dict[Path, Callable[[dict[str, str]], bool]]) -> None:
    """Write the rows of ``source`` that each target's test keeps (skipped when every target
    exists: the splits are deterministic)."""
    if all(path.is_file() for path in targets):
        return
    with source.open(newline="", encoding="utf-8") as src:
        reader = csv.DictReader(src)
        fields = list(reader.fieldnames or [])
        handles = {path: path.open("w", newline="", encoding="utf-8") for path in targets}
        try:
            writers = {path: csv.DictWriter(handle, fields) for path, handle in handles.items()}
            for writer in writers.values():
                writer.writeheader()
            for row in reader:
                for path, keep in targets.items():
                    if keep(row):
                        writers[path].writerow(row)
        finally:
            for handle in handles.values():
                handle.close()


def split_compas() -> tuple[Path, Path]:
    """Deterministic training/validation split of the COMPAS file (id mod 3)."""
    target = derived_dir()
    target.mkdir(parents=True, exist_ok=True)
    train, valid = target / "compas-train.csv", target / "compas-validation.csv"
    _write_rows(
        source_dir() / "compas-scores-two-years.csv",
        {
            train: lambda row: int(row["id"]) % 3 != 0,
            valid: lambda row: int(row["id"]) % 3 == 0,
        },
    )
    return train, valid


def split_bike() -> dict[str, Path]:
    """The bike-sharing file's months of ``BIKE_SPLITS``, one file each."""
    target = derived_dir()
    target.mkdir(parents=True, exist_ok=True)
    paths = {name: target / f"{name}.csv" for name, _, _, _ in BIKE_SPLITS}

    def keeps(year: int, months: Any) -> Callable[[dict[str, str]], bool]:
        wanted = {str(m) for m in months}
        return lambda row: row["yr"] == str(year) and row["mnth"] in wanted

    _write_rows(
        source_dir() / "bike-sharing-hour.csv",
        {paths[name]: keeps(year, months) for name, year, months, _ in BIKE_SPLITS},
    )
    return paths
