"""Checkpoint keys (AUDIT_SPEC.md section 5): signing keys live in owner-only files outside
the database, are generated only in dev and test, and the verification keys are published."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from audit import keys
from audit.keys import KeyConfigurationError
from audit.notes import generate_signer, parse_verifier
from tests.audit.conftest import make_key
from tests.support import PROD_ENV, manage

VERIFIER_LINE = re.compile(r"[^+\s]+\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}")


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


@pytest.mark.parametrize("exposed", [0o644, 0o640, 0o604, 0o660, 0o620, 0o602, 0o700 | 0o044])
def test_a_key_file_others_may_access_is_refused(tmp_path: Path, exposed: int) -> None:
    path, _ = make_key(tmp_path, "warden.test")
    path.chmod(exposed)
    with pytest.raises(KeyConfigurationError, match="readable by its owner only") as refused:
        keys.read_signer_file(path)
    assert f"mode {exposed:04o}" in str(refused.value)


@pytest.mark.parametrize("private", [0o600, 0o400])
def test_an_owner_only_key_file_loads(tmp_path: Path, private: int) -> None:
    path, signer = make_key(tmp_path, "warden.test")
    path.chmod(private)
    assert keys.read_signer_file(path).key_string() == signer.key_string()


@pytest.mark.django_db
def test_the_checkpointer_will_not_sign_with_an_exposed_key(settings: Any, tmp_path: Path) -> None:
    path, _ = make_key(tmp_path, "warden.test")
    path.chmod(0o644)
    settings.AUDIT_SIGNING_KEY_FILE = [str(path)]
    with pytest.raises(CommandError, match="chmod 600"):
        call_command("audit_checkpoint")


def test_a_malformed_key_file_is_refused_without_quoting_it(tmp_path: Path) -> None:
    path = tmp_path / "bad.key"
    secret = "PRIVATE+KEY+warden.test+00000000+c2VjcmV0"
    keys.write_signer_file(path, secret)
    with pytest.raises(KeyConfigurationError) as refused:
        keys.read_signer_file(path)
    assert "c2VjcmV0" not in str(refused.value)


def test_a_missing_key_file_is_generated_only_when_allowed(settings: Any, tmp_path: Path) -> None:
    path = tmp_path / "var" / "audit-signing.key"
    settings.AUDIT_SIGNING_KEY_FILE = [str(path)]
    settings.AUDIT_SIGNING_KEY_AUTOGENERATE = False
    with pytest.raises(KeyConfigurationError, match="No such file"):
        keys.signers()
    assert not path.exists()

    settings.AUDIT_SIGNING_KEY_AUTOGENERATE = True
    [generated] = keys.signers()
    assert mode(path) == 0o600
    assert generated.name == "warden.test"  # the host of AUDIT_LOG_ORIGIN
    [again] = keys.signers()
    assert again.key_string() == generated.key_string()  # generated once, then loaded


def test_several_key_files_sign_together_in_order(settings: Any, tmp_path: Path) -> None:
    first_path, first = make_key(tmp_path, "warden.test")
    second_path, second = make_key(tmp_path, "warden.test/2027")
    settings.AUDIT_SIGNING_KEY_FILE = f"{first_path}, {second_path}"  # as in the environment
    assert [s.key_string() for s in keys.signers()] == [first.key_string(), second.key_string()]


def test_audit_keygen_writes_an_owner_only_file_and_prints_its_verification_key(
    tmp_path: Path,
) -> None:
    path = tmp_path / "new" / "signing.key"
    out = io.StringIO()
    umask = os.umask(0)  # a careless umask changes nothing
    try:
        call_command("audit_keygen", "--name", "warden.example.org", "--out", str(path), stdout=out)
    finally:
        os.umask(umask)
    assert mode(path) == 0o600
    signer = keys.read_signer_file(path)
    assert out.getvalue() == signer.verifier().key_string() + "\n"
    assert VERIFIER_LINE.fullmatch(out.getvalue().strip())
    assert parse_verifier(out.getvalue().strip()).name == "warden.example.org"
    assert path.read_text().startswith("PRIVATE+KEY+warden.example.org+")


def test_audit_keygen_never_overwrites_a_file(tmp_path: Path) -> None:
    path = tmp_path / "signing.key"
    path.write_text("precious")
    with pytest.raises(CommandError, match="refusing to overwrite"):
        call_command("audit_keygen", "--name", "warden.test", "--out", str(path))
    assert path.read_text() == "precious"


def test_audit_keygen_names_the_key_after_the_setting_or_the_origin_host(
    settings: Any, tmp_path: Path
) -> None:
    call_command("audit_keygen", "--out", str(tmp_path / "a.key"), stdout=io.StringIO())
    assert keys.read_signer_file(tmp_path / "a.key").name == "warden.test"
    settings.AUDIT_KEY_NAME = "warden.example.org/2027"
    call_command("audit_keygen", "--out", str(tmp_path / "b.key"), stdout=io.StringIO())
    assert keys.read_signer_file(tmp_path / "b.key").name == "warden.example.org/2027"


def test_audit_keygen_refuses_an_invalid_name(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="invalid key name"):
        call_command("audit_keygen", "--name", "two words", "--out", str(tmp_path / "k"))
    assert not (tmp_path / "k").exists()


def test_audit_public_key_prints_the_verification_keys_then_the_signing_keys(
    settings: Any, tmp_path: Path
) -> None:
    path, signer = make_key(tmp_path, "warden.test/2027")
    _, retired = generate_signer("warden.test")
    settings.AUDIT_SIGNING_KEY_FILE = [str(path)]
    settings.AUDIT_VERIFICATION_KEYS = [retired, signer.verifier().key_string()]
    out = io.StringIO()
    call_command("audit_public_key", stdout=out)
    assert out.getvalue() == f"{retired}\n{signer.verifier().key_string()}\n"
    assert all(VERIFIER_LINE.fullmatch(line) for line in out.getvalue().splitlines())


def test_audit_public_key_needs_only_verification_keys(settings: Any) -> None:
    """A web process: no signing key file, just the public keys."""
    _, verifier = generate_signer("warden.test")
    settings.AUDIT_SIGNING_KEY_FILE = []
    settings.AUDIT_VERIFICATION_KEYS = [verifier]
    out = io.StringIO()
    call_command("audit_public_key", stdout=out)
    assert out.getvalue() == f"{verifier}\n"


def test_audit_public_key_without_any_key_fails(settings: Any) -> None:
    settings.AUDIT_SIGNING_KEY_FILE = []
    settings.AUDIT_VERIFICATION_KEYS = []
    with pytest.raises(CommandError, match="no verification key"):
        call_command("audit_public_key")


def test_a_malformed_verification_key_is_a_configuration_error(settings: Any) -> None:
    settings.AUDIT_SIGNING_KEY_FILE = []
    settings.AUDIT_VERIFICATION_KEYS = ["warden.test+00000000+AAAA"]
    with pytest.raises(CommandError, match="AUDIT_VERIFICATION_KEYS"):
        call_command("audit_public_key")


def test_dev_generates_its_key_on_first_use(tmp_path: Path) -> None:
    result = manage("audit_public_key", env={"DJANGO_ENV": "dev", "WARDEN_VAR_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    path = tmp_path / "audit-signing.key"
    assert mode(path) == 0o600
    signer = keys.read_signer_file(path)
    assert result.stdout == signer.verifier().key_string() + "\n"
    assert signer.name == "warden.localhost"  # the dev origin's host


def test_prod_never_generates_a_key(tmp_path: Path) -> None:
    path = tmp_path / "audit-signing.key"
    result = manage("audit_public_key", env={**PROD_ENV, "AUDIT_SIGNING_KEY_FILE": str(path)})
    assert result.returncode != 0
    assert "No such file" in result.stderr
    assert not path.exists()


def test_prod_web_processes_publish_the_verification_keys_alone() -> None:
    _, first = generate_signer("warden.example.org")
    _, second = generate_signer("warden.example.org/2027")
    result = manage(
        "audit_public_key", env={**PROD_ENV, "AUDIT_VERIFICATION_KEYS": f"{first},{second}"}
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{first}\n{second}\n"
