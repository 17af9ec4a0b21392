"""Reads of the registry, scoped to what the user may see (out of scope is 404)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db.models import CharField, Exists, OuterRef, Q, QuerySet
from django.db.models.functions import Cast
from guardian.models import GroupObjectPermission, UserObjectPermission
from guardian.shortcuts import get_group_perms, get_user_perms

from core.accounts.models import User
from core.errors import NotFound
from core.roles import SIGNING_ROLES, signing_codename
from registry.models import Dataset, DatasetVersion, ModelVersion, RegisteredModel

VIEW_CODENAME = "view_registeredmodel"
SIGNING_CODENAMES = {signing_codename(role): role for role in SIGNING_ROLES}


def visible_models(user: User, *, pk: str = "pk") -> Q:
    """A filter for the models ``user`` may see, with ``pk`` naming the model's key in the
    filtered queryset (``"model_id"`` for versions): every model for a superuser and for
    holders of the global view permission through themselves or a group (validators,
    officers, auditors); otherwise those granted to them or their team, and those they (or
    their team) may sign for through a per-model signing grant. Nothing for an inactive
    account. Four ``EXISTS`` in the one query that fetches the rows, rather than the four
    permission queries of ``has_perm`` and guardian's checker."""
    if not user.is_active:
        return Q(pk__in=[])
    if user.is_superuser:
        return Q()
    content_type = ContentType.objects.get_for_model(RegisteredModel)
    view = Permission.objects.filter(content_type=content_type, codename=VIEW_CODENAME)
    granted = {
        "content_type": content_type,
        "permission__codename__in": [VIEW_CODENAME, *SIGNING_CODENAMES],
        "object_pk": Cast(OuterRef(pk), CharField()),
    }
    return (
        Q(Exists(view.filter(user=user)))
        | Q(Exists(view.filter(group__user=user)))
        | Q(Exists(UserObjectPermission.objects.filter(user=user, **granted)))
        | Q(Exists(GroupObjectPermission.objects.filter(group__user=user, **granted)))
    )


def model_list(*, user: User) -> QuerySet[RegisteredModel]:
    """Models the user may see (:func:`visible_models`), by name."""
    return (
        RegisteredModel.objects.select_related("owner", "team")
        .filter(visible_models(user))
        .order_by("name")
    )


def model_get(*, user: User, name: str) -> RegisteredModel:
    """One visible model by name, else ``NotFound`` (out of scope looks the same)."""
    model = model_list(user=user).filter(name=name).first()
    if model is None:
        raise NotFound(f"model {name!r} not found")
    return model


def signing_roles_granted(user: User, model: RegisteredModel) -> frozenset[str]:
    """The roles ``user`` may sign ``model``'s requests in through a per-model grant to them
    or to one of their groups (guardian). Superuser status confers none: guardian's own
    checker would answer yes to a superuser, so the grants are read, not asked."""
    if not user.is_active or user.pk is None:
        return frozenset()
    codenames = set(get_user_perms(user, model).values_list("codename", flat=True))
    codenames |= set(get_group_perms(user, model).values_list("codename", flat=True))
    return frozenset(SIGNING_CODENAMES[name] for name in codenames if name in SIGNING_CODENAMES)


@dataclass(frozen=True)
class SigningGrant:
    """A per-model signing grant: ``user`` or ``group`` may sign ``model``'s requests in
    ``role`` (a guardian object permission ``registry.sign_as_<role>``)."""

    role: str
    user: User | None
    group: Group | None


def signing_grant_list(*, model: RegisteredModel) -> list[SigningGrant]:
    """The signing grants of a model: to people, then to groups, each by role and name."""
    codenames = SIGNING_CODENAMES
    content_type = ContentType.objects.get_for_model(RegisteredModel)
    wanted = {
        "content_type": content_type,
        "object_pk": str(model.pk),
        "permission__codename__in": list(codenames),
    }
    people = UserObjectPermission.objects.filter(**wanted).select_related("user", "permission")
    groups = GroupObjectPermission.objects.filter(**wanted).select_related("group", "permission")
    found = [
        SigningGrant(role=codenames[row.permission.codename], user=row.user, group=None)
        for row in people
    ] + [
        SigningGrant(role=codenames[row.permission.codename], user=None, group=row.group)
        for row in groups
    ]
    return sorted(
        found,
        key=lambda g: (
            g.user is None,
            g.role,
            g.user.get_username() if g.user else g.group.name if g.group else "",
        ),
    )


def _versions(user: User) -> QuerySet[ModelVersion]:
    return ModelVersion.objects.filter(visible_models(user, pk="model_id")).select_related(
        "model__owner", "model__team", "parent", "author", "created_by"
    )


def model_version_list(*, user: User, model_name: str) -> QuerySet[ModelVersion]:
    """The versions of a visible model, oldest first."""
    model = model_get(user=user, name=model_name)
    return (
        _versions(user)
        .filter(model=model)
        .prefetch_related("dataset_usages__dataset_version__dataset")
        .order_by("version")
    )


def model_version_get(*, user: User, model_name: str, version: int) -> ModelVersion:
    """One version of a visible model with its datasets, else ``NotFound``: one query with
    its model, one for its datasets."""
    row = (
        _versions(user)
        .filter(model__name=model_name, version=version)
        .prefetch_related("dataset_usages__dataset_version__dataset")
        .first()
    )
    if row is None:
        model_get(user=user, name=model_name)  # says which of the two is missing
        raise NotFound(f"version {version} of model {model_name!r} not found")
    return row


def dataset_list(*, user: User) -> QuerySet[Dataset]:
    """Datasets are visible to holders of ``view_dataset`` (every role but a bare account)."""
    if not user.has_perm("registry.view_dataset"):
        return Dataset.objects.none()
    return Dataset.objects.select_related("owner").order_by("name")


def dataset_get(*, user: User, name: str) -> Dataset:
    dataset = dataset_list(user=user).filter(name=name).first()
    if dataset is None:
        raise NotFound(f"dataset {name!r} not found")
    return dataset


def dataset_version_list(*, user: User, dataset_name: str) -> QuerySet[DatasetVersion]:
    dataset = dataset_get(user=user, name=dataset_name)
    return (
        DatasetVersion.objects.filter(dataset=dataset).select_related("dataset").order_by("version")
    )


def dataset_version_get(*, user: User, dataset_name: str, version: int) -> DatasetVersion:
    found = (
        dataset_version_list(user=user, dataset_name=dataset_name).filter(version=version).first()
    )
    if found is None:
        raise NotFound(f"version {version} of dataset {dataset_name!r} not found")
    return found


def lineage_get(*, user: User, model_name: str, version: int) -> dict[str, Any]:
    """The data -> model lineage of a version as a graph: nodes, edges, and its ancestry.

    Nodes are dataset versions and model versions (the version itself and its parents);
    edges run from a dataset version to the model version it fed (with the role), and from a
    parent version to its child. Deployments and sign-offs are added by the reports.
    """
    target = model_version_get(user=user, model_name=model_name, version=version)
    nodes: dict[str, dict[str, Any]] = {}
    edges: list[dict[str, str]] = []
    chain: list[ModelVersion] = []
    current: ModelVersion | None = target
    seen: set[int] = set()
    while current is not None and current.pk not in seen:
        seen.add(current.pk)
        chain.append(current)
        current = current.parent
    for node in chain:
        node_id = f"model_version:{node.model.name}:{node.version}"
        nodes[node_id] = {
            "id": node_id,
            "kind": "model_version",
            "model": node.model.name,
            "version": node.version,
            "artifact_digest": node.artifact_digest,
            "source_commit": node.source_commit,
            "status": node.status,
            "created_at": node.created_at.isoformat(),
        }
        if node.parent is not None:
            edges.append(
                {
                    "from": f"model_version:{node.model.name}:{node.parent.version}",
                    "to": node_id,
                    "role": "parent",
                }
            )
        for usage in node.dataset_usages.select_related("dataset_version__dataset"):
            dv = usage.dataset_version
            dv_id = f"dataset_version:{dv.dataset.name}:{dv.version}"
            nodes.setdefault(
                dv_id,
                {
                    "id": dv_id,
                    "kind": "dataset_version",
                    "dataset": dv.dataset.name,
                    "version": dv.version,
                    "content_digest": dv.content_digest,
                    "row_count": dv.row_count,
                    "pii": dv.pii,
                },
            )
            edges.append({"from": dv_id, "to": node_id, "role": usage.role})
    return {
        "model": target.model.name,
        "version": target.version,
        "nodes": list(nodes.values()),
        "edges": edges,
    }
