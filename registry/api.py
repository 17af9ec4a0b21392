"""REST API v1 of the registry: models, versions, lineage, datasets.

Views are thin: one selector finds what the caller may see (out of scope is 404), the
service's ``*_authorize`` says whether they may act on it (403, before the body is judged),
an input serializer checks the body's shape, and one service does the write (permission,
invariants, audit record). Domain errors become HTTP in
``core.exceptions.api_exception_handler``.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response

from core.accounts.callers import Caller
from core.api import READ_ERRORS, WRITE_ERRORS, SelectorView, request_user, validated
from core.permissions import PersonOnly, RegistryAccess
from registry import selectors, services
from registry.filters import DatasetFilter, ModelVersionFilter, RegisteredModelFilter
from registry.models import Dataset, DatasetVersion, ModelVersion, RegisteredModel
from registry.serializers import (
    DatasetCreateSerializer,
    DatasetSerializer,
    DatasetUpdateSerializer,
    DatasetVersionRegisterSerializer,
    DatasetVersionSerializer,
    LineageSerializer,
    ModelCreateSerializer,
    ModelRiskSerializer,
    ModelUpdateSerializer,
    ModelVersionRegisterSerializer,
    ModelVersionSerializer,
    ReasonSerializer,
    RegisteredModelSerializer,
    StatusChangeSerializer,
)


class _SelectorView(SelectorView):
    # The registry's lists take django-filter query parameters.
    filter_backends = [DjangoFilterBackend]


@extend_schema_view(
    get=extend_schema(
        summary="List the models you may see",
        responses={200: RegisteredModelSerializer, **READ_ERRORS},
    ),
    post=extend_schema(
        summary="Register a model",
        request=ModelCreateSerializer,
        responses={201: RegisteredModelSerializer, **WRITE_ERRORS},
    ),
)
@extend_schema(tags=["models"])
class ModelListView(_SelectorView, generics.ListAPIView):
    """Registered models. Lists show only the models the caller may see: every model for
    validators, officers and auditors, otherwise those of the caller and their team."""

    permission_classes = [RegistryAccess]
    queryset = RegisteredModel.objects.none()
    serializer_class = RegisteredModelSerializer
    filterset_class = RegisteredModelFilter

    def selected(self) -> QuerySet:
        return selectors.model_list(user=request_user(self.request))

    def post(self, request: Request) -> Response:
        caller = Caller.from_request(request)
        services.model_create_authorize(caller=caller)
        data = validated(ModelCreateSerializer, request.data)
        model = services.model_create(caller=caller, **data)
        return Response(RegisteredModelSerializer(model).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    get=extend_schema(
        summary="One model", responses={200: RegisteredModelSerializer, **READ_ERRORS}
    ),
    patch=extend_schema(
        summary="Change a model's descriptive fields",
        description="Risk tier and sensitive attributes change only through `.../risk`.",
        request=ModelUpdateSerializer,
        responses={200: RegisteredModelSerializer, **WRITE_ERRORS},
    ),
)
@extend_schema(tags=["models"])
class ModelDetailView(generics.GenericAPIView):
    """A registered model. Out of the caller's scope is 404."""

    permission_classes = [RegistryAccess]
    serializer_class = RegisteredModelSerializer

    def get(self, request: Request, name: str) -> Response:
        model = selectors.model_get(user=request_user(request), name=name)
        return Response(RegisteredModelSerializer(model).data)

    def patch(self, request: Request, name: str) -> Response:
        caller = Caller.from_request(request)
        model = selectors.model_get(user=caller.user, name=name)
        services.model_update_authorize(caller=caller, model=model)
        data = validated(ModelUpdateSerializer, request.data)
        model = services.model_update(caller=caller, model=model, **data)
        return Response(RegisteredModelSerializer(model).data)


@extend_schema(
    summary="Change a model's risk tier or sensitive attributes (risk officers, with a reason)",
    request=ModelRiskSerializer,
    responses={200: RegisteredModelSerializer, **WRITE_ERRORS},
)
@extend_schema(tags=["models"])
class ModelRiskView(generics.GenericAPIView):
    """The risk tier and sensitive attributes decide the policy; only a risk officer changes
    them, always with a reason, in a session (no API key)."""

    permission_classes = [PersonOnly]
    serializer_class = ModelRiskSerializer

    def post(self, request: Request, name: str) -> Response:
        caller = Caller.from_request(request)
        model = selectors.model_get(user=caller.user, name=name)
        services.model_change_risk_authorize(caller=caller)
        data = validated(ModelRiskSerializer, request.data)
        model = services.model_change_risk(caller=caller, model=model, **data)
        return Response(RegisteredModelSerializer(model).data)


@extend_schema(
    summary="Retire a model (never deleted)",
    request=ReasonSerializer,
    responses={200: RegisteredModelSerializer, **WRITE_ERRORS},
)
@extend_schema(tags=["models"])
class ModelRetireView(generics.GenericAPIView):
    """Models are retired, never deleted; their versions stay readable. Retiring is a
    person's governance decision: no API key may do it."""

    permission_classes = [PersonOnly]
    serializer_class = ReasonSerializer

    def post(self, request: Request, name: str) -> Response:
        caller = Caller.from_request(request)
        model = selectors.model_get(user=caller.user, name=name)
        services.model_retire_authorize(caller=caller, model=model)
        data = validated(ReasonSerializer, request.data)
        model = services.model_retire(caller=caller, model=model, **data)
        return Response(RegisteredModelSerializer(model).data)


@extend_schema_view(
    get=extend_schema(
        summary="The versions of a model", responses={200: ModelVersionSerializer, **READ_ERRORS}
    ),
    post=extend_schema(
        summary="Register the next version of a model",
        description=(
            "Service accounts must name the human `author`. Giving `version` makes CI "
            "retries safe: an existing number is a 409."
        ),
        request=ModelVersionRegisterSerializer,
        responses={201: ModelVersionSerializer, **WRITE_ERRORS},
    ),
)
@extend_schema(tags=["model versions"])
class ModelVersionListView(_SelectorView, generics.ListAPIView):
    """The versions of a model. A version is immutable after registration except its status."""

    permission_classes = [RegistryAccess]
    queryset = ModelVersion.objects.none()
    serializer_class = ModelVersionSerializer
    filterset_class = ModelVersionFilter

    def selected(self) -> QuerySet:
        return selectors.model_version_list(
            user=request_user(self.request), model_name=self.kwargs["name"]
        )

    def post(self, request: Request, name: str) -> Response:
        caller = Caller.from_request(request)
        model = selectors.model_get(user=caller.user, name=name)
        services.model_version_register_authorize(caller=caller, model=model)
        serializer = ModelVersionRegisterSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        version = services.model_version_register(
            caller=caller, model=model, **serializer.service_arguments()
        )
        return Response(ModelVersionSerializer(version).data, status=status.HTTP_201_CREATED)


@extend_schema(
    summary="One version of a model", responses={200: ModelVersionSerializer, **READ_ERRORS}
)
@extend_schema(tags=["model versions"])
class ModelVersionDetailView(generics.GenericAPIView):
    """One version of a model, with its dataset lineage."""

    permission_classes = [RegistryAccess]
    serializer_class = ModelVersionSerializer

    def get(self, request: Request, name: str, version: int) -> Response:
        found = selectors.model_version_get(
            user=request_user(request), model_name=name, version=version
        )
        return Response(ModelVersionSerializer(found).data)


@extend_schema(
    summary="Deprecate or retire a version, with a reason",
    description="`validated` is set only by a completed validation step, never here.",
    request=StatusChangeSerializer,
    responses={200: ModelVersionSerializer, **WRITE_ERRORS},
)
@extend_schema(tags=["model versions"])
class ModelVersionStatusView(generics.GenericAPIView):
    """A version's status: registered -> deprecated -> retired (validated is set elsewhere).
    A person's governance decision: no API key may change it."""

    permission_classes = [PersonOnly]
    serializer_class = StatusChangeSerializer

    def post(self, request: Request, name: str, version: int) -> Response:
        caller = Caller.from_request(request)
        found = selectors.model_version_get(user=caller.user, model_name=name, version=version)
        services.model_version_set_status_authorize(caller=caller, version=found)
        data = validated(StatusChangeSerializer, request.data)
        found = services.model_version_set_status(caller=caller, version=found, **data)
        return Response(ModelVersionSerializer(found).data)


@extend_schema(
    summary="The data -> model lineage of a version",
    responses={200: LineageSerializer, **READ_ERRORS},
)
@extend_schema(tags=["model versions"])
class ModelVersionLineageView(generics.GenericAPIView):
    """Nodes are dataset and model versions; edges run from data to the model it fed."""

    permission_classes = [RegistryAccess]
    serializer_class = LineageSerializer

    def get(self, request: Request, name: str, version: int) -> Response:
        return Response(
            selectors.lineage_get(user=request_user(request), model_name=name, version=version)
        )


@extend_schema_view(
    get=extend_schema(summary="List datasets", responses={200: DatasetSerializer, **READ_ERRORS}),
    post=extend_schema(
        summary="Register a dataset",
        request=DatasetCreateSerializer,
        responses={201: DatasetSerializer, **WRITE_ERRORS},
    ),
)
@extend_schema(tags=["datasets"])
class DatasetListView(_SelectorView, generics.ListAPIView):
    """Datasets, described by digests and schemas (never copied into Warden)."""

    permission_classes = [RegistryAccess]
    queryset = Dataset.objects.none()
    serializer_class = DatasetSerializer
    filterset_class = DatasetFilter

    def selected(self) -> QuerySet:
        return selectors.dataset_list(user=request_user(self.request))

    def post(self, request: Request) -> Response:
        caller = Caller.from_request(request)
        services.dataset_create_authorize(caller=caller)
        data = validated(DatasetCreateSerializer, request.data)
        dataset = services.dataset_create(caller=caller, **data)
        return Response(DatasetSerializer(dataset).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    get=extend_schema(summary="One dataset", responses={200: DatasetSerializer, **READ_ERRORS}),
    patch=extend_schema(
        summary="Change a dataset's descriptive fields (its owner)",
        request=DatasetUpdateSerializer,
        responses={200: DatasetSerializer, **WRITE_ERRORS},
    ),
)
@extend_schema(tags=["datasets"])
class DatasetDetailView(generics.GenericAPIView):
    """A dataset. Its owner changes its descriptive fields."""

    permission_classes = [RegistryAccess]
    serializer_class = DatasetSerializer

    def get(self, request: Request, name: str) -> Response:
        dataset = selectors.dataset_get(user=request_user(request), name=name)
        return Response(DatasetSerializer(dataset).data)

    def patch(self, request: Request, name: str) -> Response:
        caller = Caller.from_request(request)
        dataset = selectors.dataset_get(user=caller.user, name=name)
        services.dataset_update_authorize(caller=caller, dataset=dataset)
        data = validated(DatasetUpdateSerializer, request.data)
        dataset = services.dataset_update(caller=caller, dataset=dataset, **data)
        return Response(DatasetSerializer(dataset).data)


@extend_schema(
    summary="Retire a dataset: no new lineage may name it",
    request=ReasonSerializer,
    responses={200: DatasetSerializer, **WRITE_ERRORS},
)
@extend_schema(tags=["datasets"])
class DatasetRetireView(generics.GenericAPIView):
    """Datasets are retired, never deleted; existing lineage stays. A person's act: no API
    key may retire one."""

    permission_classes = [PersonOnly]
    serializer_class = ReasonSerializer

    def post(self, request: Request, name: str) -> Response:
        caller = Caller.from_request(request)
        dataset = selectors.dataset_get(user=caller.user, name=name)
        services.dataset_retire_authorize(caller=caller, dataset=dataset)
        data = validated(ReasonSerializer, request.data)
        dataset = services.dataset_retire(caller=caller, dataset=dataset, **data)
        return Response(DatasetSerializer(dataset).data)


@extend_schema_view(
    get=extend_schema(
        summary="The versions of a dataset",
        responses={200: DatasetVersionSerializer, **READ_ERRORS},
    ),
    post=extend_schema(
        summary="Register a snapshot of a dataset",
        request=DatasetVersionRegisterSerializer,
        responses={201: DatasetVersionSerializer, **WRITE_ERRORS},
    ),
)
@extend_schema(tags=["datasets"])
class DatasetVersionListView(_SelectorView, generics.ListAPIView):
    """The snapshots of a dataset: content digest, row count, schema (column -> type)."""

    permission_classes = [RegistryAccess]
    queryset = DatasetVersion.objects.none()
    serializer_class = DatasetVersionSerializer
    filter_backends: list[Any] = []

    def selected(self) -> QuerySet:
        return selectors.dataset_version_list(
            user=request_user(self.request), dataset_name=self.kwargs["name"]
        )

    def post(self, request: Request, name: str) -> Response:
        caller = Caller.from_request(request)
        dataset = selectors.dataset_get(user=caller.user, name=name)
        services.dataset_version_register_authorize(caller=caller, dataset=dataset)
        data = validated(DatasetVersionRegisterSerializer, request.data)
        created = services.dataset_version_register(caller=caller, dataset=dataset, **data)
        return Response(DatasetVersionSerializer(created).data, status=status.HTTP_201_CREATED)


@extend_schema(
    summary="One version of a dataset", responses={200: DatasetVersionSerializer, **READ_ERRORS}
)
@extend_schema(tags=["datasets"])
class DatasetVersionDetailView(generics.GenericAPIView):
    """One snapshot of a dataset."""

    permission_classes = [RegistryAccess]
    serializer_class = DatasetVersionSerializer

    def get(self, request: Request, name: str, version: int) -> Response:
        found = selectors.dataset_version_get(
            user=request_user(request), dataset_name=name, version=version
        )
        return Response(DatasetVersionSerializer(found).data)
