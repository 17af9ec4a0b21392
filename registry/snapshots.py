"""Audit snapshots of registry rows, in the canonical profile (user-keyed maps as pairs)."""

from __future__ import annotations

from typing import Any

from audit.canonical import pairs
from core.accounts.models import User
from registry.models import Dataset, DatasetVersion, ModelVersion, RegisteredModel


def person(user: User) -> dict[str, str]:
    """A person as records name them: id and printed name."""
    return {"id": str(user.pk), "name": user.printed_name}


def model_snapshot(model: RegisteredModel) -> dict[str, Any]:
    return {
        "name": model.name,
        "description": model.description,
        "owner": person(model.owner),
        "team": model.team.name if model.team else None,
        "risk_tier": model.risk_tier,
        "intended_use": model.intended_use,
        "limitations": model.limitations,
        "sensitive_attributes": list(model.sensitive_attributes),
        "last_validated": model.last_validated,
        "next_review": model.next_review,
        "status": model.status,
    }


def version_snapshot(version: ModelVersion) -> dict[str, Any]:
    return {
        "model": version.model.name,
        "version": version.version,
        "artifact_uri": version.artifact_uri,
        "artifact_digest": version.artifact_digest,
        "framework": version.framework,
        "parameters": pairs(version.parameters),
        "metrics": pairs(version.metrics),
        "source_commit": version.source_commit,
        "training_run_id": version.training_run_id,
        "environment_digest": version.environment_digest,
        "random_seed": version.random_seed,
        "parent": version.parent.version if version.parent else None,
        "author": person(version.author),
        "status": version.status,
        "datasets": [
            {
                "dataset": usage.dataset_version.dataset.name,
                "version": usage.dataset_version.version,
                "content_digest": usage.dataset_version.content_digest,
                "role": usage.role,
            }
            for usage in version.dataset_usages.select_related("dataset_version__dataset")
        ],
    }


def dataset_snapshot(dataset: Dataset) -> dict[str, Any]:
    return {
        "name": dataset.name,
        "description": dataset.description,
        "source_uri": dataset.source_uri,
        "owner": person(dataset.owner),
        "pii": dataset.pii,
        "legal_basis": dataset.legal_basis,
        "status": dataset.status,
    }


def dataset_version_snapshot(version: DatasetVersion) -> dict[str, Any]:
    return {
        "dataset": version.dataset.name,
        "version": version.version,
        "source_uri": version.source_uri,
        "content_digest": version.content_digest,
        "row_count": version.row_count,
        "schema": pairs(version.schema),
        "pii": version.pii,
    }


def changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """``{"before": {...}, "after": {...}}`` restricted to the fields that changed."""
    changed = [key for key in after if before.get(key) != after.get(key)]
    return {
        "before": {key: before.get(key) for key in changed},
        "after": {key: after[key] for key in changed},
    }
