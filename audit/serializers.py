"""Input and output shapes of the audit API. A record is shown from its stored body, never
rebuilt; export requests are checked for types and formats here, for meaning in
``audit.exports``."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.urls import reverse
from django.utils.dateparse import parse_datetime
from rest_framework import serializers

from audit.models import AuditExport, AuditExportStatus, AuditRecord


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


class _TextField(serializers.CharField):
    """A JSON string and nothing else (DRF's CharField would turn 12 into "12")."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return str(super().to_internal_value(data))


class _WholeNumberField(serializers.IntegerField):
    """A JSON integer and nothing else (not "12", 12.0 or true)."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return int(super().to_internal_value(data))


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 date-time string with a time zone (``Z`` or an offset). A naive time is
    refused rather than read in the server's zone: a filter must mean one instant."""

    default_error_messages = {
        "invalid": "Must be an ISO 8601 date-time string, e.g. 2026-01-31T00:00:00Z.",
        "naive": "Must include a time zone: Z or an offset such as +02:00.",
    }

    def to_internal_value(self, value: Any) -> dt.datetime:
        if not isinstance(value, str):
            self.fail("invalid")
        try:
            parsed = parse_datetime(value.strip())
        except ValueError:
            parsed = None
        if parsed is None:
            self.fail("invalid")
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            self.fail("naive")
        return parsed


class AuditExportRequestSerializer(serializers.Serializer):
    """``POST /exports``: no field at all is a full export; ``model``, ``since`` or ``until``
    make it partial. Unknown fields are refused (a misspelt filter must not silently become
    a full export)."""

    model = _TextField(
        max_length=200,
        required=False,
        allow_null=True,
        help_text="only records whose scope.model is this model name",
    )
    since = AwareDateTimeField(
        required=False, allow_null=True, help_text="only records at or after this time"
    )
    until = AwareDateTimeField(
        required=False, allow_null=True, help_text="only records before this time"
    )
    prior_size = _WholeNumberField(
        min_value=1,
        required=False,
        allow_null=True,
        help_text="a signed checkpoint you hold: the bundle proves the log extends it",
    )

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = {str(name): ["Unknown field."] for name in data if name not in self.fields}
            if unknown:
                raise serializers.ValidationError(unknown)
        return super().to_internal_value(data)


class ExportFilterSerializer(serializers.Serializer):
    model = serializers.CharField(allow_null=True)
    since = serializers.DateTimeField(allow_null=True)
    until = serializers.DateTimeField(allow_null=True)


class ExportLinksSerializer(serializers.Serializer):
    """``self``, and ``download`` once the export is done (null before)."""

    self_ = serializers.CharField(help_text="this export")
    download = serializers.CharField(allow_null=True, help_text="the zip, once done")

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        fields["self"] = fields.pop("self_")
        return fields


class AuditExportSerializer(serializers.Serializer):
    """An export job: its status and, once done, the bundle's SHA-256, size and counts."""

    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=AuditExportStatus.choices)
    kind = serializers.ChoiceField(choices=[("full", "full"), ("partial", "partial")])
    filter = ExportFilterSerializer()
    prior_size = serializers.IntegerField(allow_null=True)
    checkpoint_size = serializers.IntegerField(
        allow_null=True, help_text="the signed checkpoint the bundle ends at"
    )
    records = serializers.IntegerField(allow_null=True)
    bytes = serializers.IntegerField(allow_null=True, help_text="size of the zip")
    sha256 = serializers.CharField(allow_null=True, help_text="of the whole zip, hex")
    error = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)
    links = ExportLinksSerializer()

    def _url(self, name: str, export: AuditExport) -> str:
        path = reverse(name, kwargs={"export_id": export.id})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path

    def to_representation(self, instance: AuditExport) -> dict[str, Any]:
        def when(value: dt.datetime | None) -> str | None:
            return None if value is None else serializers.DateTimeField().to_representation(value)

        done = instance.status == AuditExportStatus.DONE
        return {
            "id": str(instance.id),
            "status": instance.status,
            "kind": "partial" if instance.is_partial else "full",
            "filter": {
                "model": instance.model_name or None,
                "since": when(instance.since),
                "until": when(instance.until),
            },
            "prior_size": instance.prior_size,
            "checkpoint_size": instance.checkpoint_size,
            "records": instance.record_count,
            "bytes": instance.size_bytes,
            "sha256": instance.sha256 or None,
            "error": instance.error or None,
            "created_at": when(instance.created_at),
            "started_at": when(instance.started_at),
            "finished_at": when(instance.finished_at),
            "links": {
                "self": self._url("audit:export", instance),
                "download": self._url("audit:export-download", instance) if done else None,
            },
        }
