"""The offline verifier on a regulator's machine (AUDIT_SPEC section 7, issue acceptance): a new
virtual environment with nothing but ``cryptography``, one copied file, and bundles that Warden
exported from PostgreSQL with ``manage.py audit_export``.

PostgreSQL only (the SQLite pass skips with a message). Building the environment needs
``uv`` or ``pip`` and the package registry (or uv's cache); without them the test skips
locally and fails under ``CI=true``.
"""

from __future__ import annotations

import importlib.metadata
import io
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from django.core.management import call_command

from audit.notes import Signer
from core.accounts.models import User
from tests import factories
from tests.support import need, on_postgres

REPO = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not on_postgres(), reason="exports from PostgreSQL (the PostgreSQL pass)"),
]


def clean_environment(directory: Path) -> Path:
    """A new virtual environment holding ``cryptography`` and nothing else; its python."""
    version = importlib.metadata.version("cryptography")
    uv = shutil.which("uv")
    python = directory / "bin" / "python"
    if uv:
        subprocess.run(
            [uv, "venv", "--quiet", "--python", sys.executable, str(directory)], check=True
        )
        command = [uv, "pip", "install", "--quiet", "--python", str(python)]
    else:
        subprocess.run([sys.executable, "-m", "venv", str(directory)], check=True)
        command = [str(python), "-m", "pip", "install", "--quiet"]
    installed = subprocess.run(
        [*command, f"cryptography=={version}"], capture_output=True, text=True, check=False
    )
    need(
        installed.returncode == 0,
        "a package index or uv's cache",
        f"installing cryptography=={version} failed: {installed.stderr[-500:]}",
    )
    return python


def run_verifier(python: Path, where: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m audit.verifier ARGS`` in ``where`` (the README's command), with an
    environment naming nothing of Warden (-E: no PYTHON* variables, -s: no user site)."""
    return subprocess.run(
        [str(python), "-E", "-s", "-m", "audit.verifier", *args],
        cwd=where,
        env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_bundles_exported_from_postgresql_verify_in_an_environment_with_only_cryptography(
    signing_key: Signer, tmp_path: Path, alice: User
) -> None:
    for name in ("credit-risk-pd", "churn"):
        model = factories.registered_model(alice, name=name)
        factories.model_version(alice, model)
        factories.model_version(alice, model)
    full, partial = tmp_path / "full.zip", tmp_path / "partial.zip"
    call_command("audit_export", "--out", str(full), stdout=io.StringIO())
    call_command("audit_export", "--out", str(partial), "--model", "churn", stdout=io.StringIO())

    python = clean_environment(tmp_path / "regulator-env")
    probe = subprocess.run(
        [str(python), "-I", "-c", "import django"], capture_output=True, check=False
    )
    assert probe.returncode != 0, "the regulator's environment must not have Django"
    desk = tmp_path / "desk"
    (desk / "audit").mkdir(parents=True)  # the one file, nothing else of Warden's
    shutil.copy(REPO / "audit" / "verifier.py", desk / "audit" / "verifier.py")
    key = signing_key.verifier().key_string()

    result = run_verifier(python, desk, str(full), "--key", key, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] and report["kind"] == "full" and report["findings"] == []
    assert report["records"] == report["checkpoints"][-1]["size"] > 0

    result = run_verifier(python, desk, str(partial), "--key", key)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "W_PARTIAL" in result.stdout and "completeness not proven" in result.stdout

    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(full) as source, zipfile.ZipFile(tampered, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "records.jsonl":
                data = data.replace(b'"seq":1,', b'"seq":1 ,', 1)
            target.writestr(item, data)
    result = run_verifier(python, desk, str(tampered), "--key", key)
    assert result.returncode == 1
    assert "E_NONCANONICAL" in result.stdout and "FAILED" in result.stdout
