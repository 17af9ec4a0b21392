"""C2SP signed notes and tlog checkpoints (audit/notes.py): AUDIT_SPEC.md section 5.

Includes the reference vectors of golang.org/x/mod/sumdb/note (note_test.go), which our
signer must reproduce byte for byte (Ed25519 is deterministic), so any Go-ecosystem verifier
or witness accepts Warden's checkpoints and vice versa.
"""

from __future__ import annotations

import base64
import hashlib
import re
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.notes import (
    MAX_SIGNATURES,
    MAX_TREE_SIZE,
    Checkpoint,
    KeyFormatError,
    NoteError,
    Signer,
    Verifier,
    format_checkpoint,
    generate_signer,
    is_valid_key_name,
    key_id,
    open_checkpoint,
    open_note,
    parse_checkpoint,
    parse_signer,
    parse_verifier,
    sign_checkpoint,
    sign_note,
)
from tests.support import imported_roots

pytestmark = pytest.mark.database_free

# golang.org/x/mod/sumdb/note note_test.go
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
GO_TEXT = (
    b"If you think cryptography is the answer to your problem,\n"
    b"then you don't know what your problem is.\n"
)
GO_PETER_SIG = (
    "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqd"
    "ngotpRZb6KE6RyyBwJnAM=\n"
).encode()
GO_ENOCH_SIG = (
    "\u2014 EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwn"
    "WLox33WWd1RvMc+QQ=\n"
).encode()
GO_NOTE = GO_TEXT + b"\n" + GO_PETER_SIG

ORIGIN = "warden.example.org/test"
ROOT = hashlib.sha256(b"a root").digest()


def make(name: str) -> tuple[Signer, Verifier]:
    skey, vkey = generate_signer(name)
    return parse_signer(skey), parse_verifier(vkey)


SIGNER, VERIFIER = make(ORIGIN)
NEW_SIGNER, NEW_VERIFIER = make(ORIGIN + "/2026")  # a rotated key: a new name
OTHER_SIGNER, OTHER_VERIFIER = make("someone.else/log")
BODY = format_checkpoint(ORIGIN, 42, ROOT)
NOTE = sign_note(BODY, [SIGNER])


def error_code(note: bytes, verifiers: list[Verifier]) -> str | None:
    try:
        open_note(note, verifiers)
    except NoteError as exc:
        return exc.code
    return None


# Keys


def test_go_reference_vectors_byte_for_byte() -> None:
    signer, verifier = parse_signer(GO_SKEY), parse_verifier(GO_VKEY)
    assert signer.key_id == verifier.key_id == bytes.fromhex("c74f20a3")
    assert signer.key_string() == GO_SKEY
    assert verifier.key_string() == GO_VKEY
    assert signer.verifier() == verifier
    assert sign_note(GO_TEXT, [signer]) == GO_NOTE
    opened = open_note(GO_NOTE, [verifier])
    assert opened.body == GO_TEXT
    assert opened.text == GO_TEXT.decode()
    assert opened.key_names == ("PeterNeumann",)
    enoch = parse_verifier(GO_ENOCH_VKEY)
    both = open_note(GO_NOTE + GO_ENOCH_SIG, [verifier, enoch])
    assert both.key_names == ("PeterNeumann", "EnochRoot")
    only_peter = open_note(GO_NOTE + GO_ENOCH_SIG, [verifier])
    assert only_peter.key_names == ("PeterNeumann",)
    assert [(s.name, s.key_id.hex()) for s in only_peter.unverified] == [("EnochRoot", "af0cfe78")]


def test_key_id_is_the_spec_formula() -> None:
    for signer, verifier in [(SIGNER, VERIFIER), (parse_signer(GO_SKEY), parse_verifier(GO_VKEY))]:
        expected = hashlib.sha256(
            verifier.name.encode() + b"\n" + b"\x01" + verifier.public_key
        ).digest()[:4]
        assert verifier.key_id == expected == key_id(verifier.name, verifier.public_key)
        assert signer.key_id == expected
        assert signer.public_key == verifier.public_key
        assert verifier.key_string().split("+")[1] == expected.hex()


def test_generate_signer_key_strings() -> None:
    skey, vkey = generate_signer("example.com/log")
    assert re.fullmatch(r"example\.com/log\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}", vkey)
    assert re.fullmatch(r"PRIVATE\+KEY\+example\.com/log\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}", skey)
    signer, verifier = parse_signer(skey), parse_verifier(vkey)
    assert base64.b64decode(vkey.split("+", 2)[2])[0] == 1
    assert signer.name == verifier.name == "example.com/log"
    assert signer.verifier() == verifier
    assert signer.key_string() == skey and verifier.key_string() == vkey
    assert "PRIVATE" not in repr(signer) and skey.rsplit("+", 1)[1] not in repr(signer)
    assert generate_signer("example.com/log") != (skey, vkey)


@pytest.mark.parametrize("name", ["", "a b", "a+b", "tab\there", "nbsp\u00a0x", "x\u2028y", "\x01"])
def test_invalid_key_names(name: str) -> None:
    assert not is_valid_key_name(name)
    with pytest.raises(KeyFormatError):
        generate_signer(name)


def test_parse_verifier_rejects_every_mangling() -> None:
    parse_verifier(GO_VKEY)
    for i in range(len(GO_VKEY) + 1):  # every proper substring (as the Go tests do)
        for j in range(i + 1, len(GO_VKEY) + 1):
            if (i, j) != (0, len(GO_VKEY)):
                with pytest.raises(KeyFormatError):
                    parse_verifier(GO_VKEY[i:j])
    for i in range(len(GO_VKEY)):  # every character bumped
        mangled = GO_VKEY[:i] + chr(ord(GO_VKEY[i]) + 1) + GO_VKEY[i + 1 :]
        with pytest.raises(KeyFormatError):
            parse_verifier(mangled)
    bad = [
        # wrong key length with an adjusted key id; unknown algorithm with an adjusted key id
        "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # id mismatch
        "PeterNeumann+0xc74f20+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
        GO_VKEY + "\n",
        GO_SKEY,
        "",
    ]
    for key in bad:
        with pytest.raises(KeyFormatError):
            parse_verifier(key)
    assert parse_verifier(GO_VKEY.replace("c74f20a3", "C74F20A3")) == parse_verifier(GO_VKEY)


def test_parse_signer_rejects_every_mangling() -> None:
    parse_signer(GO_SKEY)
    for i in range(len(GO_SKEY) + 1):
        for j in range(i + 1, len(GO_SKEY) + 1):
            if (i, j) != (0, len(GO_SKEY)):
                with pytest.raises(KeyFormatError):
                    parse_signer(GO_SKEY[i:j])
    for i in range(len(GO_SKEY)):
        mangled = GO_SKEY[:i] + chr(ord(GO_SKEY[i]) + 1) + GO_SKEY[i + 1 :]
        with pytest.raises(KeyFormatError):
            parse_signer(mangled)
    with pytest.raises(KeyFormatError) as exc:
        parse_signer(GO_SKEY.replace("c74f20a3", "c74f20a4"))
    assert "AYEKFALV" not in str(exc.value)  # never echo the secret
    with pytest.raises(KeyFormatError):
        parse_signer(GO_VKEY)


# Notes


def test_sign_open_round_trip_and_determinism() -> None:
    opened = open_note(NOTE, [VERIFIER])
    assert opened.body == BODY
    assert opened.verified_by == (VERIFIER,)
    assert opened.unverified == ()
    assert NOTE.startswith(BODY + b"\n" + "\u2014 ".encode())
    assert NOTE.count(b"\n") == BODY.count(b"\n") + 2
    assert sign_note(BODY, [SIGNER]) == NOTE  # Ed25519 is deterministic (RFC 8032)
    checkpoint, opened = open_checkpoint(NOTE, [VERIFIER])
    assert checkpoint == Checkpoint(ORIGIN, 42, ROOT)
    assert sign_checkpoint(checkpoint, [SIGNER]) == NOTE


def test_signature_line_format() -> None:
    line = NOTE[len(BODY) + 1 :].decode()
    assert line.endswith("\n") and line.count("\n") == 1
    dash, name, blob = line[:-1].split(" ")
    assert dash == "\u2014" and name == ORIGIN
    raw = base64.b64decode(blob, validate=True)
    assert len(raw) == 68 and raw[:4] == VERIFIER.key_id
    assert VERIFIER.verify(BODY, raw[4:])


def test_unknown_key_ignored_known_key_failure_rejected() -> None:
    note = sign_note(BODY, [SIGNER, OTHER_SIGNER])
    opened = open_note(note, [VERIFIER])
    assert opened.verified_by == (VERIFIER,)
    assert [s.name for s in opened.unverified] == [OTHER_SIGNER.name]

    # OTHER's signature under SIGNER's name and key id: a known key whose signature fails.
    forged_sig = OTHER_SIGNER.sign(BODY)
    forged = f"\u2014 {SIGNER.name} {base64.b64encode(SIGNER.key_id + forged_sig).decode()}\n"
    assert error_code(note + forged.encode(), [VERIFIER]) == "E_SIG"
    assert error_code(BODY + b"\n" + forged.encode(), [VERIFIER]) == "E_SIG"
    # ... even after a good one, and even when it is a wrong-length signature.
    short = f"\u2014 {SIGNER.name} {base64.b64encode(SIGNER.key_id + b'x' * 10).decode()}\n"
    assert error_code(NOTE + short.encode(), [VERIFIER]) == "E_SIG"
    # The Go test's corruption: four base64 characters inserted into a known signature.
    corrupted = GO_TEXT + b"\n" + GO_PETER_SIG[:60] + b"ABCD" + GO_PETER_SIG[60:]
    assert error_code(corrupted, [parse_verifier(GO_VKEY)]) == "E_SIG"
    # A known name with another key id is just an unknown key.
    zero_id = base64.b64encode(bytes(4) + forged_sig).decode()
    other_id = f"\u2014 {SIGNER.name} {zero_id}\n"
    assert open_note(NOTE + other_id.encode(), [VERIFIER]).key_names == (SIGNER.name,)
    assert error_code(BODY + b"\n" + other_id.encode(), [VERIFIER]) == "E_NO_TRUSTED_SIG"


def test_no_trusted_signature() -> None:
    assert error_code(NOTE, []) == "E_NO_TRUSTED_SIG"
    assert error_code(NOTE, [OTHER_VERIFIER]) == "E_NO_TRUSTED_SIG"
    assert error_code(sign_note(BODY, [OTHER_SIGNER]), [VERIFIER]) == "E_NO_TRUSTED_SIG"
    # A verifier of the same name but another key (a stolen name, not a stolen key).
    impostor = Signer.from_seed(ORIGIN, b"\x07" * 32)
    assert error_code(sign_note(BODY, [impostor]), [VERIFIER]) == "E_NO_TRUSTED_SIG"


def test_key_rotation_two_signatures() -> None:
    note = sign_note(BODY, [SIGNER, NEW_SIGNER])
    assert open_note(note, [VERIFIER]).verified_by == (VERIFIER,)
    assert open_note(note, [NEW_VERIFIER]).verified_by == (NEW_VERIFIER,)
    assert open_note(note, [NEW_VERIFIER, VERIFIER]).verified_by == (VERIFIER, NEW_VERIFIER)
    assert sign_note(BODY, [SIGNER, NEW_SIGNER]) == note
    with pytest.raises(ValueError):
        sign_note(BODY, [SIGNER, SIGNER])
    with pytest.raises(ValueError):
        sign_note(BODY, [])


def test_duplicate_and_ambiguous_verifiers() -> None:
    doubled = NOTE + NOTE[len(BODY) + 1 :]
    assert open_note(doubled, [VERIFIER, VERIFIER]).verified_by == (VERIFIER,)
    impostor = Verifier.from_public_key(ORIGIN, OTHER_VERIFIER.public_key)
    clash = Verifier(ORIGIN, VERIFIER.key_id, impostor.public_key, impostor._key)
    with pytest.raises(ValueError, match="ambiguous"):
        open_note(NOTE, [VERIFIER, clash])


def tamper(note: bytes, old: bytes, new: bytes) -> bytes:
    assert note.count(old) >= 1
    return note.replace(old, new, 1)


def test_tampered_checkpoint_fields_fail_the_signature() -> None:
    other_root = base64.b64encode(hashlib.sha256(b"another root").digest())
    root_b64 = base64.b64encode(ROOT)
    cases = [
        tamper(NOTE, b"\n42\n", b"\n43\n"),
        tamper(NOTE, b"\n42\n", b"\n4200\n"),
        tamper(NOTE, root_b64, other_root),
        tamper(NOTE, ORIGIN.encode() + b"\n", b"warden.example.org/prod\n"),
        tamper(NOTE, b"\n42\n", b"\n42\nextension\n"),
    ]
    for note in cases:
        assert error_code(note, [VERIFIER]) == "E_SIG", note


MALFORMED = {
    "crlf": NOTE.replace(b"\n", b"\r\n"),
    "cr in body": tamper(NOTE, b"\n42\n", b"\n42\r\n"),
    "no blank line": BODY + NOTE[len(BODY) + 1 :],
    "text only": BODY,
    "text and blank line only": BODY + b"\n",
    "empty": b"",
    "no final newline": NOTE[:-1],
    "trailing garbage line": NOTE + b"garbage\n",
    "trailing garbage": NOTE + b"garbage",
    "trailing blank line": NOTE + b"\n",
    "hyphen for em dash": NOTE.replace("\u2014".encode(), b"-"),
    "en dash for em dash": NOTE.replace("\u2014".encode(), "\u2013".encode()),
    "no space after dash": NOTE.replace("\u2014 ".encode(), "\u2014".encode()),
    "two spaces after dash": NOTE.replace("\u2014 ".encode(), "\u2014  ".encode()),
    "bad base64": NOTE[:-10] + b"!!!!!!!!!\n",
    "base64 without padding": NOTE[:-2] + b"\n",
    "base64 with a space": NOTE[:-20] + b" " + NOTE[-20:],
    "urlsafe base64 characters": NOTE[:-10] + b"-_-_-_-_-\n",
    "signature too short": BODY + b"\n\xe2\x80\x94 " + ORIGIN.encode() + b" AAAAAA==\n",
    "empty signature": BODY + b"\n\xe2\x80\x94 " + ORIGIN.encode() + b" \n",
    "no signature field": BODY + b"\n\xe2\x80\x94 " + ORIGIN.encode() + b"\n",
    "plus in key name": NOTE.replace(ORIGIN.encode() + b" ", b"a+b "),
    "nul in body": tamper(NOTE, b"\n42\n", b"\n42\x00\n"),
    "escape in body": tamper(NOTE, b"warden", b"\x1b[31mwarden"),
    "tab in body": tamper(NOTE, b"\n42\n", b"\n42\t\n"),
    "DEL in body": tamper(NOTE, b"\n42\n", b"\n42\x7f\n"),
    "C1 control in body": tamper(NOTE, b"\n42\n", b"\n42\xc2\x85\n"),
    "not UTF-8": b"\xff" + NOTE,
    "overlong UTF-8": tamper(NOTE, b"\n42\n", b"\n42\xc0\xaf\n"),
    "UTF-16 surrogate": tamper(NOTE, b"\n42\n", b"\n42\xed\xa0\x80\n"),
    "too many signatures": BODY + b"\n" + NOTE[len(BODY) + 1 :] * (MAX_SIGNATURES + 1),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_notes_are_E_NOTE(case: str) -> None:
    assert MALFORMED[case] != NOTE
    assert error_code(MALFORMED[case], [VERIFIER]) == "E_NOTE"


def test_structure_is_checked_before_signatures() -> None:
    garbage = base64.b64encode(SIGNER.key_id + bytes(64)).decode()
    forged = BODY + f"\n\u2014 {SIGNER.name} {garbage}\n".encode()
    assert error_code(forged, [VERIFIER]) == "E_SIG"
    assert error_code(forged + b"garbage\n", [VERIFIER]) == "E_NOTE"


def test_signature_count_limit() -> None:
    unknown = sign_note(BODY, [OTHER_SIGNER])[len(BODY) + 1 :]
    at_limit = NOTE + unknown * (MAX_SIGNATURES - 1)
    assert open_note(at_limit, [VERIFIER]).key_names == (ORIGIN,)
    assert error_code(at_limit + unknown, [VERIFIER]) == "E_NOTE"


def test_non_canonical_base64_is_not_accepted() -> None:
    """A 68-byte signature in base64 leaves 2 unused bits in its last character: changing them
    changes the note's bytes but not the decoded signature. Strict decoding refuses that."""
    line = NOTE[len(BODY) + 1 :]
    last = line[-3:-2]  # the character before "=\n"
    alphabet = _ALPHABET.encode()
    value = alphabet.index(last)
    for low in range(1, 4):
        variant = alphabet[value ^ low : (value ^ low) + 1]
        note = NOTE[:-3] + variant + b"=\n"
        assert base64.b64decode(note[len(BODY) + 1 :].split(b" ")[-1]) == base64.b64decode(
            line.split(b" ")[-1]
        )
        assert error_code(note, [VERIFIER]) == "E_NOTE"


def test_every_single_bit_flip_is_rejected() -> None:
    """Zero false accepts: no single-bit change to a signed note opens."""
    accepted = 0
    for position in range(len(NOTE)):
        for bit in range(8):
            mutated = bytearray(NOTE)
            mutated[position] ^= 1 << bit
            if error_code(bytes(mutated), [VERIFIER]) is None:
                accepted += 1
    assert accepted == 0


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_random_byte_edits_are_rejected(data: st.DataObject) -> None:
    position = data.draw(st.integers(min_value=0, max_value=len(NOTE) - 1))
    value = data.draw(st.integers(min_value=0, max_value=255).filter(lambda v: v != NOTE[position]))
    mutated = NOTE[:position] + bytes([value]) + NOTE[position + 1 :]
    assert error_code(mutated, [VERIFIER]) is not None


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_random_byte_edits_of_a_two_key_note(data: st.DataObject) -> None:
    """With two signatures, an edit that turns one line into an unknown key's is ignored, as
    the note specification requires; but the signed text itself never changes."""
    note = sign_note(BODY, [SIGNER, NEW_SIGNER])
    position = data.draw(st.integers(min_value=0, max_value=len(note) - 1))
    value = data.draw(st.integers(min_value=0, max_value=255).filter(lambda v: v != note[position]))
    mutated = note[:position] + bytes([value]) + note[position + 1 :]
    try:
        opened = open_note(mutated, [VERIFIER, NEW_VERIFIER])
    except NoteError:
        return
    assert opened.body == BODY
    assert position > len(BODY)
    assert len(opened.verified_by) == 1


def test_sign_note_refuses_malformed_text() -> None:
    for body in [b"", b"no newline", b"crlf\r\n", b"nul\x00\n", b"\xff\n"]:
        with pytest.raises(NoteError) as exc:
            sign_note(body, [SIGNER])
        assert exc.value.code == "E_NOTE"


def test_note_error_shape() -> None:
    with pytest.raises(NoteError) as exc:
        open_note(b"", [VERIFIER])
    assert exc.value.code == "E_NOTE"
    assert str(exc.value).startswith("E_NOTE: ")
    assert isinstance(exc.value, ValueError)
    assert error_code("text\n\n— x AAAAAAAA\n", [VERIFIER]) == "E_NOTE"  # type: ignore[arg-type]


# Checkpoints


def test_checkpoint_format_and_parse() -> None:
    expected = f"{ORIGIN}\n42\n{base64.b64encode(ROOT).decode()}\n".encode()
    assert expected == BODY
    assert parse_checkpoint(BODY) == Checkpoint(ORIGIN, 42, ROOT, ())
    empty = format_checkpoint(ORIGIN, 0, hashlib.sha256(b"").digest())
    assert empty.split(b"\n")[1] == b"0"
    assert parse_checkpoint(empty).size == 0
    top = format_checkpoint(ORIGIN, MAX_TREE_SIZE, ROOT)
    assert parse_checkpoint(top).size == MAX_TREE_SIZE
    # The C2SP tlog-checkpoint example.
    c2sp = b"example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    parsed = parse_checkpoint(c2sp)
    assert (parsed.origin, parsed.size) == ("example.com/behind-the-sofa", 20852163)
    assert parsed.body() == c2sp


def test_checkpoint_extension_lines_preserved() -> None:
    body = BODY + b"timestamp 1700000000\nother ext\n"
    parsed = parse_checkpoint(body)
    assert parsed.extensions == ("timestamp 1700000000", "other ext")
    assert parsed.body() == body
    note = sign_note(body, [SIGNER])
    checkpoint, _ = open_checkpoint(note, [VERIFIER])
    assert checkpoint == parsed


ROOT_B64 = base64.b64encode(ROOT).decode()
_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
B64_LOW_BIT_FLIPPED = _ALPHABET[_ALPHABET.index(ROOT_B64[42]) ^ 1]  # an unused bit of the root
BAD_CHECKPOINTS = {
    "leading zero": f"{ORIGIN}\n007\n{ROOT_B64}\n",
    "zero padded zero": f"{ORIGIN}\n00\n{ROOT_B64}\n",
    "negative": f"{ORIGIN}\n-1\n{ROOT_B64}\n",
    "plus sign": f"{ORIGIN}\n+7\n{ROOT_B64}\n",
    "space before size": f"{ORIGIN}\n 7\n{ROOT_B64}\n",
    "space after size": f"{ORIGIN}\n7 \n{ROOT_B64}\n",
    "exponent": f"{ORIGIN}\n1e3\n{ROOT_B64}\n",
    "underscore": f"{ORIGIN}\n1_000\n{ROOT_B64}\n",
    "arabic-indic digits": f"{ORIGIN}\n\u0664\u0662\n{ROOT_B64}\n",
    "fullwidth digits": f"{ORIGIN}\n\uff14\uff12\n{ROOT_B64}\n",
    "empty size": f"{ORIGIN}\n\n{ROOT_B64}\n",
    "size above 2**64-1": f"{ORIGIN}\n{2**64}\n{ROOT_B64}\n",
    "root 31 bytes": f"{ORIGIN}\n7\n{base64.b64encode(ROOT[:31]).decode()}\n",
    "root 33 bytes": f"{ORIGIN}\n7\n{base64.b64encode(ROOT + b'x').decode()}\n",
    "root unpadded": f"{ORIGIN}\n7\n{ROOT_B64.rstrip('=')}\n",
    "root hex": f"{ORIGIN}\n7\n{ROOT.hex()}\n",
    "root non-canonical bits": f"{ORIGIN}\n7\n{ROOT_B64[:42]}{B64_LOW_BIT_FLIPPED}=\n",
    "empty origin": f"\n7\n{ROOT_B64}\n",
    "two lines": f"{ORIGIN}\n7\n",
    "no final newline": f"{ORIGIN}\n7\n{ROOT_B64}",
    "empty extension line": f"{ORIGIN}\n7\n{ROOT_B64}\n\next\n",
    "trailing empty line": f"{ORIGIN}\n7\n{ROOT_B64}\n\n",
    "crlf": f"{ORIGIN}\r\n7\r\n{ROOT_B64}\r\n",
    "control character": f"{ORIGIN}\x00\n7\n{ROOT_B64}\n",
}


@pytest.mark.parametrize("case", sorted(BAD_CHECKPOINTS))
def test_parse_checkpoint_is_strict(case: str) -> None:
    body = BAD_CHECKPOINTS[case].encode()
    if case == "root non-canonical bits":
        assert base64.b64decode(body.split(b"\n")[2]) == ROOT  # same bytes, other text
    with pytest.raises(NoteError) as exc:
        parse_checkpoint(body)
    assert exc.value.code == "E_NOTE"


def test_signed_but_malformed_checkpoint_is_E_NOTE() -> None:
    body = f"{ORIGIN}\n007\n{ROOT_B64}\n".encode()
    note = sign_note(body, [SIGNER])
    assert open_note(note, [VERIFIER]).body == body  # a fine note ...
    with pytest.raises(NoteError) as exc:
        open_checkpoint(note, [VERIFIER])  # ... but not a checkpoint
    assert exc.value.code == "E_NOTE"
    with pytest.raises(NoteError) as exc:  # the signature is checked first
        open_checkpoint(sign_note(body, [OTHER_SIGNER]), [VERIFIER])
    assert exc.value.code == "E_NO_TRUSTED_SIG"


@pytest.mark.parametrize(
    ("origin", "size", "root"),
    [
        ("", 1, ROOT),
        ("a\nb", 1, ROOT),
        ("a\rb", 1, ROOT),
        (ORIGIN, -1, ROOT),
        (ORIGIN, 2**64, ROOT),
        (ORIGIN, True, ROOT),
        (ORIGIN, 1, ROOT[:31]),
        (ORIGIN, 1, ROOT.hex()),
    ],
)
def test_format_checkpoint_validates(origin: str, size: int, root: bytes) -> None:
    with pytest.raises(NoteError) as exc:
        format_checkpoint(origin, size, root)
    assert exc.value.code == "E_NOTE"
    with pytest.raises(NoteError):
        format_checkpoint(ORIGIN, 1, ROOT, ["ok", ""])
    with pytest.raises(NoteError):
        format_checkpoint(ORIGIN, 1, ROOT, ["two\nlines"])


@settings(max_examples=200, deadline=None)
@given(
    origin=st.text(
        alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=40
    ),
    size=st.integers(min_value=0, max_value=MAX_TREE_SIZE),
    root=st.binary(min_size=32, max_size=32),
)
def test_checkpoint_round_trip_property(origin: str, size: int, root: bytes) -> None:
    body = format_checkpoint(origin, size, root)
    assert parse_checkpoint(body) == Checkpoint(origin, size, root)
    checkpoint, opened = open_checkpoint(sign_note(body, [SIGNER]), [VERIFIER])
    assert checkpoint == Checkpoint(origin, size, root)
    assert opened.body == body


def test_opening_is_the_offline_verifiers_own() -> None:
    """Warden opens notes with the very code the offline verifier uses: audit.notes
    re-exports it from audit/verifier.py, which imports only the standard library and
    ``cryptography``."""
    from audit import notes, verifier

    for name in ("open_note", "open_checkpoint", "parse_checkpoint", "parse_verifier", "Verifier"):
        assert getattr(notes, name) is getattr(verifier, name), name
    source = Path(__file__).resolve().parents[2] / "audit" / "verifier.py"
    roots = imported_roots(source)
    assert roots - set(sys.stdlib_module_names) == {"cryptography"}, roots
