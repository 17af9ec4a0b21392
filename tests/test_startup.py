"""Start-up stays light: a web process (``django.setup()``, the URLconf, ``manage.py check``)
and a Celery worker (the app with its autodiscovered task modules) load none of the report
stack. pandas, scipy, pyarrow, matplotlib and WeasyPrint cost seconds and hundreds of MB per
process; they are imported where a report is computed or rendered (the report job, the
``report`` command, the checks of a fairness or drift request), not when a module is.

Each case runs in a fresh interpreter, so that nothing this test session imported counts.
On failure the message names, for each library, the chain of project modules that imported
it first.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("pandas", "scipy", "pyarrow", "matplotlib", "weasyprint")

# Runs in the child: records who imports each heavy library first (a finder that never finds
# anything, placed before the others), then does what the case names and prints, as JSON, the
# heavy libraries loaded and their importers.
CHILD = r"""
import json, os, sys, traceback

HEAVY = set(sys.argv[2].split(","))
REPO = os.getcwd() + os.sep
importers = {}


class Watch:
    def find_spec(self, fullname, path=None, target=None):
        top = fullname.partition(".")[0]
        if top in HEAVY and top not in importers:
            frames = [
                f"{os.path.relpath(f.filename, REPO)}:{f.lineno}"
                for f in traceback.extract_stack()
                if f.filename.startswith(REPO) and os.sep + ".venv" + os.sep not in f.filename
            ]
            importers[top] = " <- ".join(reversed(frames)) or "(outside the project)"
        return None


sys.meta_path.insert(0, Watch())

import django

django.setup()
if sys.argv[1] == "web":
    from django.core.management import call_command

    import governance.urls  # noqa: F401

    call_command("check", verbosity=0)
else:
    from governance.celery import app

    app.loader.import_default_modules()
loaded = sorted(name for name in HEAVY if name in sys.modules)
print(json.dumps({"loaded": loaded, "importers": {n: importers.get(n, "?") for n in loaded}}))
"""


def _start(case: str) -> dict[str, object]:
    env = {
        **os.environ,
        "DJANGO_ENV": "test",
        "DJANGO_SETTINGS_MODULE": "governance.settings.test",
        "PYTHONPATH": str(REPO),
    }
    done = subprocess.run(
        [sys.executable, "-c", CHILD, case, ",".join(HEAVY)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"{case} start-up failed:\n{done.stdout}\n{done.stderr}"
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    "case",
    [
        pytest.param("web", id="setup-urlconf-check"),
        pytest.param("worker", id="celery-app-task-modules"),
    ],
)
def test_start_up_loads_no_report_library(case: str) -> None:
    found = _start(case)
    importers = found["importers"]
    assert isinstance(importers, dict)
    detail = "\n".join(f"  {name}: {chain}" for name, chain in importers.items())
    assert found["loaded"] == [], f"loaded at start-up ({case}):\n{detail}"
