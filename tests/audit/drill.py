"""An operator's steps on one database, in one process, for the backup drill:

    DATABASE_URL=... python -m tests.audit.drill STEP [STEP ...]

Steps: ``migrate``, ``seed``, ``register:LABEL`` (a new version through the registry
service), ``verify`` (``manage.py audit_verify``) and ``checkpoint`` (``manage.py
audit_checkpoint``). Each step prints one JSON line: the step, the exit status the command
would have given, and what it wrote on stdout and stderr. A command's failure does not stop
the steps after it.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
from typing import Any


def _command(name: str, *args: str) -> dict[str, Any]:
    from django.core.management import call_command

    out, err = io.StringIO(), io.StringIO()
    status = 0
    try:
        call_command(name, *args, stdout=out, stderr=err)
    except SystemExit as exc:
        status = int(exc.code or 0)
    return {"status": status, "stdout": out.getvalue(), "stderr": err.getvalue()}


def _step(step: str) -> dict[str, Any]:
    from tests.audit import crashers

    name, _, label = step.partition(":")
    if name == "migrate":
        return _command("migrate", "--noinput", "--verbosity", "0")
    if name == "verify":
        return _command("audit_verify")
    if name == "checkpoint":
        return _command("audit_checkpoint")
    if name == "seed":
        return {
            "status": 0,
            "stdout": json.dumps(crashers.seed(argparse.Namespace())),
            "stderr": "",
        }
    if name == "register":
        done = crashers.register(argparse.Namespace(label=label, pause_at_commit=None))
        return {"status": 0, "stdout": json.dumps(done), "stderr": ""}
    raise SystemExit(f"unknown step {step!r}")


def main(argv: list[str] | None = None) -> int:
    steps = argv if argv is not None else sys.argv[1:]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "governance.settings.test")
    import django

    django.setup()
    for step in steps:
        with contextlib.redirect_stdout(io.StringIO()):
            result = _step(step)
        print(json.dumps({"step": step, **result}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
