"""Output shapes of the audit API. A record is shown from its stored body, never rebuilt."""

from __future__ import annotations

import json
from typing import Any

from rest_framework import serializers

from audit.models import AuditRecord


class AuditRecordSerializer(serializers.Serializer):
    """One record: the fields of its body, its leaf hash, and ``body``, the exact canonical
    text the hash covers (verify with ``sha256(b"\\x00" + body.encode())``)."""

    seq = serializers.IntegerField()
    ts = serializers.CharField(help_text="UTC, YYYY-MM-DDTHH:MM:SS.ffffffZ, as in the body")
    action = serializers.CharField()
    actor = serializers.DictField(help_text='{"type", "id", "name", "auth"?}')
    object = serializers.DictField(help_text='{"type", "id", "label"}')
    scope = serializers.DictField()
    # Declared fields are popped off the class, so this does not hide Serializer.data.
    data = serializers.DictField()  # type: ignore[assignment]
    reason = serializers.CharField(allow_null=True)
    leaf = serializers.CharField()
    body = serializers.CharField()

    def to_representation(self, instance: AuditRecord) -> dict[str, Any]:
        parsed = json.loads(instance.body)
        return {
            "seq": parsed["seq"],
            "ts": parsed["ts"],
            "action": parsed["action"],
            "actor": parsed["actor"],
            "object": parsed["object"],
            "scope": parsed["scope"],
            "data": parsed["data"],
            "reason": parsed.get("reason"),
            "leaf": instance.leaf,
            "body": instance.body,
        }


class FindingSerializer(serializers.Serializer):
    code = serializers.CharField()
    seq = serializers.IntegerField(allow_null=True)
    message = serializers.CharField()


class VerificationReportSerializer(serializers.Serializer):
    """``audit.verifier.ChainReport.as_dict()``."""

    ok = serializers.BooleanField()
    records = serializers.IntegerField()
    first_seq = serializers.IntegerField(allow_null=True)
    last_seq = serializers.IntegerField(allow_null=True)
    tip = serializers.CharField()
    first_bad_seq = serializers.IntegerField(allow_null=True)
    findings = FindingSerializer(many=True)
