"""The only code that changes the registry. One function per use case.

Each service checks the caller's permission and the invariants, changes the rows and appends
its audit record as the last step of one durable transaction. Refusals raise the domain
errors of ``core.errors``; nothing is written when they do.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max
from guardian.shortcuts import assign_perm

from audit.actions import AuditAction
from audit.services import Subject, audit_record
from core.accounts.callers import Caller
from core.accounts.models import User
from core.errors import Conflict, Forbidden, InvalidInput, TransitionNotAllowed
from core.reasons import reason_optional, reason_required
from core.roles import Role, has_role
from registry.models import (
    Dataset,
    DatasetStatus,
    DatasetUsage,
    DatasetVersion,
    LineageRole,
    ModelStatus,
    ModelVersion,
    RegisteredModel,
    VersionStatus,
)
from registry.snapshots import (
    changes,
    dataset_snapshot,
    dataset_version_snapshot,
    model_snapshot,
    version_snapshot,
)

MODEL_OBJECT_PERMS = (
    "registry.view_registeredmodel",
    "registry.change_registeredmodel",
    "registry.register_version_registeredmodel",
    "registry.retire_registeredmodel",
)
# The owner of a dataset describes and retires it; the owner and the owner's teams (as they
# were at registration) register its versions. Administrators hold both globally.
DATASET_OWNER_PERMS = ("registry.change_dataset", "registry.register_version_dataset")
DATASET_TEAM_PERMS = ("registry.register_version_dataset",)
MODEL_DESCRIPTIVE_FIELDS = ("description", "intended_use", "limitations", "next_review")
DATASET_DESCRIPTIVE_FIELDS = ("description", "source_uri", "legal_basis", "pii")
# What a model may be used for, and whether and why a dataset holds personal data, are
# governed facts: a change to any of them carries a reason.
MODEL_FIELDS_NEEDING_REASON = ("intended_use",)
DATASET_FIELDS_NEEDING_REASON = ("pii", "legal_basis")
# Who may own a model: the roles that build models (the owner is excluded from the model's
# independent sign-off steps, so naming a signer as owner would take them out of its review).
OWNER_ROLES = (Role.DATA_SCIENTIST, Role.ML_ENGINEER)
MAX_MAP_ENTRIES = 500
SCHEMA_TYPES = frozenset(
    {"integer", "float", "string", "boolean", "categorical", "datetime", "date", "numerical"}
)

# Version statuses a registry write may set; `validated` comes only from a validation step.
VERSION_TRANSITIONS: dict[str, frozenset[str]] = {
    VersionStatus.REGISTERED: frozenset({VersionStatus.DEPRECATED, VersionStatus.RETIRED}),
    VersionStatus.VALIDATED: frozenset({VersionStatus.DEPRECATED, VersionStatus.RETIRED}),
    VersionStatus.DEPRECATED: frozenset({VersionStatus.RETIRED}),
    VersionStatus.RETIRED: frozenset(),
}


@dataclass(frozen=True)
class DatasetRef:
    """A dataset version named by a model version's lineage, with its role."""

    dataset: str
    version: int
    role: str


def _may(user: User, perm: str, obj: Any = None) -> bool:
    """Global permission, or the per-object grant (guardian) on ``obj``."""
    return user.has_perm(perm) or (obj is not None and user.has_perm(perm, obj))


def _require(caller: Caller, perm: str, obj: Any = None, *, action: str) -> None:
    if not _may(caller.user, perm, obj):
        raise Forbidden(f"you may not {action}")


def _reason_for(
    reason: str | None, *, changed: Mapping[str, Any], needing: Sequence[str]
) -> str | None:
    """The change's reason; required when ``changed`` (the ``after`` half of a diff) names
    one of the fields ``needing`` it."""
    governed = sorted(set(changed) & set(needing))
    if governed and not (reason or "").strip():
        raise InvalidInput(
            f"a reason is required to change {', '.join(governed)}",
            fields={"reason": [f"Required to change {', '.join(governed)}."]},
        )
    return reason_optional(reason)


def _check_owner(owner: User, team: Group | None) -> None:
    """A model's owner is an active person who builds models (data scientist or ML
    engineer) and, when the model has a team, a member of it."""
    if owner.is_service_account or not owner.is_active:
        raise InvalidInput(
            "the owner must be an active person", fields={"owner": ["Name an active person."]}
        )
    if not any(has_role(owner, role) for role in OWNER_ROLES):
        raise InvalidInput(
            f"{owner.username} cannot own models: the owner must be a data scientist or an ML "
            "engineer",
            fields={"owner": ["Name a data scientist or an ML engineer."]},
        )
    if team is not None and not owner.groups.filter(pk=team.pk).exists():
        raise InvalidInput(
            f"{owner.username} is not a member of team {team.name!r}",
            fields={"owner": ["Name a member of the model's team."]},
        )


def _full_clean(obj: Any, exclude: Sequence[str] = ()) -> None:
    try:
        obj.full_clean(exclude=list(exclude), validate_unique=False, validate_constraints=False)
    except ValidationError as exc:
        fields = {name: [str(m) for m in msgs] for name, msgs in exc.message_dict.items()}
        first = next(iter(fields.items()))
        raise InvalidInput(f"{first[0]}: {first[1][0]}", fields=fields) from exc


def _check_map(name: str, value: Any, *, numbers_only: bool = False) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidInput(f"{name} must be an object", fields={name: ["Expected an object."]})
    if len(value) > MAX_MAP_ENTRIES:
        raise InvalidInput(
            f"{name} has too many entries", fields={name: [f"At most {MAX_MAP_ENTRIES} entries."]}
        )
    for key, item in value.items():
        if not isinstance(key, str) or not key or len(key) > 200:
            raise InvalidInput(
                f"{name} keys must be strings of 1-200 characters", fields={name: ["Bad key."]}
            )
        if numbers_only and (isinstance(item, bool) or not isinstance(item, int | float)):
            raise InvalidInput(
                f"{name}[{key!r}] must be a number", fields={name: [f"{key}: expected a number."]}
            )
        if not numbers_only and not (item is None or isinstance(item, str | int | float | bool)):
            raise InvalidInput(
                f"{name}[{key!r}] must be a string, number, boolean or null",
                fields={name: [f"{key}: expected a scalar value."]},
            )
        if isinstance(item, str) and len(item) > 1000:
            raise InvalidInput(f"{name}[{key!r}] is too long", fields={name: [f"{key}: too long."]})
    return dict(value)


def _check_attributes(value: Any) -> list[str]:
    if not isinstance(value, list | tuple) or not all(
        isinstance(item, str) and 0 < len(item) <= 100 for item in value
    ):
        raise InvalidInput(
            "sensitive_attributes must be a list of column names",
            fields={"sensitive_attributes": ["Expected a list of names of 1-100 characters."]},
        )
    if len(set(value)) != len(value):
        raise InvalidInput(
            "sensitive_attributes lists a name twice",
            fields={"sensitive_attributes": ["Duplicate names."]},
        )
    return list(value)


def _model_subject(model: RegisteredModel) -> Subject:
    return Subject(type="registered_model", id=str(model.pk), label=model.name)


def _version_subject(version: ModelVersion) -> Subject:
    return Subject(type="model_version", id=str(version.pk), label=str(version))


def model_create_authorize(*, caller: Caller) -> None:
    """``Forbidden`` unless the caller may register models at all: interfaces ask before
    judging the input, so a caller who may not act learns nothing from a validation error."""
    _require(caller, "registry.add_registeredmodel", action="register models")


def model_create(
    *,
    caller: Caller,
    name: str,
    risk_tier: str,
    description: str = "",
    owner: User | None = None,
    team: Group | None = None,
    intended_use: str = "",
    limitations: str = "",
    sensitive_attributes: Sequence[str] = (),
    next_review: dt.date | None = None,
) -> RegisteredModel:
    """Register a model; its owner and team get the per-model grants (view, change, ...).

    The owner (the caller unless named) is an active data scientist or ML engineer, and a
    member of the model's team when it has one.
    """
    model_create_authorize(caller=caller)
    owner = owner or caller.user
    if team is not None:
        if team.name in Role.values:
            raise InvalidInput(
                f"{team.name!r} is a role, not a team",
                fields={"team": ["A role group cannot own models; name a team."]},
            )
        if not (
            caller.user.groups.filter(pk=team.pk).exists() or has_role(caller.user, Role.ADMIN)
        ):
            raise InvalidInput(
                f"you are not a member of team {team.name!r}",
                fields={"team": ["Name a team you belong to."]},
            )
    _check_owner(owner, team)
    model = RegisteredModel(
        name=name,
        description=description,
        owner=owner,
        team=team,
        risk_tier=risk_tier,
        intended_use=intended_use,
        limitations=limitations,
        sensitive_attributes=_check_attributes(list(sensitive_attributes)),
        next_review=next_review,
    )
    _full_clean(model)
    with transaction.atomic(durable=True):
        if RegisteredModel.objects.filter(name=name).exists():
            raise Conflict(
                f"a model named {name!r} already exists",
                fields={"name": ["A model with this name already exists."]},
            )
        model.save()
        for perm in MODEL_OBJECT_PERMS:
            assign_perm(perm, owner, model)
            if team is not None:
                assign_perm(perm, team, model)
        audit_record(
            action=AuditAction.REGISTERED_MODEL_CREATED,
            actor=caller.actor,
            object=_model_subject(model),
            scope={"model": model.name},
            data=model_snapshot(model),
        )
    return model


def model_update_authorize(*, caller: Caller, model: RegisteredModel) -> None:
    """``Forbidden`` unless the caller may change ``model``'s descriptive fields (asked by
    interfaces before the input is judged, as every ``*_authorize`` here)."""
    _require(caller, "registry.change_registeredmodel", model, action="change this model")


def model_update(
    *, caller: Caller, model: RegisteredModel, reason: str | None = None, **fields: Any
) -> RegisteredModel:
    """Change a model's descriptive fields; risk tier and sensitive attributes have their own.

    A change of the intended use needs a non-empty ``reason``; any reason given is recorded.
    """
    model_update_authorize(caller=caller, model=model)
    unknown = set(fields) - set(MODEL_DESCRIPTIVE_FIELDS)
    if unknown:
        name = sorted(unknown)[0]
        raise InvalidInput(
            f"{name} cannot be changed here", fields={name: ["This field cannot be changed here."]}
        )
    reason_optional(reason)
    with transaction.atomic(durable=True):
        model = RegisteredModel.objects.select_for_update().get(pk=model.pk)
        if model.status == ModelStatus.RETIRED:
            raise Conflict(f"model {model.name!r} is retired")
        before = model_snapshot(model)
        for key, value in fields.items():
            setattr(model, key, value)
        _full_clean(model)
        diff = changes(before, model_snapshot(model))
        if not diff["after"]:
            return model
        note = _reason_for(reason, changed=diff["after"], needing=MODEL_FIELDS_NEEDING_REASON)
        model.save()
        audit_record(
            action=AuditAction.REGISTERED_MODEL_UPDATED,
            actor=caller.actor,
            object=_model_subject(model),
            scope={"model": model.name},
            data=diff,
            reason=note,
        )
    return model


def model_change_risk_authorize(*, caller: Caller) -> None:
    """``Forbidden`` unless the caller holds the risk officer role."""
    if not has_role(caller.user, Role.RISK_OFFICER):
        raise Forbidden("only a risk officer may change the risk tier or sensitive attributes")


def model_change_risk(
    *,
    caller: Caller,
    model: RegisteredModel,
    reason: str,
    risk_tier: str | None = None,
    sensitive_attributes: Sequence[str] | None = None,
) -> RegisteredModel:
    """Change the risk tier or sensitive attributes: a risk officer only, with a reason.

    These decide which policy and evidence apply, so holding the risk officer role (group
    membership, not superuser status) is required.
    """
    model_change_risk_authorize(caller=caller)
    note = reason_required(reason)
    with transaction.atomic(durable=True):
        model = RegisteredModel.objects.select_for_update().get(pk=model.pk)
        if model.status == ModelStatus.RETIRED:
            raise Conflict(f"model {model.name!r} is retired")
        before = model_snapshot(model)
        if risk_tier is not None:
            model.risk_tier = risk_tier
        if sensitive_attributes is not None:
            model.sensitive_attributes = _check_attributes(list(sensitive_attributes))
        diff = changes(before, model_snapshot(model))
        if not diff["after"]:
            return model
        model.save()
        audit_record(
            action=AuditAction.REGISTERED_MODEL_RISK_CHANGED,
            actor=caller.actor,
            object=_model_subject(model),
            scope={"model": model.name},
            data=diff,
            reason=note,
        )
    return model


def model_retire_authorize(*, caller: Caller, model: RegisteredModel) -> None:
    """``Forbidden`` unless the caller may retire ``model`` (its retire grant, or the risk
    officer role)."""
    if not (
        _may(caller.user, "registry.retire_registeredmodel", model)
        or has_role(caller.user, Role.RISK_OFFICER)
    ):
        raise Forbidden("you may not retire this model")


def model_retire(*, caller: Caller, model: RegisteredModel, reason: str) -> RegisteredModel:
    """Retire a model (never deleted); its versions stay readable."""
    model_retire_authorize(caller=caller, model=model)
    note = reason_required(reason)
    with transaction.atomic(durable=True):
        model = RegisteredModel.objects.select_for_update().get(pk=model.pk)
        if model.status == ModelStatus.RETIRED:
            raise TransitionNotAllowed(f"model {model.name!r} is already retired")
        model.status = ModelStatus.RETIRED
        model.save(update_fields=["status", "updated_at"])
        audit_record(
            action=AuditAction.REGISTERED_MODEL_RETIRED,
            actor=caller.actor,
            object=_model_subject(model),
            scope={"model": model.name},
            data=model_snapshot(model),
            reason=note,
        )
    return model


def _resolve_author(caller: Caller, author: User | None) -> User:
    if caller.user.is_service_account:
        if author is None:
            raise InvalidInput(
                "a version registered by a service account must name its human author",
                fields={"author": ["This field is required for service accounts."]},
            )
        if author.is_service_account or not author.is_active:
            raise InvalidInput(
                "the author must be an active person", fields={"author": ["Name an active person."]}
            )
        return author
    if author is not None and author.pk != caller.user.pk:
        raise InvalidInput(
            "people register versions as their own author",
            fields={"author": ["Only service accounts name another author."]},
        )
    return caller.user


def _resolve_datasets(refs: Sequence[DatasetRef]) -> list[tuple[DatasetVersion, str]]:
    resolved: list[tuple[DatasetVersion, str]] = []
    seen: set[tuple[int, str]] = set()
    for index, ref in enumerate(refs):
        if ref.role not in LineageRole.values:
            raise InvalidInput(
                f"datasets[{index}].role {ref.role!r} is not one of "
                f"{', '.join(LineageRole.values)}",
                fields={"datasets": [f"item {index}: unknown role {ref.role!r}."]},
            )
        found = (
            DatasetVersion.objects.select_related("dataset")
            .filter(dataset__name=ref.dataset, version=ref.version)
            .first()
        )
        if found is None:
            raise InvalidInput(
                f"dataset {ref.dataset!r} version {ref.version} does not exist",
                fields={
                    "datasets": [
                        f"item {index}: unknown dataset version {ref.dataset} v{ref.version}."
                    ]
                },
            )
        if found.dataset.status == DatasetStatus.RETIRED:
            raise InvalidInput(
                f"dataset {ref.dataset!r} is retired",
                fields={"datasets": [f"item {index}: dataset {ref.dataset} is retired."]},
            )
        key = (found.pk, ref.role)
        if key in seen:
            raise InvalidInput(
                "a dataset version is listed twice in the same role",
                fields={"datasets": [f"item {index}: duplicate."]},
            )
        seen.add(key)
        resolved.append((found, ref.role))
    return resolved


def model_version_register_authorize(*, caller: Caller, model: RegisteredModel) -> None:
    """``Forbidden`` unless the caller may register versions of ``model``."""
    _require(
        caller,
        "registry.register_version_registeredmodel",
        model,
        action=f"register versions of {model.name}",
    )


def model_version_register(
    *,
    caller: Caller,
    model: RegisteredModel,
    artifact_uri: str,
    artifact_digest: str,
    framework: str = "",
    parameters: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    source_commit: str = "",
    training_run_id: str = "",
    environment_digest: str = "",
    random_seed: int | None = None,
    parent_version: int | None = None,
    datasets: Sequence[DatasetRef] = (),
    author: User | None = None,
    version: int | None = None,
) -> ModelVersion:
    """Register the next version of ``model``; its digest and lineage are fixed from now on.

    A version registered by a service account names its human author. ``version`` may be
    given to make CI retries safe: registering an existing number is a conflict.
    """
    model_version_register_authorize(caller=caller, model=model)
    author = _resolve_author(caller, author)
    params = _check_map("parameters", parameters or {})
    scores = _check_map("metrics", metrics or {}, numbers_only=True)
    with transaction.atomic(durable=True):
        model = RegisteredModel.objects.select_for_update().get(pk=model.pk)
        if model.status == ModelStatus.RETIRED:
            raise Conflict(f"model {model.name!r} is retired")
        usages = _resolve_datasets(datasets)
        parent = None
        if parent_version is not None:
            parent = ModelVersion.objects.filter(model=model, version=parent_version).first()
            if parent is None:
                raise InvalidInput(
                    f"parent version {parent_version} of {model.name} does not exist",
                    fields={"parent_version": ["Unknown version."]},
                )
        existing = ModelVersion.objects.filter(model=model, artifact_digest=artifact_digest).first()
        if existing is not None:
            raise Conflict(
                f"artifact {artifact_digest} is already registered as {model.name} "
                f"v{existing.version}",
                fields={"artifact_digest": ["Already registered for this model."]},
            )
        latest = ModelVersion.objects.filter(model=model).aggregate(m=Max("version"))["m"] or 0
        if version is not None and version <= latest:
            raise Conflict(
                f"{model.name} v{version} already exists (latest is v{latest})",
                fields={"version": ["This version already exists."]},
            )
        number = version or latest + 1
        created = ModelVersion(
            model=model,
            version=number,
            artifact_uri=artifact_uri,
            artifact_digest=artifact_digest,
            framework=framework,
            parameters=params,
            metrics=scores,
            source_commit=source_commit,
            training_run_id=training_run_id,
            environment_digest=environment_digest,
            random_seed=random_seed,
            parent=parent,
            author=author,
            created_by=caller.user,
        )
        _full_clean(created, exclude=["model", "parent", "author", "created_by"])
        created.save()
        DatasetUsage.objects.bulk_create(
            [
                DatasetUsage(model_version=created, dataset_version=dv, role=role)
                for dv, role in usages
            ]
        )
        audit_record(
            action=AuditAction.MODEL_VERSION_REGISTERED,
            actor=caller.actor,
            object=_version_subject(created),
            scope={"model": model.name, "version": number},
            data=version_snapshot(created),
        )
    return created


def model_version_set_status_authorize(*, caller: Caller, version: ModelVersion) -> None:
    """``Forbidden`` unless the caller may change the status of ``version`` (a change grant
    on its model, or the risk officer role)."""
    if not (
        _may(caller.user, "registry.change_registeredmodel", version.model)
        or has_role(caller.user, Role.RISK_OFFICER)
    ):
        raise Forbidden(f"you may not change the status of {version}")


def model_version_set_status(
    *, caller: Caller, version: ModelVersion, status: str, reason: str
) -> ModelVersion:
    """Deprecate or retire a version, with a reason. ``validated`` is never set here."""
    model_version_set_status_authorize(caller=caller, version=version)
    if status == VersionStatus.VALIDATED:
        raise Forbidden("a version becomes validated only through a completed validation step")
    note = reason_required(reason)
    with transaction.atomic(durable=True):
        version = (
            ModelVersion.objects.select_for_update().select_related("model").get(pk=version.pk)
        )
        if status not in VERSION_TRANSITIONS[version.status]:
            raise TransitionNotAllowed(f"{version} cannot go from {version.status} to {status}")
        before = version.status
        version.status = status
        version.save(update_fields=["status"])
        audit_record(
            action=AuditAction.MODEL_VERSION_STATUS_CHANGED,
            actor=caller.actor,
            object=_version_subject(version),
            scope={"model": version.model.name, "version": version.version},
            data={"before": {"status": before}, "after": {"status": status}},
            reason=note,
        )
    return version


def _dataset_subject(dataset: Dataset) -> Subject:
    return Subject(type="dataset", id=str(dataset.pk), label=dataset.name)


def dataset_create_authorize(*, caller: Caller) -> None:
    """``Forbidden`` unless the caller may register datasets at all (asked before the input
    is judged, as for models)."""
    _require(caller, "registry.add_dataset", action="register datasets")


def dataset_create(
    *,
    caller: Caller,
    name: str,
    description: str = "",
    source_uri: str = "",
    pii: bool = False,
    legal_basis: str = "",
) -> Dataset:
    """Register a dataset (its versions carry the digests and schemas). The owner gets the
    per-dataset grants to change it and register its versions; the owner's teams (their
    groups that are not roles), to register its versions. The record names those teams."""
    dataset_create_authorize(caller=caller)
    owner = caller.user
    teams = list(owner.groups.exclude(name__in=Role.values).order_by("name"))
    dataset = Dataset(
        name=name,
        description=description,
        source_uri=source_uri,
        owner=owner,
        pii=pii,
        legal_basis=legal_basis,
    )
    _full_clean(dataset)
    with transaction.atomic(durable=True):
        if Dataset.objects.filter(name=name).exists():
            raise Conflict(
                f"a dataset named {name!r} already exists",
                fields={"name": ["A dataset with this name already exists."]},
            )
        dataset.save()
        for perm in DATASET_OWNER_PERMS:
            assign_perm(perm, owner, dataset)
        for team in teams:
            for perm in DATASET_TEAM_PERMS:
                assign_perm(perm, team, dataset)
        audit_record(
            action=AuditAction.DATASET_CREATED,
            actor=caller.actor,
            object=_dataset_subject(dataset),
            data={**dataset_snapshot(dataset), "teams": [team.name for team in teams]},
        )
    return dataset


def _may_write_dataset(caller: Caller, dataset: Dataset, perm: str) -> bool:
    """The owner, or a holder of ``perm`` globally (administrators) or on this dataset
    (guardian: the owner and teams granted at registration, or a later grant). Ownership
    counts by itself for datasets registered before the per-dataset grants existed."""
    return dataset.owner_id == caller.user.pk or _may(caller.user, perm, dataset)


def _may_change_dataset(caller: Caller, dataset: Dataset) -> bool:
    return _may_write_dataset(caller, dataset, "registry.change_dataset")


def dataset_update_authorize(*, caller: Caller, dataset: Dataset) -> None:
    """``Forbidden`` unless the caller may change ``dataset`` (its owner, or a change grant)."""
    if not _may_change_dataset(caller, dataset):
        raise Forbidden("you may not change this dataset")


def dataset_update(
    *, caller: Caller, dataset: Dataset, reason: str | None = None, **fields: Any
) -> Dataset:
    """Change a dataset's descriptive fields (its owner, or an administrator).

    A change of ``pii`` or ``legal_basis`` needs a non-empty ``reason``; any reason given is
    recorded.
    """
    dataset_update_authorize(caller=caller, dataset=dataset)
    unknown = set(fields) - set(DATASET_DESCRIPTIVE_FIELDS)
    if unknown:
        name = sorted(unknown)[0]
        raise InvalidInput(
            f"{name} cannot be changed here", fields={name: ["This field cannot be changed here."]}
        )
    reason_optional(reason)
    with transaction.atomic(durable=True):
        dataset = Dataset.objects.select_for_update().get(pk=dataset.pk)
        if dataset.status == DatasetStatus.RETIRED:
            raise Conflict(f"dataset {dataset.name!r} is retired")
        before = dataset_snapshot(dataset)
        for key, value in fields.items():
            setattr(dataset, key, value)
        _full_clean(dataset)
        diff = changes(before, dataset_snapshot(dataset))
        if not diff["after"]:
            return dataset
        note = _reason_for(reason, changed=diff["after"], needing=DATASET_FIELDS_NEEDING_REASON)
        dataset.save()
        audit_record(
            action=AuditAction.DATASET_UPDATED,
            actor=caller.actor,
            object=_dataset_subject(dataset),
            data=diff,
            reason=note,
        )
    return dataset


def dataset_retire_authorize(*, caller: Caller, dataset: Dataset) -> None:
    """``Forbidden`` unless the caller may retire ``dataset`` (as for changing it)."""
    if not _may_change_dataset(caller, dataset):
        raise Forbidden("you may not retire this dataset")


def dataset_retire(*, caller: Caller, dataset: Dataset, reason: str) -> Dataset:
    """Retire a dataset: no new lineage may name it; existing lineage stays."""
    dataset_retire_authorize(caller=caller, dataset=dataset)
    note = reason_required(reason)
    with transaction.atomic(durable=True):
        dataset = Dataset.objects.select_for_update().get(pk=dataset.pk)
        if dataset.status == DatasetStatus.RETIRED:
            raise TransitionNotAllowed(f"dataset {dataset.name!r} is already retired")
        dataset.status = DatasetStatus.RETIRED
        dataset.save(update_fields=["status"])
        audit_record(
            action=AuditAction.DATASET_RETIRED,
            actor=caller.actor,
            object=_dataset_subject(dataset),
            data=dataset_snapshot(dataset),
            reason=note,
        )
    return dataset


def dataset_version_register_authorize(*, caller: Caller, dataset: Dataset) -> None:
    """``Forbidden`` unless the caller may register versions of ``dataset``."""
    if not _may_write_dataset(caller, dataset, "registry.register_version_dataset"):
        raise Forbidden(f"you may not register versions of dataset {dataset.name!r}")


def dataset_version_register(
    *,
    caller: Caller,
    dataset: Dataset,
    content_digest: str,
    row_count: int,
    schema: Mapping[str, str],
    pii: bool | None = None,
    source_uri: str = "",
) -> DatasetVersion:
    """Register a snapshot of a dataset: digest, row count and schema (column -> type).

    Only those who may write this dataset register its versions: its owner, the teams granted
    at registration, holders of a per-dataset grant, and administrators; anyone else who can
    see it is refused (``Forbidden``)."""
    dataset_version_register_authorize(caller=caller, dataset=dataset)
    checked = _check_map("schema", schema)
    for column, kind in checked.items():
        if kind not in SCHEMA_TYPES:
            raise InvalidInput(
                f"schema[{column!r}] type {kind!r} is not one of {', '.join(sorted(SCHEMA_TYPES))}",
                fields={"schema": [f"{column}: unknown type {kind!r}."]},
            )
    with transaction.atomic(durable=True):
        dataset = Dataset.objects.select_for_update().get(pk=dataset.pk)
        if dataset.status == DatasetStatus.RETIRED:
            raise Conflict(f"dataset {dataset.name!r} is retired")
        existing = DatasetVersion.objects.filter(
            dataset=dataset, content_digest=content_digest
        ).first()
        if existing is not None:
            raise Conflict(
                f"content {content_digest} is already registered as "
                f"{dataset.name} v{existing.version}",
                fields={"content_digest": ["Already registered for this dataset."]},
            )
        latest = (
            DatasetVersion.objects.filter(dataset=dataset).aggregate(m=Max("version"))["m"] or 0
        )
        created = DatasetVersion(
            dataset=dataset,
            version=latest + 1,
            source_uri=source_uri,
            content_digest=content_digest,
            row_count=row_count,
            schema=checked,
            pii=dataset.pii if pii is None else pii,
            created_by=caller.user,
        )
        _full_clean(created, exclude=["dataset", "created_by"])
        created.save()
        audit_record(
            action=AuditAction.DATASET_VERSION_REGISTERED,
            actor=caller.actor,
            object=Subject(type="dataset_version", id=str(created.pk), label=str(created)),
            data=dataset_version_snapshot(created),
        )
    return created
