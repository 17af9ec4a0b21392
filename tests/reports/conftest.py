"""Fixtures of the report tests: a high-risk model of alice's team with its validation data
registered (the COMPAS file) and the bike-sharing months, upload and PDF directories per
test, and a client whose after-commit callbacks (the eager task) run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from core.accounts.models import User
from registry.datafiles import file_digest
from registry.models import ModelVersion, RegisteredModel
from registry.services import DatasetRef
from tests import factories
from tests.approvals.conftest import ci, people, seeded_defaults, vera  # noqa: F401 - fixtures
from tests.conftest import client_for

ROOT = Path(__file__).resolve().parents[2]
COMPAS = ROOT / "data" / "compas-scores-two-years.csv"
BIKE = ROOT / "data" / "bike-sharing-hour.csv"
BIKE_COLUMNS = ["hr", "weekday", "workingday", "weathersit", "temp", "atemp", "hum",
                "windspeed", "casual", "registered", "cnt"]  # fmt: skip
BIKE_TYPES = ",".join(
    f"{c}:{'categorical' if c in ('weekday', 'workingday', 'weathersit') else 'numerical'}"
    for c in BIKE_COLUMNS
)


@pytest.fixture(autouse=True)
def report_dirs(settings: Any, tmp_path: Path, bike_months: tuple[Path, Path]) -> dict[str, Path]:
    uploads, pdfs = tmp_path / "inputs", tmp_path / "pdfs"
    settings.REPORTS_UPLOAD_DIR = str(uploads)
    settings.REPORTS_DIR = str(pdfs)
    settings.REPORTS_DATASET_ROOTS = [str(ROOT / "data"), str(bike_months[0].parent)]
    return {"uploads": uploads, "pdfs": pdfs}


def stored_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file()) if directory.exists() else []


@pytest.fixture(scope="session")
def bike_months(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    bike = pd.read_csv(BIKE)
    folder = tmp_path_factory.mktemp("bike")
    january, july = folder / "january.csv", folder / "july.csv"
    bike[(bike.yr == 0) & (bike.mnth == 1)].to_csv(january, index=False)
    bike[(bike.yr == 0) & (bike.mnth == 7)].to_csv(july, index=False)
    return january, july


@pytest.fixture
def model(alice: User, team: Any) -> RegisteredModel:
    return factories.registered_model(
        alice, name="recidivism", risk_tier="high", team=team, sensitive_attributes=["race"]
    )


@pytest.fixture
def version(alice: User, model: RegisteredModel, bike_months: tuple[Path, Path]) -> ModelVersion:
    """Version 1, validated on the COMPAS file and with January as its reference data."""
    compas = factories.dataset(alice, name="compas")
    factories.dataset_version(
        alice, compas, content_digest=file_digest(COMPAS), row_count=7214,
        source_uri=str(COMPAS), schema={"race": "string"},
    )  # fmt: skip
    bike = factories.dataset(alice, name="bike-january")
    factories.dataset_version(
        alice, bike, content_digest=file_digest(bike_months[0]), row_count=688,
        source_uri=f"file://{bike_months[0]}", schema={"cnt": "integer"},
    )  # fmt: skip
    return factories.model_version(
        alice,
        model,
        datasets=[
            DatasetRef("compas", 1, "validation"),
            DatasetRef("bike-january", 1, "reference"),
        ],
    )


def upload(path: Path, name: str | None = None) -> SimpleUploadedFile:
    return SimpleUploadedFile(name or path.name, path.read_bytes(), content_type="text/csv")


COMPAS_FIELDS = {
    "kind": "fairness",
    "model": "recidivism",
    "version": 1,
    "label": "two_year_recid",
    "prediction": "score_text",
    "prediction_positive": "Medium,High",
    "favorable_label": "Low",
    "sensitive": "race",
}


@pytest.fixture
def post(django_capture_on_commit_callbacks: Any) -> Callable[..., Any]:
    """POST a report request as ``user`` (multipart), running the queued task eagerly."""

    def send(user: User | APIClient, **fields: Any) -> Any:
        client = user if isinstance(user, APIClient) else client_for(user)
        with django_capture_on_commit_callbacks(execute=True):
            return client.post("/api/v1/reports/", fields, format="multipart")

    return send
