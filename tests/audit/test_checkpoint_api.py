"""The checkpoint API: the public key, signed notes, and inclusion and consistency proofs that
verify against the signed roots (RFC 9162), served from the cached tree."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, transaction
from rest_framework.test import APIClient

from audit import merkle
from audit.checkpoints import checkpoint_create
from audit.models import AuditRecord, Checkpoint
from audit.notes import Signer, generate_signer, open_checkpoint, parse_verifier
from audit.services import audit_append
from core.accounts.callers import Caller
from governance.accounts.services import api_key_create
from tests.apitools import assert_error, assert_unauthenticated
from tests.audit.helpers import event, origin, triggers_bypassed
from tests.conftest import client_for, client_with_key

pytestmark = pytest.mark.django_db

PUBLIC_KEY = "/api/v1/audit/public-key"
LATEST = "/api/v1/audit/checkpoints/latest"
INCLUSION = "/api/v1/audit/proofs/inclusion"
CONSISTENCY = "/api/v1/audit/proofs/consistency"


def checkpoint_url(size: int) -> str:
    return f"/api/v1/audit/checkpoints/{size}"


def grow(count: int) -> None:
    start = AuditRecord.objects.count()
    with transaction.atomic():
        audit_append(events=[event(start + n) for n in range(count)])


def sign_at(*sizes: int) -> list[Checkpoint]:
    """Grow the log to each size in turn and sign it there."""
    signed = []
    for size in sizes:
        grow(size - AuditRecord.objects.count())
        checkpoint = checkpoint_create().checkpoint
        assert checkpoint is not None
        signed.append(checkpoint)
    return signed


@pytest.fixture
def signed(signing_key: Signer) -> list[Checkpoint]:
    return sign_at(5, 12)


def personal_key(user: Any, *scopes: str) -> str:
    key, _ = api_key_create(caller=Caller(user=user), user=user, name="mine", scopes=list(scopes))
    return key


def text(response: Any) -> str:
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    return str(response.content.decode("utf-8"))


def body(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.content
    return dict(response.json())


def test_anyone_reads_the_public_key_as_text(api: APIClient, signing_key: Signer) -> None:
    lines = text(api.get(PUBLIC_KEY)).splitlines()
    assert lines == [signing_key.verifier().key_string()]
    assert re.fullmatch(
        r"warden\.test\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}", lines[0]
    )  # 0x01 || 32 bytes


def test_the_public_key_as_json(api: APIClient, signing_key: Signer, alice: Any) -> None:
    expected = {
        "origin": origin(),
        "keys": [
            {
                "name": "warden.test",
                "key_id": signing_key.key_id.hex(),
                "verifier_key": signing_key.verifier().key_string(),
            }
        ],
    }
    assert body(api.get(PUBLIC_KEY, {"format": "json"})) == expected
    assert body(client_for(alice).get(PUBLIC_KEY, HTTP_ACCEPT="application/json")) == expected


def test_the_public_key_lists_configured_verification_keys_first(
    api: APIClient, signing_key: Signer, settings: Any
) -> None:
    _, retired = generate_signer("warden.test/2025")
    settings.AUDIT_VERIFICATION_KEYS = [
        retired,
        signing_key.verifier().key_string(),  # listed twice, published once
    ]
    lines = text(api.get(PUBLIC_KEY)).splitlines()
    assert lines == [retired, signing_key.verifier().key_string()]


def test_the_public_key_without_any_configured_key_is_a_clear_error(
    api: APIClient, settings: Any
) -> None:
    settings.AUDIT_VERIFICATION_KEYS = []
    settings.AUDIT_SIGNING_KEY_FILE = []
    for params in ({}, {"format": "json"}):
        response = api.get(PUBLIC_KEY, params)
        error = assert_error(response, 503, code="not_configured")
        assert response["Content-Type"] == "application/json"
        assert "AUDIT_VERIFICATION_KEYS" in error["message"]


def test_a_bad_credential_is_refused_even_for_the_public_key(api: APIClient) -> None:
    api.credentials(HTTP_AUTHORIZATION="Bearer wdn_nope_nope")
    assert_error(api.get(PUBLIC_KEY), 401)


READS = [
    LATEST,
    checkpoint_url(5),
    f"{INCLUSION}?seq=1&size=5",
    f"{CONSISTENCY}?from=5&to=12",
]


@pytest.mark.parametrize("url", READS)
def test_anonymous_cannot_read_checkpoints_or_proofs(
    api: APIClient, signed: list[Checkpoint], url: str
) -> None:
    assert_unauthenticated(api.get(url))


@pytest.mark.parametrize("url", READS)
def test_a_data_scientist_cannot_read_checkpoints_or_proofs(
    alice: Any, signed: list[Checkpoint], url: str
) -> None:
    assert_error(client_for(alice).get(url), 403, code="permission_denied")


@pytest.mark.parametrize("url", READS)
def test_a_key_without_audit_read_cannot_read_checkpoints_or_proofs(
    gate_only_key: str, signed: list[Checkpoint], url: str
) -> None:
    error = assert_error(client_with_key(gate_only_key).get(url), 403)
    assert "audit:read" in error["message"]


@pytest.mark.parametrize("url", READS)
def test_an_auditor_key_with_audit_read_reads_them(
    audrey: Any, signed: list[Checkpoint], url: str
) -> None:
    response = client_with_key(personal_key(audrey, "audit:read")).get(url)
    assert response.status_code == 200, response.content


def test_the_latest_checkpoint_is_the_exact_note(
    audrey: Any, signed: list[Checkpoint], api: APIClient
) -> None:
    note = text(client_for(audrey).get(LATEST, HTTP_ACCEPT="application/json"))
    assert note == signed[-1].note
    key_lines = text(api.get(PUBLIC_KEY)).splitlines()
    parsed, _ = open_checkpoint(note.encode("utf-8"), [parse_verifier(k) for k in key_lines])
    leaves = [bytes.fromhex(leaf) for leaf in AuditRecord.objects.values_list("leaf", flat=True)]
    assert (parsed.size, parsed.root) == (12, merkle.root(leaves))


def test_a_checkpoint_by_size(audrey: Any, signed: list[Checkpoint]) -> None:
    assert text(client_for(audrey).get(checkpoint_url(5))) == signed[0].note


def test_unknown_checkpoints_are_404(audrey: Any, signing_key: Signer) -> None:
    client = client_for(audrey)
    assert_error(client.get(LATEST), 404, code="not_found")
    sign_at(3)
    assert_error(client.get(checkpoint_url(4)), 404, code="not_found")
    assert client.get("/api/v1/audit/checkpoints/x").status_code == 404


def test_inclusion_proofs_verify_against_the_signed_roots(
    audrey: Any, signed: list[Checkpoint]
) -> None:
    client = client_for(audrey)
    for checkpoint in signed:
        root = bytes.fromhex(checkpoint.root)
        for seq in range(checkpoint.size):
            proof = body(client.get(INCLUSION, {"seq": seq, "size": checkpoint.size}))
            record = AuditRecord.objects.get(seq=seq)
            leaf = hashlib.sha256(b"\x00" + record.body.encode("utf-8")).digest()
            assert proof["leaf"] == leaf.hex()
            assert (proof["seq"], proof["size"], proof["root"]) == (
                seq,
                checkpoint.size,
                checkpoint.root,
            )
            assert proof["checkpoint"] == checkpoint.note
            path = [bytes.fromhex(node) for node in proof["proof"]]
            assert merkle.verify_inclusion(leaf, seq, checkpoint.size, path, root)


def test_an_inclusion_proof_defaults_to_the_latest_checkpoint(
    audrey: Any, signed: list[Checkpoint]
) -> None:
    proof = body(client_for(audrey).get(INCLUSION, {"seq": 7}))
    assert (proof["size"], proof["checkpoint"]) == (12, signed[-1].note)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({}, "seq"),
        ({"seq": "x", "size": 5}, "seq"),
        ({"seq": -1, "size": 5}, "seq"),
        ({"seq": 1, "size": "five"}, "size"),
        ({"seq": 1, "size": 0}, "size"),
        ({"seq": 5, "size": 5}, "seq"),  # beyond the checkpoint
    ],
)
def test_malformed_or_out_of_range_inclusion_queries_are_400(
    audrey: Any, signed: list[Checkpoint], query: dict[str, Any], field: str
) -> None:
    assert_error(client_for(audrey).get(INCLUSION, query), 400, field=field)


def test_an_inclusion_proof_needs_a_checkpointed_size(
    audrey: Any, signed: list[Checkpoint]
) -> None:
    error = assert_error(client_for(audrey).get(INCLUSION, {"seq": 1, "size": 6}), 404)
    assert "no checkpoint of size 6" in error["message"]


def test_consistency_proofs_verify_against_both_signed_roots(
    audrey: Any, signing_key: Signer
) -> None:
    signed = sign_at(1, 2, 5, 8, 12)
    client = client_for(audrey)
    for old in signed:
        for new in signed:
            if old.size > new.size:
                continue
            proof = body(client.get(CONSISTENCY, {"from": old.size, "to": new.size}))
            assert proof["from_size"] == old.size
            assert proof["to_size"] == new.size
            assert (proof["from_root"], proof["to_root"]) == (old.root, new.root)
            assert (proof["from_checkpoint"], proof["to_checkpoint"]) == (old.note, new.note)
            path = [bytes.fromhex(node) for node in proof["proof"]]
            assert merkle.verify_consistency(
                old.size, new.size, bytes.fromhex(old.root), bytes.fromhex(new.root), path
            )


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"to": 12}, "from"),
        ({"from": 5}, "to"),
        ({"from": "x", "to": 12}, "from"),
        ({"from": 0, "to": 12}, "from"),
        ({"from": 12, "to": 5}, "from"),
    ],
)
def test_malformed_consistency_queries_are_400(
    audrey: Any, signed: list[Checkpoint], query: dict[str, Any], field: str
) -> None:
    assert_error(client_for(audrey).get(CONSISTENCY, query), 400, field=field)


def test_a_consistency_proof_needs_checkpointed_sizes(
    audrey: Any, signed: list[Checkpoint]
) -> None:
    assert_error(client_for(audrey).get(CONSISTENCY, {"from": 4, "to": 12}), 404)
    assert_error(client_for(audrey).get(CONSISTENCY, {"from": 5, "to": 13}), 404)


class LeafReads:
    """Counts the leaves the API reads: ``(start, end)`` of every leaf range query."""

    def __init__(self) -> None:
        self.ranges: list[tuple[int, int]] = []
        self.record_queries = 0

    def __call__(
        self, execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any
    ) -> Any:
        if "audit_auditrecord" in sql:
            self.record_queries += 1
            if sql.startswith("SELECT seq, leaf FROM audit_auditrecord"):
                self.ranges.append((int(params[1]), int(params[2])))
        return execute(sql, params, many, context)

    @property
    def leaves(self) -> int:
        return sum(end - start for start, end in self.ranges)


@pytest.mark.slow
def test_proofs_in_a_log_of_thousands_read_a_few_blocks_of_leaves(
    audrey: Any, signing_key: Signer
) -> None:
    small, large = sign_at(1000, 3000)
    client = client_for(audrey)
    root = bytes.fromhex(large.root)
    for seq in (0, 1, 999, 1500, 2815, 2816, 2999):
        reads = LeafReads()
        with connection.execute_wrapper(reads):
            proof = body(client.get(INCLUSION, {"seq": seq, "size": 3000}))
        path = [bytes.fromhex(node) for node in proof["proof"]]
        assert merkle.verify_inclusion(bytes.fromhex(proof["leaf"]), seq, 3000, path, root)
        # The leaf's own block of 256 and the tail beyond the last full block, at most.
        assert reads.leaves <= 2 * 256, reads.ranges
        assert reads.record_queries <= 3

    reads = LeafReads()
    with connection.execute_wrapper(reads):
        proof = body(client.get(CONSISTENCY, {"from": 1000, "to": 3000}))
    path = [bytes.fromhex(node) for node in proof["proof"]]
    assert merkle.verify_consistency(1000, 3000, bytes.fromhex(small.root), root, path)
    assert reads.leaves <= 3 * 256, reads.ranges
    assert reads.record_queries <= 3

    # The control: without the cached nodes the same proof hashes most of the log.
    with triggers_bypassed() as cursor:
        cursor.execute("DELETE FROM audit_treenode")
    reads = LeafReads()
    with connection.execute_wrapper(reads):
        assert body(client.get(INCLUSION, {"seq": 1500, "size": 3000}))["proof"]
    assert reads.leaves >= 2000


def test_the_schema_lists_the_checkpoint_endpoints(api: APIClient) -> None:
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    for path in (
        "/api/v1/audit/public-key",
        "/api/v1/audit/checkpoints/latest",
        "/api/v1/audit/checkpoints/{size}",
        "/api/v1/audit/proofs/inclusion",
        "/api/v1/audit/proofs/consistency",
    ):
        assert path in schema["paths"], path
    public_key = schema["paths"]["/api/v1/audit/public-key"]["get"]
    assert set(public_key["responses"]["200"]["content"]) == {"text/plain", "application/json"}
    inclusion = schema["paths"]["/api/v1/audit/proofs/inclusion"]["get"]
    assert {p["name"] for p in inclusion["parameters"]} == {"seq", "size"}
    assert set(inclusion["responses"]) >= {"200", "400", "401", "403", "404"}
    consistency = schema["paths"]["/api/v1/audit/proofs/consistency"]["get"]
    assert {p["name"] for p in consistency["parameters"]} == {"from", "to"}
