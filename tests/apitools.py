"""Helpers of the API tests: the error format, the 401 challenge, and the audit records a
request left behind."""

from __future__ import annotations

import json
from typing import Any

from django.db.models import Max

from audit.models import AuditRecord
from core.accounts.models import User

CHALLENGE = 'Bearer realm="warden"'


def last_seq() -> int:
    """The seq of the newest record, -1 on an empty log (take it before a request)."""
    value = AuditRecord.objects.aggregate(m=Max("seq"))["m"]
    return -1 if value is None else int(value)


def records_since(seq: int) -> list[AuditRecord]:
    return list(AuditRecord.objects.filter(seq__gt=seq).order_by("seq"))


def only_record_since(seq: int) -> tuple[AuditRecord, dict[str, Any]]:
    """The one record appended after ``seq``, with its parsed body; fails on none or more."""
    records = records_since(seq)
    assert len(records) == 1, [r.action for r in records]
    return records[0], json.loads(records[0].body)


def assert_no_record_since(seq: int) -> None:
    assert records_since(seq) == []


def assert_error(
    response: Any, status: int, *, field: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """The single error format; ``field`` (or a nested name under it, ``field.0.role``) must
    be named in ``error.fields``."""
    assert response.status_code == status, (response.status_code, response.content)
    payload = response.json()
    error = payload["error"]
    assert set(payload) == {"error", "request_id"}
    assert payload["request_id"] == response["X-Request-ID"]
    assert error["message"]
    if code is not None:
        assert error["code"] == code, error
    if field is not None:
        names = error.get("fields", {})
        assert any(n == field or n.startswith(f"{field}.") for n in names), error
    return error


def assert_unauthenticated(response: Any) -> None:
    assert_error(response, 401, code="not_authenticated")
    assert response["WWW-Authenticate"] == CHALLENGE


def assert_bad_credential(response: Any) -> None:
    assert_error(response, 401, code="authentication_failed")
    assert response["WWW-Authenticate"] == CHALLENGE


def actor(user: User, auth: str = "session") -> dict[str, str]:
    kind = "service" if user.is_service_account else "user"
    return {"type": kind, "id": str(user.pk), "name": user.printed_name, "auth": auth}


def key_prefix(key: str) -> str:
    """``wdn_<prefix>_<secret>`` -> ``<prefix>``."""
    return key.split("_")[1]


def person(user: User) -> dict[str, str]:
    return {"id": str(user.pk), "name": user.printed_name}
