"""Every change form of the admin either records the change it saves or refuses edits.

The list of forms comes from the admin site's registry, so a model admin registered later
without a recorded save (and without a recipe here) fails this test.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.test import Client, RequestFactory

from core.accounts.callers import Caller
from core.accounts.models import ApiKey, User
from governance.accounts.services import api_key_create, group_create
from registry.models import Dataset, RegisteredModel
from tests import factories
from tests.adminforms import change_form_data
from tests.apitools import last_seq, records_since

pytestmark = pytest.mark.django_db


def _user(cast: dict[str, Any]) -> tuple[User, dict[str, Any]]:
    return cast["bob"], {"groups": [str(Group.objects.get(name="validator").pk)]}


def _group(cast: dict[str, Any]) -> tuple[Group, dict[str, Any]]:
    team = group_create(
        caller=Caller(user=cast["root"], auth="cli"), name="fraud-team", reason="new team"
    )
    perm = Permission.objects.get(codename="view_registeredmodel")
    return team, {"permissions": [str(perm.pk)]}


def _api_key(cast: dict[str, Any]) -> tuple[ApiKey, dict[str, Any]]:
    _, key = api_key_create(
        caller=Caller(user=cast["root"], auth="cli"),
        user=cast["ci"],
        name="ci key",
        scopes=["gate:read"],
    )
    return key, {"scopes": json.dumps(["gate:read", "registry:read"])}


def _model(cast: dict[str, Any]) -> tuple[RegisteredModel, dict[str, Any]]:
    model = factories.registered_model(cast["alice"], name="credit-score", team=cast["team"])
    return model, {"description": "Scores credit applications."}


def _dataset(cast: dict[str, Any]) -> tuple[Dataset, dict[str, Any]]:
    return factories.dataset(cast["alice"], name="loans"), {"description": "Loans 2020-2024."}


# For each model whose admin change form saves edits: an object to edit and the change.
RECIPES: dict[type, Callable[[dict[str, Any]], tuple[Any, dict[str, Any]]]] = {
    User: _user,
    Group: _group,
    ApiKey: _api_key,
    RegisteredModel: _model,
    Dataset: _dataset,
}


@pytest.fixture
def cast(admin_user, alice, bob, team, ci_account):
    return {"root": admin_user, "alice": alice, "bob": bob, "team": team, "ci": ci_account}


@pytest.fixture
def superuser_admin(admin_user) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


def _editable(model_admin: admin.ModelAdmin, user: User) -> bool:
    request = RequestFactory().get("/admin/")
    request.user = user
    return bool(
        model_admin.has_change_permission(request) or model_admin.has_add_permission(request)
    )


def registered_admins() -> list[Any]:
    return [
        pytest.param(model, id=f"{model._meta.app_label}.{model._meta.model_name}")
        for model in admin.site._registry
    ]


@pytest.mark.parametrize("model", registered_admins())
def test_every_admin_change_form_records_its_change_or_refuses_edits(model, cast, superuser_admin):
    model_admin = admin.site._registry[model]
    if not _editable(model_admin, cast["root"]):
        assert model not in RECIPES, f"{model.__name__}: read-only in the admin, drop its recipe"
        return
    assert model in RECIPES, (
        f"{model.__name__}: its admin saves edits; add a recipe here and record the change"
    )
    obj, change = RECIPES[model](cast)
    url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/{obj.pk}/change/"
    page = superuser_admin.get(url)
    assert page.status_code == 200
    data = change_form_data(page.content.decode(), f"{model._meta.model_name}_form")
    assert "reason" in data or "reason" in page.context["adminform"].form.fields, (
        f"{model.__name__}: the change form asks for no reason"
    )
    mark = last_seq()
    response = superuser_admin.post(
        url, {**data, **change, "reason": "quarterly review", "_save": "Save"}
    )
    assert response.status_code == 302, (
        response.context["adminform"].form.errors if response.context else response
    )
    records = records_since(mark)
    assert [r.object_id for r in records] == [str(obj.pk)], [r.action for r in records]
    assert json.loads(records[0].body)["reason"] == "quarterly review"


@pytest.mark.parametrize("model", [User, Group, ApiKey])
def test_power_change_forms_refuse_saving_without_a_reason(model, cast, superuser_admin):
    obj, change = RECIPES[model](cast)
    url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/{obj.pk}/change/"
    data = change_form_data(
        superuser_admin.get(url).content.decode(), f"{model._meta.model_name}_form"
    )
    mark = last_seq()
    response = superuser_admin.post(url, {**data, **change, "reason": "", "_save": "Save"})
    assert response.status_code == 200
    assert "reason" in response.context["adminform"].form.errors
    assert records_since(mark) == []
