"""Builders that go through the services, so every row they make is audited like a real one
(plain functions, not factory_boy: its factories write rows past the services and their audit
records)."""

from __future__ import annotations

import hashlib
import itertools
from typing import Any

from core.accounts.callers import Caller
from core.accounts.models import User
from registry import services
from registry.models import Dataset, DatasetVersion, ModelVersion, RegisteredModel

_counter = itertools.count(1)


def digest(label: str | None = None) -> str:
    """A well-formed artifact or content digest."""
    text = label if label is not None else f"artifact-{next(_counter)}"
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def registered_model(owner: User, **fields: Any) -> RegisteredModel:
    fields.setdefault("name", f"model-{next(_counter)}")
    fields.setdefault("risk_tier", "medium")
    return services.model_create(caller=Caller(user=owner), **fields)


def dataset(owner: User, **fields: Any) -> Dataset:
    fields.setdefault("name", f"dataset-{next(_counter)}")
    return services.dataset_create(caller=Caller(user=owner), **fields)


def dataset_version(owner: User, of: Dataset, **fields: Any) -> DatasetVersion:
    fields.setdefault("content_digest", digest())
    fields.setdefault("row_count", 1000)
    fields.setdefault("schema", {"age": "integer", "race": "string", "label": "integer"})
    return services.dataset_version_register(caller=Caller(user=owner), dataset=of, **fields)


def model_version(author: User, of: RegisteredModel, **fields: Any) -> ModelVersion:
    fields.setdefault("artifact_uri", "s3://models/x/model.pkl")
    fields.setdefault("artifact_digest", digest())
    return services.model_version_register(caller=Caller(user=author), model=of, **fields)
