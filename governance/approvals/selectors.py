"""Reads of environments, policies, requests and deployments, scoped to what the user may see.

A request or deployment is visible exactly when its model is (``registry.selectors``); out of
scope is 404.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import QuerySet

from governance.accounts.models import User
from governance.approvals.models import (
    Deployment,
    DeploymentEvent,
    DeploymentRequest,
    Environment,
    SignOffPolicy,
)
from governance.approvals.workflow import live_versions
from governance.common.errors import NotFound
from registry import selectors as registry_selectors
from registry.models import ModelVersion


def environment_list(*, user: User) -> QuerySet[Environment]:
    """Every environment, in promotion order (anyone who may use the API sees them)."""
    return Environment.objects.order_by("position")


def environment_get(*, user: User, name: str) -> Environment:
    found = environment_list(user=user).filter(name=name).first()
    if found is None:
        raise NotFound(f"environment {name!r} not found")
    return found


def previous_environment(environment: Environment) -> Environment | None:
    """The environment a version must be deployed to before ``environment``."""
    return (
        Environment.objects.filter(position__lt=environment.position).order_by("-position").first()
    )


def policy_list(*, user: User) -> QuerySet[SignOffPolicy]:
    """Every published version of every policy (holders of ``view_signoffpolicy``)."""
    if not user.has_perm("approvals.view_signoffpolicy"):
        return SignOffPolicy.objects.none()
    return SignOffPolicy.objects.select_related("environment", "published_by").order_by(
        "environment__position", "risk_tier", "-version"
    )


def policy_current(*, environment: Environment, risk_tier: str) -> SignOffPolicy:
    """The newest published policy of an environment and risk tier (new requests use it)."""
    found = (
        SignOffPolicy.objects.filter(environment=environment, risk_tier=risk_tier)
        .order_by("-version")
        .first()
    )
    if found is None:
        raise NotFound(f"no sign-off policy for {environment.name}/{risk_tier}")
    return found


def deployment_request_list(
    *,
    user: User,
    model: str | None = None,
    environment: str | None = None,
    state: str | None = None,
) -> QuerySet[DeploymentRequest]:
    """Requests for the models the user may see, newest first."""
    queryset = DeploymentRequest.objects.filter(
        model_version__model__in=registry_selectors.model_list(user=user)
    ).select_related(
        "model_version__model",
        "model_version__author",
        "environment",
        "policy__environment",
        "requester",
        "closed_by",
    )
    if model:
        queryset = queryset.filter(model_version__model__name=model)
    if environment:
        queryset = queryset.filter(environment__name=environment)
    if state:
        queryset = queryset.filter(state=state)
    return queryset.prefetch_related("signoffs__signer").order_by("-created_at", "-id")


def deployment_request_get(*, user: User, request_id: int) -> DeploymentRequest:
    found = deployment_request_list(user=user).filter(pk=request_id).first()
    if found is None:
        raise NotFound(f"deployment request {request_id} not found")
    return found


def deployed_in(*, version: ModelVersion, environment: Environment) -> bool:
    """Deployed to ``environment`` and not rolled back since (retiring it later still counts:
    it was deployed there)."""
    last = (
        Deployment.objects.filter(
            model_version=version,
            environment=environment,
            event__in=[DeploymentEvent.DEPLOYED, DeploymentEvent.ROLLED_BACK],
        )
        .order_by("-occurred_at", "-id")
        .first()
    )
    return last is not None and last.event == DeploymentEvent.DEPLOYED


def live_in(
    *, environment: Environment, at: dt.datetime, model_ids: Any = None
) -> dict[int, ModelVersion]:
    """Model id -> the version live in ``environment`` at the instant ``at``."""
    events = Deployment.objects.filter(environment=environment, occurred_at__lte=at)
    if model_ids is not None:
        events = events.filter(model_version__model_id__in=model_ids)
    rows = list(
        events.order_by("occurred_at", "id").values_list(
            "model_version__model_id", "model_version_id", "event"
        )
    )
    live = live_versions(rows)
    versions = ModelVersion.objects.select_related("model").in_bulk(list(live.values()))
    return {model_id: versions[version_id] for model_id, version_id in live.items()}


def live_list(*, user: User, environment_name: str, at: dt.datetime) -> list[dict[str, Any]]:
    """Which version of each model the user may see was live in the environment at ``at``."""
    environment = environment_get(user=user, name=environment_name)
    visible = registry_selectors.model_list(user=user).values("pk")
    live = live_in(environment=environment, at=at, model_ids=visible)
    return [
        {
            "model": version.model.name,
            "version": version.version,
            "artifact_digest": version.artifact_digest,
        }
        for version in sorted(live.values(), key=lambda v: v.model.name)
    ]


def deployment_history(
    *, user: User, model_name: str, environment_name: str | None = None
) -> QuerySet[Deployment]:
    """The deployment events of a visible model, oldest first, optionally in one environment."""
    model = registry_selectors.model_get(user=user, name=model_name)
    queryset = Deployment.objects.filter(model_version__model=model).select_related(
        "model_version__model", "environment", "reported_by", "gate_check"
    )
    if environment_name:
        environment = environment_get(user=user, name=environment_name)
        queryset = queryset.filter(environment=environment)
    return queryset.order_by("environment__position", "occurred_at", "id")
