"""The kernel's framework-free modules, and the pure approval workflow that raises their
errors, import in a fresh interpreter without Django settings: nothing on the way reads the
settings, loads DRF or needs the app registry.

The import-linter contract (``lint-imports``) keeps the direction of imports; this test keeps
the promise that these modules need no configured Django to be imported at all.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support import imported_roots

pytestmark = pytest.mark.database_free

REPO = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import json, sys

    import core.actors, core.context, core.errors
    import governance.approvals.workflow
    from django.conf import settings

    print(json.dumps({
        "configured": settings.configured,
        "drf": sorted(m for m in sys.modules if m.split(".")[0] == "rest_framework"),
    }))
    """
)


def test_kernel_and_workflow_import_without_django_settings() -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "AUDIT_", "WARDEN_"))
    }
    result = subprocess.run(
        [sys.executable, "-c", CHILD],
        cwd=REPO,
        env={**env, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded == {"configured": False, "drf": []}


@pytest.mark.parametrize("module", ["errors", "actors", "context"])
def test_kernel_modules_import_the_standard_library_only(module: str) -> None:
    roots = imported_roots(REPO / "core" / f"{module}.py")
    assert roots <= set(sys.stdlib_module_names), roots
