"""Fixtures of the checkpoint tests: signing keys in files and a publish directory per test."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

from audit import keys
from audit.notes import Signer
from audit.publication import PublishDir

_numbers = itertools.count()


@pytest.fixture
def publish_dir(fresh_publish_dir: Path) -> PublishDir:
    return PublishDir(fresh_publish_dir)


def make_key(directory: Path, name: str) -> tuple[Path, Signer]:
    """A new 0600 key file named ``name`` in ``directory``, and its signer."""
    path = directory / f"{name.replace('/', '_')}.key"
    keys.generate_key_file(path, name)
    return path, keys.read_signer_file(path)


@pytest.fixture
def signing_key(settings: Any, tmp_path: Path) -> Signer:
    """The only configured signing key (no other trusted key), in a file of this test."""
    return only_signing_key(settings, tmp_path)


def only_signing_key(settings: Any, directory: Path, *, publish: bool = False) -> Signer:
    """Make a key in ``directory`` the log's only signing and trusted key; with ``publish``
    also give this test its own checkpoint publish and export directories (for tests outside
    this package, whose publish directory is the suite's per-test one)."""
    path, signer = make_key(directory / "keys", "warden.test")
    settings.AUDIT_SIGNING_KEY_FILE = [str(path)]
    settings.AUDIT_SIGNING_KEY_AUTOGENERATE = False
    settings.AUDIT_VERIFICATION_KEYS = []
    if publish:
        settings.AUDIT_CHECKPOINT_PUBLISH_DIR = str(directory / "published")
        settings.AUDIT_EXPORT_DIR = str(directory / "exports")
    return signer
