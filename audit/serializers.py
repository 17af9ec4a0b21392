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


class PublicKeySerializer(serializers.Serializer):
    """One trusted verification key."""

    name = serializers.CharField()
    key_id = serializers.CharField(help_text="8 hex digits")
    verifier_key = serializers.CharField(help_text="<name>+<hex key id>+<base64(0x01 || key)>")


class PublicKeysSerializer(serializers.Serializer):
    """The log's origin and the keys whose signatures on its checkpoints are trusted."""

    origin = serializers.CharField()
    keys = PublicKeySerializer(many=True)


class InclusionQuerySerializer(serializers.Serializer):
    seq = serializers.IntegerField(min_value=0, help_text="the record's seq (its leaf index)")
    size = serializers.IntegerField(
        min_value=1, required=False, help_text="a checkpointed tree size (default: the latest)"
    )


class ConsistencyQuerySerializer(serializers.Serializer):
    """``from`` and ``to``: two checkpointed sizes (``from`` is a Python keyword, hence the
    renaming in ``get_fields``)."""

    from_ = serializers.IntegerField(min_value=1, help_text="the older checkpointed size")
    to = serializers.IntegerField(min_value=1, help_text="the newer checkpointed size")

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["from"] = fields.pop("from_")
        return fields


class InclusionProofSerializer(serializers.Serializer):
    """Verify with RFC 9162 section 2.1.3.2: ``leaf`` at index ``seq`` of the tree of ``size``
    whose root is ``root``, after checking ``checkpoint``'s signature and that it names this
    size and root."""

    seq = serializers.IntegerField()
    size = serializers.IntegerField()
    leaf = serializers.CharField(help_text="SHA-256(0x00 || body), hex")
    proof = serializers.ListField(
        child=serializers.CharField(), help_text="hashes, hex, leaf first"
    )
    # Declared fields are popped off the class, so this does not hide Field.root.
    root = serializers.CharField(help_text="the checkpoint's root, hex")  # type: ignore[assignment]
    checkpoint = serializers.CharField(help_text="the signed note of the checkpoint")


class ConsistencyProofSerializer(serializers.Serializer):
    """Verify with RFC 9162 section 2.1.4.2 against the roots of both signed checkpoints."""

    from_size = serializers.IntegerField()
    to_size = serializers.IntegerField()
    proof = serializers.ListField(child=serializers.CharField(), help_text="hashes, hex")
    from_root = serializers.CharField()
    to_root = serializers.CharField()
    from_checkpoint = serializers.CharField(help_text="the signed note of size from")
    to_checkpoint = serializers.CharField(help_text="the signed note of size to")
