"""The offline verifier over export bundles (AUDIT_SPEC sections 6-8, docs/audit-bundle.md).

Every tamper case of the battery is made the way the owner of the database would make it and
then exported: records edited, removed, renumbered, re-chained, checkpoints re-signed; the
forger also rewrites the unsigned manifest (``Bundle.zip`` refreshes it), so each case is
caught by the records, the notes and the trusted key alone, with the code and position named.
Bundles are built in memory (``tests/audit/bundles.py``); ``test_exports`` checks that the
exporter produces the same format from a real database.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import zipfile
from collections.abc import Callable
from dataclasses import astuple
from pathlib import Path
from typing import Any

import pytest

from audit import verifier
from audit.notes import format_checkpoint, sign_note
from audit.verifier import (
    RECORDS,
    BundleError,
    BundleReport,
    canonical_dumps,
    main,
    verify_bundle,
)
from tests.audit.bundles import (
    ORIGIN,
    OTHER_SIGNER,
    SIGNER,
    Bundle,
    chain,
    checkpoint,
    full_bundle,
    leaves,
    make_log,
    partial_bundle,
    record,
)
from tests.audit.helpers import NONCANONICAL

# No database is touched: it runs once, in the SQLite pass.
pytestmark = [pytest.mark.no_audit_guard, pytest.mark.database_free]

SIZES = [10, 25, 40]
KEYS = [SIGNER.verifier()]
KEY_LINE = SIGNER.verifier().key_string()


def verify(bundle: Bundle | bytes, *, prior: bytes | None = None, **kwargs: Any) -> BundleReport:
    data = bundle if isinstance(bundle, bytes) else bundle.zip()
    return verify_bundle(io.BytesIO(data), kwargs.pop("keys", KEYS), prior=prior, **kwargs)


def codes(report: BundleReport) -> list[tuple[str, int | str | None]]:
    """(code, position) of every finding: the seq, else the file, else None."""
    return [(f.code, f.seq if f.seq is not None else f.file) for f in report.findings]


def errors(report: BundleReport) -> list[tuple[str, int | str | None]]:
    return [item for item in codes(report) if item[0].startswith("E_")]


def records_of(bodies: list[bytes]) -> list[dict[str, Any]]:
    return [json.loads(body) for body in bodies]


def resigned(bodies: list[bytes], sizes: list[int] = SIZES) -> Bundle:
    """A full export of ``bodies`` with fresh checkpoints signed by the real key: what the
    owner of the database gets when the honest checkpointer is fooled into signing a rewrite."""
    return full_bundle(bodies, sizes)


@pytest.fixture
def log() -> list[bytes]:
    return make_log(40)


@pytest.fixture
def bundle(log: list[bytes]) -> Bundle:
    return full_bundle(log, SIZES)


def test_an_intact_full_export_verifies(bundle: Bundle) -> None:
    report = verify(bundle)
    assert report.ok and report.findings == []
    assert (report.kind, report.records, report.first_seq, report.last_seq) == ("full", 40, 0, 39)
    assert [c.size for c in report.checkpoints] == SIZES
    assert report.anchored == 40 and report.origin == ORIGIN
    summary = report.as_dict()
    assert summary["ok"] is True and summary["unanchored"] == 0 and summary["errors"] == 0
    assert summary["checkpoints"][-1]["keys"] == [SIGNER.name]


def test_an_empty_log_exported_at_size_zero_verifies() -> None:
    report = verify(full_bundle([], [0]))
    assert report.ok, codes(report)
    assert report.records == 0 and [c.size for c in report.checkpoints] == [0]


def test_an_intact_partial_export_verifies_and_says_it_is_partial(log: list[bytes]) -> None:
    report = verify(partial_bundle(log, [1, 3, 4, 5, 39], prior=10), prior=checkpoint(log, 10))
    assert report.ok, codes(report)
    assert codes(report) == [("W_PARTIAL", None)]
    assert report.kind == "partial" and report.records == 5


def test_both_keys_of_a_rotation_are_accepted_alone_or_together(log: list[bytes]) -> None:
    new = OTHER_SIGNER.verifier()
    bundle = full_bundle(log, SIZES)
    for size in SIZES:
        root = verifier.root(leaves(log[:size]))
        bundle.files[f"checkpoints/{size}.note"] = sign_note(
            format_checkpoint(ORIGIN, size, root), [SIGNER, OTHER_SIGNER]
        )
    for keys in ([SIGNER.verifier()], [new], [SIGNER.verifier(), new]):
        assert verify(bundle, keys=keys).ok


def test_an_edited_body_breaks_the_next_link_and_the_roots_above_it(log: list[bytes]) -> None:
    edited = records_of(log)
    edited[12]["data"]["note"] = "edited"
    log[12] = canonical_dumps(edited[12])
    report = verify(full_bundle_keeping_notes(log, make_log(40)))
    assert errors(report) == [
        ("E_PREV", 13),
        ("E_ROOT", "checkpoints/25.note"),
        ("E_ROOT", "checkpoints/40.note"),
    ]


def full_bundle_keeping_notes(bodies: list[bytes], original: list[bytes]) -> Bundle:
    """Records replaced by ``bodies``, checkpoints still those signed over ``original``."""
    bundle = full_bundle(original, SIZES)
    bundle.bodies = bodies
    return bundle


def test_an_edit_with_the_rest_of_the_chain_rehashed_is_caught_by_the_signed_roots(
    log: list[bytes],
) -> None:
    rewritten = records_of(log)
    rewritten[12]["data"]["note"] = "edited"
    report = verify(full_bundle_keeping_notes(chain(rewritten), log))
    assert errors(report) == [("E_ROOT", "checkpoints/25.note"), ("E_ROOT", "checkpoints/40.note")]


def test_a_rewrite_with_checkpoints_signed_by_another_key_has_no_trusted_signature(
    log: list[bytes],
) -> None:
    rewritten = records_of(log)
    rewritten[12]["data"]["note"] = "edited"
    bundle = full_bundle(chain(rewritten), SIZES)
    bodies = chain(rewritten)
    for size in SIZES:
        bundle.files[f"checkpoints/{size}.note"] = checkpoint(bodies, size, signers=(OTHER_SIGNER,))
    report = verify(bundle)
    assert errors(report) == [
        ("E_NO_TRUSTED_SIG", "checkpoints/10.note"),
        ("E_NO_TRUSTED_SIG", "checkpoints/25.note"),
        ("E_NO_TRUSTED_SIG", "checkpoints/40.note"),
        ("E_NO_TRUSTED_SIG", None),
    ]


def test_a_rewrite_re_signed_with_the_real_key_is_caught_only_by_a_prior_checkpoint(
    log: list[bytes],
) -> None:
    rewritten = records_of(log)
    rewritten[12]["data"]["note"] = "edited"
    forged = resigned(chain(rewritten))
    assert verify(forged).ok  # self-consistent: nothing in the bundle can show it
    kept_at_25 = checkpoint(log, 25)  # a regulator's copy of a checkpoint before the rewrite
    report = verify(forged, prior=kept_at_25)
    assert errors(report) == [("E_FORK", "--prior")]
    fork = report.findings[0].message
    assert kept_at_25.decode() in fork and forged.files["checkpoints/25.note"].decode() in fork
    report = verify(forged, prior=checkpoint(log, 20))  # a size the bundle has no note for
    assert errors(report) == [("E_CONSISTENCY", "--prior")]
    assert verify(forged, prior=checkpoint(log, 12)).ok  # before the edit: still consistent


def test_a_deleted_record_is_a_gap_a_broken_link_and_a_truncation(log: list[bytes]) -> None:
    report = verify(full_bundle_keeping_notes(log[:17] + log[18:], log))
    assert errors(report) == [
        ("E_SEQ_GAP", 17),
        ("E_PREV", 18),
        ("E_ROOT", "checkpoints/25.note"),
        ("E_TRUNCATED", "checkpoints/40.note"),
    ]


def test_a_deleted_and_renumbered_record_breaks_the_link(log: list[bytes]) -> None:
    kept = records_of(log[:17] + log[18:])
    for seq, item in enumerate(kept):
        item["seq"] = seq
    report = verify(full_bundle_keeping_notes([canonical_dumps(r) for r in kept], log))
    found = errors(report)
    # every renumbered body differs from the one its successor links to
    assert found[0] == ("E_PREV", 17) and {code for code, _ in found} == {
        "E_PREV",
        "E_ROOT",
        "E_TRUNCATED",
    }
    assert ("E_TRUNCATED", "checkpoints/40.note") in found


def test_a_forged_record_inserted_in_the_middle_is_caught(log: list[bytes]) -> None:
    forged = canonical_dumps(record(20, verifier.leaf_hash(log[19]), action="forged.approval"))
    report = verify(full_bundle_keeping_notes([*log[:20], forged, *log[20:]], log))
    assert errors(report) == [
        ("E_SEQ_DUP", 20),
        ("E_PREV", 20),
        ("E_ROOT", "checkpoints/25.note"),
        ("E_ROOT", "checkpoints/40.note"),
    ]
    assert ("W_UNANCHORED_TAIL", 40) in codes(report)


def test_two_swapped_records_are_caught_at_the_first_swapped_seq(log: list[bytes]) -> None:
    swapped = [*log[:15], log[16], log[15], *log[17:]]
    report = verify(full_bundle_keeping_notes(swapped, log))
    assert errors(report)[0] == ("E_SEQ_GAP", 15)
    assert {("E_ROOT", "checkpoints/25.note"), ("E_ROOT", "checkpoints/40.note")} <= set(
        errors(report)
    )


def test_a_tail_truncated_after_the_last_checkpoint_is_unanchored_and_caught_by_a_prior() -> None:
    log = make_log(45)
    bundle = full_bundle(log[:42], SIZES)  # the log had 45 records; 3 cut after checkpoint 40
    report = verify(bundle)
    assert report.ok and codes(report) == [("W_UNANCHORED_TAIL", 40)]
    assert report.as_dict()["unanchored"] == 2
    report = verify(bundle, prior=checkpoint(log, 45))
    assert errors(report) == [("E_TRUNCATED", "--prior")]


def test_a_tail_truncated_below_the_last_checkpoint_is_caught(log: list[bytes]) -> None:
    report = verify(full_bundle_keeping_notes(log[:33], log))
    assert errors(report) == [("E_TRUNCATED", "checkpoints/40.note")]
    # with that checkpoint removed as well, only the regulator's copy shows the cut
    cut = full_bundle(log[:33], [10, 25])
    assert verify(cut).ok
    assert errors(verify(cut, prior=checkpoint(log, 40))) == [("E_TRUNCATED", "--prior")]


def test_an_old_copy_restored_and_appended_to_is_a_fork() -> None:
    before = make_log(40)
    restored = records_of(before[:25]) + [
        record(seq, "", action="model_version.retired") for seq in range(25, 45)
    ]
    after = chain(restored)
    bundle = full_bundle(after, [10, 25, 40, 45])  # signed by a checkpointer that was fooled
    assert verify(bundle).ok
    kept = checkpoint(before, 40)
    report = verify(bundle, prior=kept)
    assert errors(report) == [("E_FORK", "--prior")]
    assert kept.decode() in report.findings[0].message
    kept_30 = checkpoint(before, 30)
    assert errors(verify(bundle, prior=kept_30)) == [("E_CONSISTENCY", "--prior")]


def non_canonical_cases() -> list[str]:
    return sorted(set(NONCANONICAL) - {"trailing-newline"})  # a jsonl line cannot hold one


@pytest.mark.parametrize("case", non_canonical_cases())
def test_a_non_canonical_body_is_caught_even_when_chained_and_signed(
    log: list[bytes], case: str
) -> None:
    bodies = list(log)
    bodies[5] = NONCANONICAL[case](bodies[5])
    prev = verifier.leaf_hash(bodies[5])  # re-chain the rest over the forged bytes
    for seq in range(6, len(bodies)):
        bodies[seq] = canonical_dumps({**json.loads(bodies[seq]), "prev": prev})
        prev = verifier.leaf_hash(bodies[seq])
    report = verify(resigned(bodies))
    assert [code for code, _ in errors(report)] == ["E_NONCANONICAL"]
    assert errors(report)[0][1] == 5


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"log": "warden.other/audit"}, "E_ORIGIN"),
        ({"v": 2}, "E_VERSION"),
        ({"ts": "2026-03-01T08:59:59.000000Z"}, "E_TS_REGRESSION"),
        ({"actor": "root"}, "E_PARSE"),
    ],
    ids=["spliced-from-another-log", "unknown-version", "clock-went-back", "wrong-type"],
)
def test_a_record_out_of_place_is_caught_even_when_chained_and_signed(
    log: list[bytes], change: dict[str, Any], code: str
) -> None:
    records = records_of(log)
    records[7].update(change)
    report = verify(resigned(chain(records)))
    assert errors(report) == [(code, 7)]


def signature_record(seq: int, request: int) -> dict[str, Any]:
    content = {
        "request": request,
        "model": "credit-risk",
        "version": 3,
        "artifact_digest": "sha256:" + "ab" * 32,
        "environment": "prod",
        "policy_version": 2,
        "step": 1,
        "decision": "approve",
        "meaning": "I approve this deployment",
        "signer": "7",
        "printed_name": "Vera Validator",
        "signed_at": "2026-03-01T09:00:09.000000Z",
    }
    return record(
        seq,
        "",
        action="signoff.signed",
        data={
            "signed_content": content,
            "signed_sha256": hashlib.sha256(canonical_dumps(content)).hexdigest(),
        },
    )


def test_a_signature_record_moved_onto_another_request_is_caught(log: list[bytes]) -> None:
    records = records_of(log)
    records[9] = signature_record(9, request=5)
    assert verify(resigned(chain(records))).ok
    records[9]["data"]["signed_content"]["request"] = 6  # moved; the digest no longer matches
    assert errors(verify(resigned(chain(records)))) == [("E_ESIG", 9)]
    records[9] = signature_record(9, request=5)
    del records[9]["data"]["signed_content"]["printed_name"]
    records[9]["data"]["signed_sha256"] = hashlib.sha256(
        canonical_dumps(records[9]["data"]["signed_content"])
    ).hexdigest()
    assert errors(verify(resigned(chain(records)))) == [("E_ESIG", 9)]


def test_a_body_that_is_not_json_and_a_missing_final_newline_are_parse_errors(
    log: list[bytes],
) -> None:
    bundle = full_bundle_keeping_notes(log, log)
    bundle.files["records.jsonl"] = bundle.files["records.jsonl"][:-1]
    assert verify(bundle).findings[0] == verifier.Finding(
        "E_PARSE", None, "records.jsonl does not end in a newline", "records.jsonl"
    )
    bundle.bodies = [*log[:3], b"{not json", *log[4:]]
    assert ("E_PARSE", 3) in errors(verify(bundle))


def edit_note(bundle: Bundle, size: int, edit: Callable[[bytes], bytes]) -> Bundle:
    bundle.files[f"checkpoints/{size}.note"] = edit(bundle.files[f"checkpoints/{size}.note"])
    return bundle


def signed_body(text: str) -> bytes:
    return sign_note(text.encode(), [SIGNER])


@pytest.mark.parametrize(
    ("edit", "code"),
    [
        (lambda note: note.replace(b"\n40\n", b"\n41\n", 1), "E_SIG"),
        (lambda note: note.replace(b"\n40\n", b"\n040\n", 1), "E_SIG"),
        (lambda note: note.replace(ORIGIN.encode(), b"warden.test/audjt", 1), "E_SIG"),
        (lambda note: note[:-60] + bytes([note[-60] ^ 1]) + note[-59:], "E_SIG"),
        (lambda note: note.replace(b"\n", b"\r\n"), "E_NOTE"),
        (lambda note: note.split(b"\n\n")[0] + b"\n", "E_NOTE"),
    ],
    ids=["size", "size-007", "origin", "signature", "crlf", "unsigned"],
)
def test_an_edited_checkpoint_note_is_refused(
    bundle: Bundle, edit: Callable[[bytes], bytes], code: str
) -> None:
    report = verify(edit_note(bundle, 40, edit))
    assert errors(report)[0] == (code, "checkpoints/40.note")
    assert ("E_TRUNCATED", "checkpoints/40.note") not in errors(report)


def test_an_edited_root_is_refused(bundle: Bundle, log: list[bytes]) -> None:
    root = verifier.root(leaves(log))
    other = bytes([root[0] ^ 1]) + root[1:]
    forged = sign_note(format_checkpoint(ORIGIN, 40, other), [OTHER_SIGNER])
    bundle.files["checkpoints/40.note"] = bundle.files["checkpoints/40.note"].replace(
        format_checkpoint(ORIGIN, 40, root), format_checkpoint(ORIGIN, 40, other)
    )
    assert errors(verify(bundle))[0] == ("E_SIG", "checkpoints/40.note")
    bundle.files["checkpoints/40.note"] = forged
    assert errors(verify(bundle))[0] == ("E_NO_TRUSTED_SIG", "checkpoints/40.note")


def test_malformed_checkpoints_signed_with_the_real_key_are_still_refused(
    bundle: Bundle, log: list[bytes]
) -> None:
    root = format_checkpoint(ORIGIN, 40, verifier.root(leaves(log))).split(b"\n")[2].decode()
    bundle.files["checkpoints/40.note"] = signed_body(f"{ORIGIN}\n040\n{root}\n")
    assert errors(verify(bundle))[0] == ("E_NOTE", "checkpoints/40.note")
    bundle.files["checkpoints/40.note"] = checkpoint(log, 40).replace(b"\n", b"\r\n")
    assert errors(verify(bundle))[0] == ("E_NOTE", "checkpoints/40.note")
    bundle.files["checkpoints/40.note"] = checkpoint(log, 39)  # the name says 40
    assert errors(verify(bundle))[0] == ("E_NOTE", "checkpoints/40.note")
    bundle.files["checkpoints/40.note"] = checkpoint(log, 40)
    bundle.files["checkpoints/10.note"] = checkpoint(log, 10, origin="warden.other/audit")
    assert errors(verify(bundle)) == [("E_ORIGIN", "checkpoints/10.note")]
    assert ("E_ORIGIN", "checkpoints/40.note") in errors(verify(bundle, origin="warden.other/x"))


def test_a_checkpoint_file_with_a_non_canonical_name_is_refused(
    bundle: Bundle, log: list[bytes]
) -> None:
    bundle.files["checkpoints/040.note"] = bundle.files.pop("checkpoints/40.note")
    assert ("E_NOTE", "checkpoints/040.note") in errors(verify(bundle))


SEQS = [1, 3, 4, 5, 21, 39]


def test_a_tampered_record_of_a_partial_export_fails_its_inclusion_proof(
    log: list[bytes],
) -> None:
    bundle = partial_bundle(log, SEQS)
    bodies = bundle.bodies
    edited = json.loads(bodies[4])
    edited["data"]["note"] = "edited"
    bundle.bodies = [*bodies[:4], canonical_dumps(edited), *bodies[5:]]
    assert errors(verify(bundle)) == [("E_ROOT", 21)]


def test_a_partial_export_links_neighbours_and_keeps_order(log: list[bytes]) -> None:
    bundle = partial_bundle(log, SEQS)
    bodies = bundle.bodies
    bundle.bodies = [bodies[0], bodies[2], bodies[1], *bodies[3:]]  # 1, 4, 3, 5, ...
    found = errors(verify(bundle))
    assert ("E_SEQ_DUP", 3) in found


def test_partial_export_proofs_must_match_their_records(log: list[bytes]) -> None:
    bundle = partial_bundle(log, SEQS)
    lines = bundle.files["proofs/inclusion.jsonl"].split(b"\n")
    bundle.files["proofs/inclusion.jsonl"] = b"\n".join(lines[:2] + lines[3:])  # one missing
    found = errors(verify(bundle))
    assert ("E_ROOT", 4) in found and ("E_ROOT", 39) in found
    bundle = partial_bundle(log, SEQS)
    line = json.loads(lines[0])
    line["proof"][0] = "00" * 32
    bundle.files["proofs/inclusion.jsonl"] = b"\n".join([json.dumps(line).encode(), *lines[1:]])
    assert errors(verify(bundle)) == [("E_ROOT", 1)]


def test_a_partial_export_needs_a_trusted_checkpoint_and_consistency_to_a_prior(
    log: list[bytes],
) -> None:
    assert errors(verify(partial_bundle(log, SEQS), prior=checkpoint(log, 10))) == [
        ("E_CONSISTENCY", "--prior")
    ]
    forked = make_log(40)
    forked_records = records_of(forked)
    forked_records[2]["data"]["note"] = "another history"
    other = chain(forked_records)
    assert errors(verify(partial_bundle(log, SEQS, prior=10), prior=checkpoint(other, 10))) == [
        ("E_FORK", "--prior")
    ]
    bundle = partial_bundle(log, SEQS, prior=10)
    bundle.files["checkpoints/10.note"] = checkpoint(other, 10)
    assert ("E_CONSISTENCY", "proofs/consistency.jsonl") in errors(verify(bundle))
    bundle = partial_bundle(log, SEQS)
    bundle.files["checkpoints/40.note"] = checkpoint(log, 40, signers=(OTHER_SIGNER,))
    found = errors(verify(bundle))
    assert ("E_NO_TRUSTED_SIG", None) in found and ("E_ROOT", 1) in found


def test_a_partial_export_cannot_pass_for_a_full_one(log: list[bytes]) -> None:
    bundle = partial_bundle(log, SEQS)
    del bundle.files["proofs/inclusion.jsonl"]
    bundle.manifest["kind"] = "full"
    found = errors(verify(bundle))
    assert ("E_SEQ_GAP", 0) in found and ("E_TRUNCATED", "checkpoints/40.note") in found


def test_a_manifest_that_disagrees_with_the_bundle_is_reported(bundle: Bundle) -> None:
    data = bundle.zip()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    manifest = json.loads(files["manifest.json"])
    manifest["files"]["records.jsonl"] = "00" * 32
    manifest["kind"] = "partial"
    files["manifest.json"] = json.dumps(manifest).encode()
    files["notes.txt"] = b"an unexpected file"
    report = verify(Bundle(files).zip(refresh_manifest=False))
    assert [message for code, _, message, _ in map(astuple, report.errors)] == [
        "unexpected file 'notes.txt' in the bundle",
        "notes.txt is not listed",
        "the SHA-256 of records.jsonl is not the one listed",
        "kind 'partial', but the bundle is full",
    ]
    del files["manifest.json"]
    assert ("E_MANIFEST", "manifest.json") in errors(
        verify(Bundle(files).zip(refresh_manifest=False))
    )


def zip_of(members: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


def test_what_cannot_be_read_at_all_is_a_bundle_error(bundle: Bundle) -> None:
    with pytest.raises(BundleError, match="not a readable zip"):
        verify(b"PK\x03\x04 not really a zip")
    with pytest.raises(BundleError, match=r"no records\.jsonl"):
        verify(zip_of([("manifest.json", b"{}")]))
    with (
        pytest.warns(UserWarning, match="Duplicate name"),
        pytest.raises(BundleError, match="more than one"),
    ):
        verify(zip_of([("records.jsonl", b""), ("records.jsonl", b"")]))
    with pytest.raises(BundleError, match="no trusted verification key"):
        verify(bundle, keys=[])


FLIPS = 100_000
# The flips are checked in shards that pytest-xdist spreads over its workers; together they
# are the one sequence of FLIPS flips drawn from the battery's seed.
FLIP_SHARDS = 10
FLIP_TARGETS = ("records.jsonl", "checkpoints/4.note", "checkpoints/6.note")


def flip_bundle() -> Bundle:
    """A small bundle, so that every byte of it is flipped many times over."""
    return full_bundle(make_log(6), [4, 6])


def flips(bundle: Bundle) -> list[tuple[str, int, int]]:
    """The battery's FLIPS flips, (file, position, XOR mask): positions uniform over all bytes
    of the records and notes, masks uniform over 1..255 (the 255 other byte values)."""
    offsets = []
    for name in FLIP_TARGETS:
        offsets.extend((name, position) for position in range(len(bundle.files[name])))
    rng = random.Random(20261122)
    drawn = []
    for _ in range(FLIPS):
        name, position = offsets[rng.randrange(len(offsets))]
        drawn.append((name, position, rng.randrange(1, 256)))
    return drawn


def test_the_flip_battery_covers_every_file_with_its_flips() -> None:
    drawn = flips(flip_bundle())
    seen: dict[str, int] = dict.fromkeys(FLIP_TARGETS, 0)
    for name, _, _ in drawn:
        seen[name] += 1
    assert sum(seen.values()) == FLIPS and all(seen.values()), seen
    assert sum(len(drawn[shard::FLIP_SHARDS]) for shard in range(FLIP_SHARDS)) == FLIPS


@pytest.mark.slow
@pytest.mark.parametrize("shard", range(FLIP_SHARDS))
def test_random_single_byte_flips_are_never_accepted(shard: int) -> None:
    """AUDIT_SPEC section 8: at least 10^5 random single-byte changes to the unpacked records
    and notes, re-zipped with a manifest rewritten to match, and not one is accepted (this is
    every FLIP_SHARDS-th of them, from ``shard`` on)."""
    bundle = flip_bundle()
    accepted = []
    for name, position, mask in flips(bundle)[shard::FLIP_SHARDS]:
        data = bytearray(bundle.files[name])
        data[position] ^= mask
        flipped = Bundle({**bundle.files, name: bytes(data)}, bundle.manifest)
        if verify(flipped).ok:
            accepted.append((name, position, bytes(data)))
    assert accepted == []


def run(
    tmp_path: Path, bundle: Bundle, *args: str, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    """Exit status and stdout+stderr of ``python -m audit.verifier BUNDLE ARGS``."""
    path = tmp_path / "bundle.zip"
    path.write_bytes(bundle.zip())
    status = main([str(path), *args])
    captured = capsys.readouterr()
    return status, captured.out + captured.err


def test_the_command_prints_a_summary_and_exits_0_when_intact(
    tmp_path: Path, bundle: Bundle, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out = run(tmp_path, bundle, "--key", KEY_LINE, capsys=capsys)
    assert status == 0
    assert "result       OK" in out and "records      40 (seq 0..39)" in out
    assert "completeness proven" in out


def test_the_command_reports_findings_as_json_and_exits_1(
    tmp_path: Path, log: list[bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = full_bundle_keeping_notes(log[:17] + log[18:], log)
    key_file = tmp_path / "warden.pub"
    key_file.write_text(KEY_LINE + "\n")
    status, out = run(tmp_path, bundle, "--key", str(key_file), "--json", capsys=capsys)
    assert status == 1
    report = json.loads(out)
    assert report["ok"] is False and report["records"] == 39
    assert report["findings"][0] == {
        "code": "E_SEQ_GAP",
        "seq": 17,
        "message": "seq 17 missing before 18",
    }


def test_the_command_checks_a_prior_note_and_prints_both_notes_of_a_fork(
    tmp_path: Path, log: list[bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    rewritten = records_of(log)
    rewritten[3]["data"]["note"] = "edited"
    kept = tmp_path / "kept.note"
    kept.write_bytes(checkpoint(log, 25))
    status, out = run(
        tmp_path, resigned(chain(rewritten)), "--key", KEY_LINE, "--prior", str(kept), capsys=capsys
    )
    assert status == 1
    assert "E_FORK" in out and checkpoint(log, 25).decode() in out


def test_the_command_exits_2_when_it_cannot_verify(
    tmp_path: Path, bundle: Bundle, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out = run(tmp_path, bundle, "--key", "warden.test+00000000+AAAA", capsys=capsys)
    assert status == 2
    assert out.startswith("cannot verify: --key: verifier key: unsupported algorithm")
    (tmp_path / "junk.zip").write_bytes(b"junk")
    assert main([str(tmp_path / "junk.zip"), "--key", KEY_LINE]) == 2
    assert "not a readable zip" in capsys.readouterr().err
    assert main([str(tmp_path / "bundle.zip"), "--key", KEY_LINE, "--prior", "/nonexistent"]) == 2


def test_checking_bodies_in_worker_processes_finds_exactly_the_same(
    monkeypatch: pytest.MonkeyPatch, log: list[bytes]
) -> None:
    monkeypatch.setattr(verifier, "_PARALLEL_FROM", 0)
    monkeypatch.setattr(verifier, "_CHUNK", 7)
    tampered = full_bundle_keeping_notes(log[:17] + log[18:], log)
    serial = verify(tampered, workers=1)
    parallel = verify(tampered, workers=2)
    assert parallel.findings == serial.findings and parallel.records == serial.records


RUN = 8  # a small power-of-two chunk, so that a 40-record log is five runs
BOUNDARY_SIZES = [5, 8, 13, 16, 40]  # checkpoints inside runs and at their ends


def exactly(bodies: list[bytes], origin: str | None = None) -> list[verifier.Checked]:
    """``summarise_bodies`` as if no run were ever clean: every body through ``accept``."""
    return verifier.check_bodies(bodies)


def outcome(report: BundleReport) -> tuple[Any, ...]:
    """Everything a report says, findings in full (code, seq, message, file) and in order."""
    return (
        report.ok,
        report.origin,
        report.kind,
        report.records,
        report.first_seq,
        report.last_seq,
        report.anchored,
        [astuple(finding) for finding in report.findings],
    )


def fast_and_exact(
    monkeypatch: pytest.MonkeyPatch, bundle: Bundle, *, parallel: bool = False, **kwargs: Any
) -> tuple[BundleReport, list[bool]]:
    """Verify with ``RUN``-record chunks by clean runs in one process (and, with ``parallel``,
    in two worker processes), and record by record; assert that all agree. Returns the
    report and what ``ChainVerifier.accept_run`` answered for each clean run, in order."""
    monkeypatch.setattr(verifier, "_PARALLEL_FROM", 0)
    monkeypatch.setattr(verifier, "_CHUNK", RUN)
    data = bundle.zip()
    answers: list[bool] = []
    accept_run = verifier.ChainVerifier.accept_run

    def recording(self: verifier.ChainVerifier, run: verifier.CleanRun) -> bool:
        answers.append(accept_run(self, run))
        return answers[-1]

    with monkeypatch.context() as patch:
        patch.setattr(verifier.ChainVerifier, "accept_run", recording)
        fast = verify(data, workers=1, **kwargs)
    if parallel:
        assert outcome(verify(data, workers=2, **kwargs)) == outcome(fast)
    with monkeypatch.context() as patch:
        patch.setattr(verifier, "summarise_bodies", exactly)
        assert outcome(verify(data, workers=1, **kwargs)) == outcome(fast)
    return fast, answers


def test_compact_range_subtrees_appended_at_aligned_places_give_the_naive_root() -> None:
    rng = random.Random(20261123)
    for _ in range(200):
        tree, appended = verifier._CompactRange(), []
        for _ in range(rng.randrange(1, 12)):
            height = rng.choice([h for h in range(6) if tree.size % (1 << h) == 0])
            hashes = [rng.randbytes(32) for _ in range(1 << height)]
            if rng.random() < 0.3:
                tree.extend(b"".join(hashes))
            else:
                tree.append_subtree(verifier.root(hashes), height)
            appended += hashes
            assert tree.size == len(appended)
            assert tree.root() == verifier.root(appended)
    tree = verifier._CompactRange()
    tree.append(b"\x00" * 32)
    with pytest.raises(ValueError, match="cannot start at leaf 1"):
        tree.append_subtree(b"\x01" * 32, 1)


def test_a_clean_run_is_summarised_and_anything_else_checked_body_by_body(
    log: list[bytes],
) -> None:
    run = verifier.summarise_bodies(log[8:16], ORIGIN)
    checked = verifier.check_bodies(log[8:16])
    assert isinstance(run, verifier.CleanRun)
    assert (run.records, run.log, run.first_seq, run.last_seq) == (8, ORIGIN, 8, 15)
    assert (run.first_prev, run.last_leaf) == (verifier.leaf_hash(log[7]), checked[-1][0])
    assert (run.first_ts, run.last_ts) == (
        records_of(log)[8]["ts"],
        records_of(log)[15]["ts"],
    )
    assert run.leaves == b"".join(leaves(log[8:16]))
    assert run.subtree == verifier.root(leaves(log[8:16]))
    odd = verifier.summarise_bodies(log[8:15])  # any log: that of the first record
    assert isinstance(odd, verifier.CleanRun) and odd.subtree is None and odd.records == 7
    assert verifier.summarise_bodies([], ORIGIN) == []

    records = records_of(log)
    records[11]["ts"] = records[10]["ts"]  # the same time is fine, an earlier one is not
    assert isinstance(verifier.summarise_bodies(chain(records)[8:16], ORIGIN), verifier.CleanRun)
    records[11]["ts"] = "2026-03-01T09:00:09.999999Z"
    bad_signature = signature_record(12, request=5)
    bad_signature["data"]["signed_content"]["request"] = 6
    unclean: list[list[bytes]] = [
        [*log[8:11], *log[12:16]],  # a gap
        [*log[8:11], log[12], log[11], *log[13:16]],  # out of order
        [*log[8:11], log[10], *log[11:16]],  # repeated
        edited(log, 12)[8:16],  # a broken link
        chain(records)[8:16],  # a clock going back
        [*log[8:11], b"{not json", *log[12:16]],
        chain([*records_of(log)[:12], bad_signature])[8:13],
        chain([*records_of(log)[:12], record(12, "", v=2)])[8:13],
        [*log[8:12], make_log(13, origin="warden.other/audit")[12]],
    ]
    for bodies in unclean:
        assert verifier.summarise_bodies(bodies, ORIGIN) == verifier.check_bodies(bodies)
    assert verifier.summarise_bodies(log[8:16], "warden.other/audit") == checked


def test_a_run_that_does_not_follow_on_changes_nothing(log: list[bytes]) -> None:
    run = verifier.summarise_bodies(log[8:16], ORIGIN)
    assert isinstance(run, verifier.CleanRun)
    for start, refused in ((7, "seq 7 is missing"), (9, "seq 8 comes again")):
        chain_ = verifier.ChainVerifier(ORIGIN)
        for body in log[:start]:
            chain_.feed(body)
        before = (chain_.report.records, chain_.report.tip, chain_.report.last_seq)
        assert not chain_.accept_run(run), refused
        assert (chain_.report.records, chain_.report.tip, chain_.report.last_seq) == before
    chain_ = verifier.ChainVerifier(ORIGIN)
    for body in log[:8]:
        chain_.feed(body)
    assert chain_.accept_run(run)
    assert chain_.finish() == verifier.verify_bodies(ORIGIN, log[:16])
    for body in log[16:]:  # the state after the run is that after its last record
        chain_.feed(body)
    assert chain_.finish() == verifier.verify_bodies(ORIGIN, log)
    first = verifier.summarise_bodies(log[:8])
    assert isinstance(first, verifier.CleanRun)
    assert verifier.ChainVerifier(ORIGIN).accept_run(first)
    assert not verifier.ChainVerifier("warden.other/audit").accept_run(first)


def test_records_are_read_in_chunks_of_exactly_the_chunk_size(
    monkeypatch: pytest.MonkeyPatch, log: list[bytes]
) -> None:
    monkeypatch.setattr(verifier, "_CHUNK", RUN)
    monkeypatch.setattr(verifier, "_READ_BLOCK", 100)  # bodies span blocks
    for data, found in ((b"".join(b + b"\n" for b in log), []), (b"\n".join(log), [RECORDS])):
        archive = zipfile.ZipFile(io.BytesIO(zip_of([(RECORDS, data)])))
        report = BundleReport(bundle="test")
        chunks = list(verifier._record_lines(archive, hashlib.sha256(), report))
        assert [len(chunk) for chunk in chunks] == [8, 8, 8, 8, 8]
        assert [body for chunk in chunks for body in chunk] == log
        assert [f.file for f in report.findings] == found


def test_a_clean_full_export_is_verified_a_run_at_a_time(
    monkeypatch: pytest.MonkeyPatch, log: list[bytes]
) -> None:
    monkeypatch.setattr(verifier, "_PARALLEL_FROM", 0)
    monkeypatch.setattr(verifier, "_CHUNK", RUN)
    calls: list[str] = []
    accept, append_subtree = verifier.ChainVerifier.accept, verifier._CompactRange.append_subtree

    def counting_accept(self: verifier.ChainVerifier, *args: Any, **kwargs: Any) -> str:
        calls.append("accept")
        return accept(self, *args, **kwargs)

    def counting_append_subtree(self: verifier._CompactRange, node: bytes, height: int) -> None:
        calls.append(f"subtree of {1 << height}")
        append_subtree(self, node, height)

    monkeypatch.setattr(verifier.ChainVerifier, "accept", counting_accept)
    monkeypatch.setattr(verifier._CompactRange, "append_subtree", counting_append_subtree)
    report = verify(full_bundle(log, [8, 32, 40]))
    assert report.ok and report.findings == [] and report.records == 40
    assert calls == ["subtree of 8"] * 5
    calls.clear()
    assert verify(full_bundle(log, BOUNDARY_SIZES)).ok  # sizes 5 and 13 fall inside runs
    assert calls == ["subtree of 8"] * 3  # runs 0-7 and 8-15 go in leaf by leaf


def edited(log: list[bytes], seq: int) -> list[bytes]:
    """``log`` with the body of ``seq`` edited and nothing re-chained."""
    records = records_of(log)
    records[seq]["data"]["note"] = "edited"
    return [*log[:seq], canonical_dumps(records[seq]), *log[seq + 1 :]]


def with_ts(log: list[bytes], changes: dict[int, str]) -> Bundle:
    """A consistent rewrite of ``log`` with the ts of some records changed, re-signed."""
    records = records_of(log)
    for seq, ts in changes.items():
        records[seq]["ts"] = ts
    return full_bundle(chain(records), BOUNDARY_SIZES)


def without_final_newline(log: list[bytes]) -> Bundle:
    bundle = full_bundle(log, BOUNDARY_SIZES)
    bundle.files[RECORDS] = bundle.files[RECORDS][:-1]
    return bundle


def with_untrusted_checkpoint(log: list[bytes]) -> Bundle:
    bundle = full_bundle(log, [40])
    bundle.files["checkpoints/40.note"] = checkpoint(log, 40, signers=(OTHER_SIGNER,))
    return bundle


def spliced(log: list[bytes]) -> Bundle:
    other = records_of(make_log(40, origin="warden.other/audit"))
    return full_bundle(chain([*records_of(log)[:16], *other[16:24], *records_of(log)[24:]]), [40])


# Each case: the bundle, and what accept_run answers for the clean runs of the fast path.
BOUNDARY_CASES: dict[str, tuple[Callable[[list[bytes]], Bundle], list[bool]]] = {
    "intact": (lambda log: full_bundle(log, BOUNDARY_SIZES), [True] * 5),
    "tail-after-the-last-checkpoint": (lambda log: full_bundle(log, [5, 16]), [True] * 5),
    "edit-first-of-a-run": (
        lambda log: full_bundle_keeping_notes(edited(log, 16), log),
        [True, True, True, True],  # run 16-23 is not clean: 17 does not link to 16
    ),
    "edit-last-of-a-run": (
        lambda log: full_bundle_keeping_notes(edited(log, 23), log),
        [True, True, True, False, True],  # 24 does not link to 23
    ),
    "edit-last-record": (
        lambda log: full_bundle_keeping_notes(edited(log, 39), log),
        [True] * 5,
    ),
    "gap-at-a-boundary": (
        lambda log: full_bundle_keeping_notes(log[:16] + log[17:], log),
        [True, True, False, True, True],  # 17-24 after 15; 25-32; 33-39 (a short run)
    ),
    "gap-before-a-boundary": (
        lambda log: full_bundle_keeping_notes(log[:15] + log[16:], log),
        [True, True, True, True],  # 8-15 has the gap
    ),
    "two-runs-swapped": (
        lambda log: full_bundle_keeping_notes([*log[:8], *log[16:24], *log[8:16], *log[24:]], log),
        [True, False, False, False, True],
    ),
    "a-run-repeated": (
        lambda log: full_bundle_keeping_notes([*log[:16], *log[8:]], log),
        [True, True, False, True, True, True],  # 8-15 again after 15
    ),
    "same-ts-across-a-boundary": (
        lambda log: with_ts(log, {16: "2026-03-01T09:00:15.000000Z"}),
        [True] * 5,
    ),
    "ts-back-at-a-boundary": (
        lambda log: with_ts(log, {16: "2026-03-01T09:00:14.500000Z"}),
        [True, True, False, True, True],
    ),
    "ts-ahead-at-the-end-of-a-run": (
        lambda log: with_ts(log, {15: "2026-03-01T09:00:30.000000Z"}),
        [True, True, False, False, True],  # 16-29 before 15: 30 on are fine again
    ),
    "a-run-spliced-from-another-log": (spliced, [True, True, True, True]),
    "not-json-first-of-a-run": (
        lambda log: full_bundle_keeping_notes([*log[:24], b"{not json", *log[25:]], log),
        [True, True, True, True],
    ),
    "no-final-newline": (without_final_newline, [True] * 5),  # reported for the file only
    "rechained-edit": (
        lambda log: full_bundle_keeping_notes(chain(records_of(edited(log, 12))), log),
        [True] * 5,
    ),
    "untrusted-checkpoint": (with_untrusted_checkpoint, [True] * 5),
}


@pytest.mark.parametrize("case", list(BOUNDARY_CASES))
def test_runs_and_single_records_find_exactly_the_same_at_run_boundaries(
    monkeypatch: pytest.MonkeyPatch, log: list[bytes], case: str
) -> None:
    make, answers = BOUNDARY_CASES[case]
    report, answered = fast_and_exact(monkeypatch, make(log))
    assert answered == answers
    intact = ("intact", "tail-after-the-last-checkpoint", "same-ts-across-a-boundary")
    assert report.ok == (case in intact), codes(report)


def test_a_prior_checkpoint_inside_a_run_or_at_its_end_is_recomputed_alike(
    monkeypatch: pytest.MonkeyPatch, log: list[bytes]
) -> None:
    forged = full_bundle(chain(records_of(edited(log, 20))), BOUNDARY_SIZES)
    for size, found in ((13, []), (16, []), (20, []), (21, [("E_CONSISTENCY", "--prior")])):
        report, _ = fast_and_exact(monkeypatch, forged, prior=checkpoint(log, size))
        assert errors(report) == found, size
    report, _ = fast_and_exact(monkeypatch, forged, prior=checkpoint(log, 24))
    assert errors(report) == [("E_CONSISTENCY", "--prior")]


def test_worker_processes_find_exactly_the_same_at_run_boundaries(
    monkeypatch: pytest.MonkeyPatch, log: list[bytes]
) -> None:
    """Some of the cases above with the bodies checked in two worker processes (slower: a
    pool of processes per verification)."""
    for case in (
        "intact",
        "edit-last-of-a-run",
        "gap-at-a-boundary",
        "ts-ahead-at-the-end-of-a-run",
        "a-run-spliced-from-another-log",
        "untrusted-checkpoint",
    ):
        fast_and_exact(monkeypatch, BOUNDARY_CASES[case][0](log), parallel=True)
    forged = full_bundle(chain(records_of(edited(log, 20))), BOUNDARY_SIZES)
    fast_and_exact(monkeypatch, forged, parallel=True, prior=checkpoint(log, 21))
