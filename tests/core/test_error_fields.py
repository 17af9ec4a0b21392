"""``error.fields`` maps a field name to a list of messages, as the OpenAPI schema says;
nested input errors are named with dotted paths (``steps.0.role``)."""

from __future__ import annotations

import pytest
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

from core.exceptions import api_exception_handler


class _Step(serializers.Serializer):
    role = serializers.ChoiceField(choices=["validator", "risk_officer"])
    count = serializers.IntegerField(min_value=1)


class _Policy(serializers.Serializer):
    name = serializers.CharField()
    steps = _Step(many=True)
    evidence = serializers.ListField(child=_Step())
    labels = serializers.ListField(child=serializers.IntegerField())
    limits = serializers.DictField(child=serializers.IntegerField())

    def validate(self, attrs):
        raise ValidationError("never reached with field errors")


def _fields_of(data) -> dict:
    serializer = _Policy(data=data)
    assert not serializer.is_valid()
    response = api_exception_handler(ValidationError(serializer.errors), {})
    assert response is not None and response.status_code == 400
    return response.data["error"]["fields"]


@pytest.mark.database_free
def test_nested_errors_are_dotted_names_with_lists_of_strings():
    fields = _fields_of(
        {
            "steps": [{"role": "validator", "count": 1}, {"role": "nobody", "count": 0}],
            "evidence": [{"role": "validator"}],
            "labels": [1, "x"],
            "limits": {"a": "b"},
        }
    )
    assert set(fields) == {
        "name",
        "steps.1.role",
        "steps.1.count",
        "evidence.0.count",
        "labels.1",
        "limits.a",
    }
    for name, messages in fields.items():
        assert isinstance(messages, list) and messages, name
        assert all(isinstance(m, str) and m for m in messages), name


@pytest.mark.database_free
def test_object_level_errors_of_a_nested_item_are_named_after_the_item():
    response = api_exception_handler(
        ValidationError({"steps": [{}, {"non_field_errors": ["steps clash"]}]}), {}
    )
    assert response is not None
    assert response.data["error"]["fields"] == {"steps.1.non_field_errors": ["steps clash"]}
    assert response.data["error"]["message"] == "steps.1: steps clash"


@pytest.mark.database_free
def test_a_bare_list_of_messages_is_non_field_errors():
    response = api_exception_handler(ValidationError(["whole body refused"]), {})
    assert response is not None
    assert response.data["error"] == {
        "code": "invalid",
        "message": "whole body refused",
        "fields": {"non_field_errors": ["whole body refused"]},
    }


@pytest.mark.django_db
def test_error_schema_says_fields_map_names_to_lists_of_strings(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    detail = schema["components"]["schemas"]["ErrorDetail"]
    fields = detail["properties"]["fields"]
    assert fields["type"] == "object"
    assert fields["additionalProperties"] == {"type": "array", "items": {"type": "string"}}
    assert detail["required"] == ["code", "message"]
